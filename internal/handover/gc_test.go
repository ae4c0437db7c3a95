package handover

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// blob writes a blob of size n and returns its digest.
func blob(t *testing.T, dir string, n int, fill byte, age time.Duration) string {
	t.Helper()
	data := []byte(strings.Repeat(string(fill), n))
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(dir, "sha256", h)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	os.Chtimes(p, old, old)
	return "sha256:" + h
}

func left(t *testing.T, dir string) []string {
	es, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	var out []string
	for _, e := range es {
		out = append(out, "sha256:"+e.Name())
	}
	sort.Strings(out)
	return out
}

func TestGC(t *testing.T) {
	type img struct {
		name  string
		blobs []int // indexes into the blobs made
		built time.Duration
	}
	tests := []struct {
		name    string
		images  []img
		live    []string
		max     int64
		inUse   bool // a build runs: new blobs stay
		want    []int
		recent  bool // the blobs were just written
		wantOut int64
	}{
		{"all live", []img{{"a:dev", []int{0, 1}, 0}, {"b:dev", []int{1, 2}, 0}}, []string{"a:dev", "b:dev"}, 1 << 30, false, []int{0, 1, 2}, false, 1000},
		{"removed image freed, shared blob kept", []img{{"a:dev", []int{0, 1}, 0}, {"b:dev", []int{1, 2}, 0}}, []string{"a:dev"}, 1 << 30, false, []int{0, 1}, false, 2000},
		{"just pushed, no build running: freed", []img{{"a:dev", []int{0}, 0}}, nil, 1 << 30, false, nil, true, 1000 + 3000},
		{"just pushed, a build running: kept", []img{{"a:dev", []int{0}, 0}}, nil, 1 << 30, true, []int{0, 1, 2, 3}, true, 0},
		{"over the cap: oldest image goes", []img{{"old:dev", []int{0}, time.Hour}, {"new:dev", []int{1}, 0}, {"mid:dev", []int{2}, time.Minute}}, []string{"old:dev", "new:dev", "mid:dev"}, 1000 + 1000, false, []int{1, 2}, false, 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "sha256"), 0o700)
			age := time.Hour
			if tc.recent {
				age = 0
			}
			var bs []string
			for i := 0; i < 4; i++ { // the fourth is used by no image
				bs = append(bs, blob(t, dir, 1000, byte('a'+i), age))
			}
			index := map[string]entry{}
			for _, im := range tc.images {
				e := entry{Built: time.Now().Add(-im.built)}
				for _, b := range im.blobs {
					e.Blobs = append(e.Blobs, bs[b])
				}
				index[im.name] = e
			}
			data, _ := json.Marshal(index)
			os.WriteFile(filepath.Join(dir, "images.json"), data, 0o600)
			if tc.inUse {
				unlock, err := flock(filepath.Join(dir, "inuse.lock"), lockShared)
				if err != nil {
					t.Fatal(err)
				}
				defer unlock()
			}
			live := func(name string) bool {
				for _, l := range tc.live {
					if l == name {
						return true
					}
				}
				return false
			}
			freed, err := gc(dir, live, tc.max, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, bs[i])
			}
			sort.Strings(want)
			if got := left(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("blobs left %v\nwant %v", got, want)
			}
			if freed != tc.wantOut {
				t.Errorf("freed %d bytes, want %d", freed, tc.wantOut)
			}
		})
	}
}

func TestRegistryNeedsSecret(t *testing.T) {
	r, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Serve()
	for _, tc := range []struct {
		user, pass string
		want       int
	}{
		{"", "", 401},
		{User, "wrong", 401},
		{"someone", r.Secret(), 401},
		{User, r.Secret(), 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+r.Host()+"/v2/", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("user %q: %d, want %d", tc.user, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
	other, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Secret() == r.Secret() {
		t.Error("two registries share a secret")
	}
}

func TestListen(t *testing.T) {
	for _, tc := range []struct {
		name, addr, secret string
		wantErr            string
	}{
		{"given secret", "127.0.0.1:0", "s3cret-from-envd", ""},
		{"no secret", "127.0.0.1:0", "", "needs a secret"},
		{"bad address", "127.0.0.1:no", "s3cret-from-envd", "listen tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Listen(t.TempDir(), tc.addr, tc.secret)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Listen = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			r.Serve()
			if r.Secret() != tc.secret {
				t.Errorf("Secret() = %q, want %q", r.Secret(), tc.secret)
			}
			req, _ := http.NewRequest("GET", "http://"+r.Host()+"/v2/", nil)
			req.SetBasicAuth(User, tc.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET /v2/ with the secret: %d", resp.StatusCode)
			}
		})
	}
}
