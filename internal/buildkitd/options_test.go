package buildkitd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envd.dev/envd/internal/docker"
)

// fakeSys replaces the machine lookups for one test: euid, and which
// programs are on PATH (name -> path).
func fakeSys(t *testing.T, euid int, path map[string]string, exe string) {
	t.Helper()
	saved := sys
	t.Cleanup(func() { sys = saved })
	sys.geteuid = func() int { return euid }
	sys.lookPath = func(name string) (string, error) {
		if p, ok := path[name]; ok {
			return p, nil
		}
		return "", errors.New("not found")
	}
	sys.executable = func() (string, error) { return exe, nil }
}

func writeExec(t *testing.T, path, script string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPreflight(t *testing.T) {
	tmp := t.TempDir()
	bk := writeExec(t, filepath.Join(tmp, "buildkitd"), "#!/bin/sh\n")
	other := writeExec(t, filepath.Join(tmp, "other-buildkitd"), "#!/bin/sh\n")
	noexec := filepath.Join(tmp, "noexec")
	os.WriteFile(noexec, nil, 0o644)
	onPath := map[string]string{"runc": "/usr/sbin/runc", "buildkitd": "/usr/bin/buildkitd"}
	noBK := map[string]string{"runc": "/usr/sbin/runc"}

	tests := []struct {
		name    string
		euid    int
		path    map[string]string
		exe     string // os.Executable of envd
		env     string // ENVD_BUILDKITD
		binary  string // Options.Binary
		want    string
		wantErr error
		errHas  string
	}{
		{"not root", 1000, onPath, "/x/envd", "", "", "", ErrNotRoot, "envd context create --builder unix://"},
		{"no runc", 0, map[string]string{"buildkitd": "/usr/bin/buildkitd"}, "/x/envd", "", "", "", ErrNoRunc, "apt-get install -y runc"},
		{"env points nowhere", 0, onPath, "/x/envd", "/nope/buildkitd", "", "", ErrNotFound, "ENVD_BUILDKITD=/nope/buildkitd is not"},
		{"env not executable", 0, onPath, "/x/envd", noexec, "", "", ErrNotFound, "unset ENVD_BUILDKITD"},
		{"option points nowhere", 0, onPath, "/x/envd", "", "/nope/bk", "", ErrNotFound, "/nope/bk is not"},
		{"option wins", 0, onPath, filepath.Join(tmp, "envd"), bk, other, other, nil, ""},
		{"env beats beside envd", 0, onPath, filepath.Join(tmp, "envd"), other, "", other, nil, ""},
		{"beside envd", 0, onPath, filepath.Join(tmp, "envd"), "", "", bk, nil, ""},
		// A buildkitd on PATH may be any version: envd is its own instead.
		{"none beside: envd itself", 0, onPath, "/x/envd", "", "", "/x/envd", nil, ""},
		{"nothing at all: envd itself", 0, noBK, "/x/envd", "", "", "/x/envd", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeSys(t, tt.euid, tt.path, tt.exe)
			t.Setenv("ENVD_BUILDKITD", tt.env)
			got, err := Options{Binary: tt.binary}.preflight()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errHas)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSocketPath(t *testing.T) {
	short := Options{Dir: "/root/.local/share/envd/buildkit"}
	if got := short.socketPath(); got != "/root/.local/share/envd/buildkit/buildkitd.sock" {
		t.Errorf("short dir: %q", got)
	}
	long := Options{Dir: "/home/" + strings.Repeat("a", 100) + "/.local/share/envd/buildkit"}
	got := long.socketPath()
	if !strings.HasPrefix(got, "/run/envd-buildkitd-") || len(got) > maxSocketPath {
		t.Errorf("long dir: %q", got)
	}
	if got != long.socketPath() {
		t.Error("socket path must be stable")
	}
	other := Options{Dir: long.Dir + "2"}
	if other.socketPath() == got {
		t.Error("different dirs must get different sockets")
	}
	if long.Addr() != "unix://"+got {
		t.Errorf("Addr = %q", long.Addr())
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Dir != "/data/envd/buildkit" || o.StartTimeout != defaultStartTimeout {
		t.Errorf("got %+v", o)
	}
}

func TestRemoteNeedsNameAndDocker(t *testing.T) {
	dk := &docker.Client{}
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"local", Options{}, true},
		{"remote", Options{Remote: true, Container: dk, ContainerName: "envd-buildkitd-abc"}, true},
		{"remote without a name", Options{Remote: true, Container: dk}, false},
		{"remote without a Docker", Options{Remote: true, ContainerName: "envd-buildkitd-abc"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.o.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("withDefaults: %v", err)
			}
			if tc.ok && tc.o.ContainerName != "" && ContainerName(o) != tc.o.ContainerName {
				t.Errorf("ContainerName = %q, want %q", ContainerName(o), tc.o.ContainerName)
			}
		})
	}
}
