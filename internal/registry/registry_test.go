package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	gcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// isolate points every place the Docker config (and go-containerregistry's
// Podman fallback) is looked for at empty temp dirs, and returns the
// DOCKER_CONFIG dir.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	dir := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	return dir
}

func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// serve starts go-containerregistry's in-memory registry on 127.0.0.1,
// behind wrap (nil: none), and returns its host:port.
func serve(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = gcrregistry.New(gcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// basicAuth answers 401 to everything without user:pass, as a registry
// does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		})
	}
}

// push writes a random image with labels to ref and returns its digest.
func push(t *testing.T, ref string, labels map[string]string, opts ...remote.Option) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestLookup(t *testing.T) {
	dir := isolate(t)
	ctx := context.Background()

	open := serve(t, nil)
	labels := map[string]string{"dev.envd.version": "1", "org.opencontainers.image.title": "demo"}
	openDigest := push(t, open+"/envd/demo:v1", labels)
	push(t, open+"/envd/plain:v1", nil)

	locked := serve(t, basicAuth("u", "p"))
	lockedDigest := push(t, locked+"/envd/private:v1", labels, remote.WithAuth(&authn.Basic{Username: "u", Password: "p"}))

	denied := serve(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return // the ping: no auth needed
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
		})
	})

	closed := httptest.NewServer(http.NotFoundHandler())
	gone := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()

	tests := []struct {
		name     string
		config   string // config.json, "" none
		ref      string
		insecure bool
		digest   string
		labels   map[string]string
		notFound bool
		errHas   []string // the error says all of these
	}{
		{name: "tag", ref: open + "/envd/demo:v1", digest: openDigest, labels: labels},
		{name: "tag, insecure", ref: open + "/envd/demo:v1", insecure: true, digest: openDigest, labels: labels},
		{name: "by digest", ref: open + "/envd/demo@" + openDigest, digest: openDigest, labels: labels},
		{name: "no labels", ref: open + "/envd/plain:v1", labels: map[string]string{}},
		{name: "missing tag", ref: open + "/envd/demo:nope", notFound: true, errHas: []string{open, "envd/demo:nope"}},
		{name: "missing repository", ref: open + "/envd/nothing:v1", notFound: true, errHas: []string{open}},
		{name: "bad reference", ref: open + "/Envd/UPPER:v1", errHas: []string{"Envd/UPPER"}},
		{name: "unreachable", ref: gone + "/envd/demo:v1", errHas: []string{"cannot reach the registry " + gone}},
		{
			name:   "403",
			ref:    denied + "/envd/private:v1",
			errHas: []string{"the registry " + denied + " denied access to " + denied + "/envd/private", "docker login " + denied},
		},
		{
			name:   "401, no credentials",
			ref:    locked + "/envd/private:v1",
			errHas: []string{"the registry " + locked + " refused the credentials", "refused the credentials: your Docker config has no login for " + locked, "docker login " + locked},
		},
		{
			name:   "401, wrong credentials",
			config: `{"auths":{"` + locked + `":{"auth":"` + b64("u:wrong") + `"}}}`,
			ref:    locked + "/envd/private:v1",
			errHas: []string{"the registry " + locked + " refused the credentials from " + dir + "/config.json (auths)", "docker login " + locked},
		},
		{
			name:   "401, credentials",
			config: `{"auths":{"` + locked + `":{"auth":"` + b64("u:p") + `"}}}`,
			ref:    locked + "/envd/private:v1",
			digest: lockedDigest,
			labels: labels,
		},
		{
			name:   "401, credentials as https://host/",
			config: `{"auths":{"https://` + locked + `/":{"username":"u","password":"p"}}}`,
			ref:    locked + "/envd/private:v1",
			digest: lockedDigest,
			labels: labels,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "config.json"))
			if tt.config != "" {
				writeConfig(t, dir, tt.config)
			}
			img, err := Lookup(ctx, tt.ref, tt.insecure)
			if tt.notFound || tt.errHas != nil {
				if err == nil {
					t.Fatalf("Lookup(%s) = %+v, want an error", tt.ref, img)
				}
				t.Log(err)
				if got := errors.Is(err, ErrNotFound); got != tt.notFound {
					t.Errorf("errors.Is(%q, ErrNotFound) = %v, want %v", err, got, tt.notFound)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%s): %v", tt.ref, err)
			}
			if tt.digest != "" && img.Digest != tt.digest {
				t.Errorf("digest %s, want %s", img.Digest, tt.digest)
			}
			if !strings.HasPrefix(img.Digest, "sha256:") {
				t.Errorf("digest %q is not sha256:...", img.Digest)
			}
			if len(img.Labels) != len(tt.labels) || img.Labels == nil {
				t.Errorf("labels %v, want %v", img.Labels, tt.labels)
			}
			for k, v := range tt.labels {
				if img.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, img.Labels[k], v)
				}
			}
		})
	}
}

func TestByDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	other := "sha256:" + strings.Repeat("cd", 32)
	tests := []struct {
		ref, digest, want string
		err               bool
	}{
		{ref: "127.0.0.1:5000/envd/demo:v1", digest: d, want: "127.0.0.1:5000/envd/demo@" + d},
		{ref: "registry.example.com/a/b/c:latest", digest: d, want: "registry.example.com/a/b/c@" + d},
		{ref: "127.0.0.1:5000/envd/demo", digest: d, want: "127.0.0.1:5000/envd/demo@" + d},
		{ref: "ubuntu:22.04", digest: d, want: "index.docker.io/library/ubuntu@" + d},
		{ref: "127.0.0.1:5000/envd/demo@" + d, digest: d, want: "127.0.0.1:5000/envd/demo@" + d},
		{ref: "127.0.0.1:5000/envd/demo@" + other, digest: d, err: true},
		{ref: "127.0.0.1:5000/envd/demo:v1", digest: "sha256:short", err: true},
		{ref: "127.0.0.1:5000/envd/demo:v1", digest: "", err: true},
		{ref: "127.0.0.1:5000/Envd/demo:v1", digest: d, err: true},
	}
	for _, tt := range tests {
		got, err := ByDigest(tt.ref, tt.digest)
		if tt.err {
			if err == nil {
				t.Errorf("ByDigest(%q, %q) = %q, want an error", tt.ref, tt.digest, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ByDigest(%q, %q) = %q, %v; want %q", tt.ref, tt.digest, got, err, tt.want)
		}
	}
}

// helperScript is a docker-credential-test that knows one login, for
// helper.example.com, and answers as Docker's helpers do otherwise.
const helperScript = `#!/bin/sh
[ "$1" = get ] || exit 1
read -r host
if [ "$host" = helper.example.com ]; then
	echo '{"ServerURL":"helper.example.com","Username":"u","Secret":"s"}'
	exit 0
fi
echo "credentials not found in native keychain"
exit 1
`

func TestCredentialFor(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-test"), []byte(helperScript), 0o755); err != nil {
		t.Fatal(err)
	}
	const host = "registry.example.com:5000"
	tests := []struct {
		name       string
		config     string // config.json; "" none
		atHome     bool   // in ~/.docker, DOCKER_CONFIG unset
		host       string
		want       Credential
		found      bool
		sourceTail string // want.Source ends so; "" exactly want.Source
		err        bool
	}{
		{
			name:   "auth base64",
			config: `{"auths":{"` + host + `":{"auth":"` + b64("alice:s3cr:et") + `"}}}`,
			host:   host, found: true,
			want:       Credential{Username: "alice", Password: "s3cr:et"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "username and password",
			config: `{"auths":{"` + host + `":{"username":"bob","password":"pw"}}}`,
			host:   host, found: true,
			want:       Credential{Username: "bob", Password: "pw"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "https://host/",
			config: `{"auths":{"https://` + host + `/":{"auth":"` + b64("carol:pw") + `"}}}`,
			host:   host, found: true,
			want:       Credential{Username: "carol", Password: "pw"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "identity token",
			config: `{"auths":{"` + host + `":{"username":"00000000-0000-0000-0000-000000000000","identitytoken":"tok"}}}`,
			host:   host, found: true,
			want:       Credential{Username: "00000000-0000-0000-0000-000000000000", IdentityToken: "tok"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "in ~/.docker",
			config: `{"auths":{"` + host + `":{"auth":"` + b64("dave:pw") + `"}}}`,
			atHome: true,
			host:   host, found: true,
			want: Credential{Username: "dave", Password: "pw", Source: "~/.docker/config.json (auths)"},
		},
		{
			name:   "docker.io",
			config: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("erin:pw") + `"}}}`,
			host:   "docker.io", found: true,
			want:       Credential{Username: "erin", Password: "pw"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "index.docker.io",
			config: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("erin:pw") + `"}}}`,
			host:   "index.docker.io", found: true,
			want:       Credential{Username: "erin", Password: "pw"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "no entry for the host",
			config: `{"auths":{"other.example.com":{"auth":"` + b64("x:y") + `"}}}`,
			host:   host,
		},
		{name: "no config file", host: host},
		{
			name:   "credHelpers",
			config: `{"auths":{"helper.example.com":{}},"credHelpers":{"helper.example.com":"test"}}`,
			host:   "helper.example.com", found: true,
			want: Credential{Username: "u", Password: "s", Source: "docker-credential-test"},
		},
		{
			name:   "credsStore",
			config: `{"credsStore":"test"}`,
			host:   "helper.example.com", found: true,
			want: Credential{Username: "u", Password: "s", Source: "docker-credential-test"},
		},
		{
			name:   "credsStore without a login for the host",
			config: `{"credsStore":"test"}`,
			host:   host,
		},
		{
			name:   "credHelpers for another host",
			config: `{"auths":{"` + host + `":{"auth":"` + b64("frank:pw") + `"}},"credHelpers":{"helper.example.com":"test"}}`,
			host:   host, found: true,
			want:       Credential{Username: "frank", Password: "pw"},
			sourceTail: "/config.json (auths)",
		},
		{
			name:   "helper not installed",
			config: `{"credHelpers":{"` + host + `":"missing"}}`,
			host:   host, err: true,
		},
		{name: "malformed config", config: `{"auths":`, host: host, err: true},
		{name: "bad auth", config: `{"auths":{"` + host + `":{"auth":"not base64!"}}}`, host: host, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			if tt.atHome {
				dir = filepath.Join(os.Getenv("HOME"), ".docker")
				t.Setenv("DOCKER_CONFIG", "")
			}
			if tt.config != "" {
				writeConfig(t, dir, tt.config)
			}
			c, found, err := CredentialFor(tt.host)
			if tt.err {
				if err == nil {
					t.Fatalf("CredentialFor(%s) = %+v, %v; want an error", tt.host, c, found)
				}
				return
			}
			if err != nil {
				t.Fatalf("CredentialFor(%s): %v", tt.host, err)
			}
			if found != tt.found {
				t.Fatalf("CredentialFor(%s): found %v, want %v (%+v)", tt.host, found, tt.found, c)
			}
			if !found {
				return
			}
			want := tt.want
			if tt.sourceTail != "" {
				if !strings.HasSuffix(c.Source, tt.sourceTail) || !strings.HasPrefix(c.Source, dir) {
					t.Errorf("source %q, want %s%s", c.Source, dir, tt.sourceTail)
				}
				want.Source = c.Source
			}
			if c != want {
				t.Errorf("CredentialFor(%s) = %+v, want %+v", tt.host, c, want)
			}
		})
	}
}

func TestDockerConfigJSON(t *testing.T) {
	tests := []struct {
		name, host, key string
		c               Credential
		err             bool
	}{
		{name: "host:port", host: "127.0.0.1:5000", key: "127.0.0.1:5000", c: Credential{Username: "u", Password: "p:w", Source: "x"}},
		{name: "docker hub", host: "docker.io", key: "https://index.docker.io/v1/", c: Credential{Username: "u", Password: "p"}},
		{name: "identity token", host: "r.example.com", key: "r.example.com", c: Credential{Username: "00000000-0000-0000-0000-000000000000", IdentityToken: "tok"}},
		{name: "empty credential", host: "r.example.com", err: true},
		{name: "no host", c: Credential{Username: "u", Password: "p"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DockerConfigJSON(tt.host, tt.c)
			if tt.err {
				if err == nil {
					t.Fatalf("DockerConfigJSON = %s, want an error", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Auths map[string]struct {
					Username, Password, Auth, IdentityToken string
				}
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if len(got.Auths) != 1 {
				t.Fatalf("auths %s, want one entry", b)
			}
			e, ok := got.Auths[tt.key]
			if !ok {
				t.Fatalf("auths %s has no %q", b, tt.key)
			}
			if want := b64(tt.c.Username + ":" + tt.c.Password); e.Auth != want {
				t.Errorf("auth %q, want %q", e.Auth, want)
			}
			if e.Username != tt.c.Username || e.Password != tt.c.Password || e.IdentityToken != tt.c.IdentityToken {
				t.Errorf("entry %+v, want %+v", e, tt.c)
			}
			if strings.Contains(string(b), "Source") {
				t.Errorf("%s carries the Source", b)
			}

			// Docker reads it back as the same login.
			dir := isolate(t)
			writeConfig(t, dir, string(b))
			c, found, err := CredentialFor(tt.host)
			if err != nil || !found {
				t.Fatalf("CredentialFor(%s) on it: %+v, %v, %v", tt.host, c, found, err)
			}
			if c.Username != tt.c.Username || c.Password != tt.c.Password || c.IdentityToken != tt.c.IdentityToken {
				t.Errorf("read back %+v, want %+v", c, tt.c)
			}
		})
	}
}
