package ir

import (
	"strings"
	"testing"
)

func TestNormalizeImage(t *testing.T) {
	tests := map[string]string{
		"ubuntu":                              "docker.io/library/ubuntu:latest",
		"ubuntu:22.04":                        "docker.io/library/ubuntu:22.04",
		"nvidia/cuda:12.4.1-base-ubuntu22.04": "docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
		"127.0.0.1:5000/team/img:1":           "127.0.0.1:5000/team/img:1",
		"localhost/img":                       "localhost/img:latest",
		"registry.example/x/y":                "registry.example/x/y:latest",
		"debian@sha256:abc":                   "docker.io/library/debian@sha256:abc",
		"docker.io/library/debian:bookworm":   "docker.io/library/debian:bookworm",
	}
	for in, want := range tests {
		if got := NormalizeImage(in); got != want {
			t.Errorf("NormalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupOSAndDistroPython(t *testing.T) {
	d, err := LookupOS("ubuntu20.04")
	if err != nil || d.Image != "docker.io/library/ubuntu:20.04" || d.Python != "3.8" {
		t.Errorf("ubuntu20.04 = %+v, %v", d, err)
	}
	if _, err := LookupOS("windows11"); err == nil || !strings.Contains(err.Error(), "debian12") {
		t.Errorf("unknown os error should list the known ones: %v", err)
	}
	for image, want := range map[string]string{"debian:bookworm": "3.11", "debian:12": "3.11", "ubuntu:22.04": "3.10", "alpine": ""} {
		if got := DistroPython(image); got != want {
			t.Errorf("DistroPython(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	p := Pos{File: "build.envd", Line: 3, Col: 5}
	base := func() *Environment { return &Environment{Base: Base{Image: "docker.io/library/debian:bookworm"}} }
	tests := []struct {
		name   string
		change func(e *Environment)
		want   string // "" = valid
	}{
		{"valid", func(e *Environment) {
			e.PythonPackages = []Package{{Name: "numpy>=1.26,<2"}, {Name: "torch[cuda]==2.1"}, {Name: "opencv-python"}}
			e.AptPackages = []Package{{Name: "libgl1"}, {Name: "g++"}, {Name: "python3:amd64=3.11.2-1"}}
		}, ""},
		{"no base", func(e *Environment) { e.Base.Image = "" }, "no base image"},
		{"shell in pip name", func(e *Environment) { e.PythonPackages = []Package{{Name: "numpy; rm -rf /", Pos: p}} }, `build.envd:3:5: invalid python requirement "numpy; rm -rf /"`},
		{"shell in apt name", func(e *Environment) { e.AptPackages = []Package{{Name: "curl && reboot", Pos: p}} }, "invalid apt package name"},
		{"python 2", func(e *Environment) { e.Python = &Python{Version: "2.7", Pos: p} }, "not a Python 3 version"},
		{"absolute requirements", func(e *Environment) { e.Requirements = []File{{Path: "/etc/passwd", Pos: p}} }, "is absolute"},
		{"escaping copy", func(e *Environment) { e.Steps = []Step{{Copy: &CopyStep{Source: "../secret", Target: "/x"}, Pos: p}} }, "outside the build directory"},
		{"copy from image", func(e *Environment) {
			e.Steps = []Step{{Copy: &CopyStep{Source: "/bin/micromamba", Target: "/usr/local/bin/micromamba", Image: "docker.io/mambaorg/micromamba:1.0.0"}, Pos: p}}
		}, ""},
		{"copy from image, relative source", func(e *Environment) {
			e.Steps = []Step{{Copy: &CopyStep{Source: "bin/micromamba", Target: "/x", Image: "docker.io/mambaorg/micromamba:1.0.0"}, Pos: p}}
		}, `build.envd:3:5: copy source "bin/micromamba" is not an absolute path (in the image docker.io/mambaorg/micromamba:1.0.0)`},
		{"copy from image, no target", func(e *Environment) {
			e.Steps = []Step{{Copy: &CopyStep{Source: "/x", Image: "docker.io/library/busybox:latest"}, Pos: p}}
		}, "copy target is empty"},
		{"codex", func(e *Environment) { e.Codex = &Toolchain{Version: "0.46.0-alpha.1", Pos: p} }, ""},
		{"codex latest", func(e *Environment) { e.Codex = &Toolchain{Version: "latest", Pos: p} }, `build.envd:3:5: "latest" is not a Codex version`},
		{"codex injection", func(e *Environment) { e.Codex = &Toolchain{Version: "0.98.0/../../x", Pos: p} }, "is not a Codex version"},
		{"empty run", func(e *Environment) { e.Steps = []Step{{Run: &RunStep{}, Pos: p}} }, "no commands"},
		{"bad env key", func(e *Environment) { e.Environ = map[string]string{"1X": "y"} }, "invalid environment variable name"},
		{"bad port", func(e *Environment) { e.Expose = []Expose{{EnvdPort: 70000, Pos: p}} }, "out of range"},
		{"ssh port exposed", func(e *Environment) {
			e.Base.Dev = true
			e.Expose = []Expose{{EnvdPort: 2222, Pos: p}}
		}, "build.envd:3:5: envd_port 2222 is the environment's ssh port"},
		{"ssh port without the agent", func(e *Environment) { e.Expose = []Expose{{EnvdPort: 2222, Pos: p}} }, ""},
		{"port exposed twice", func(e *Environment) {
			e.Expose = []Expose{{EnvdPort: 8080, Pos: p}, {EnvdPort: 8080, Pos: Pos{File: "build.envd", Line: 4, Col: 5}}}
		}, "build.envd:4:5: envd_port 8080 is already exposed at build.envd:3:5"},
		{"host port twice", func(e *Environment) {
			e.Expose = []Expose{{EnvdPort: 80, HostPort: 9000, Pos: p}, {EnvdPort: 81, HostPort: 9000, Pos: Pos{File: "build.envd", Line: 4, Col: 5}}}
		}, "build.envd:4:5: host_port 9000 is already used at build.envd:3:5"},
		{"empty daemon", func(e *Environment) { e.Daemons = []Daemon{{Pos: p}} }, "empty command"},
		{"bad extension", func(e *Environment) { e.VSCodeExtensions = []Package{{Name: "python", Pos: p}} }, "publisher.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			tt.change(e)
			err := e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDigestIgnoresPositionsOnly(t *testing.T) {
	a := &Environment{Base: Base{Image: "x", Pos: Pos{File: "a", Line: 1}}, PythonPackages: []Package{{Name: "six", Pos: Pos{Line: 2}}}}
	b := &Environment{Base: Base{Image: "x", Pos: Pos{File: "a", Line: 9}}, PythonPackages: []Package{{Name: "six", Pos: Pos{Line: 7}}}}
	if a.Digest() != b.Digest() {
		t.Error("moving lines changed the digest")
	}
	b.PythonPackages[0].Name = "numpy"
	if a.Digest() == b.Digest() {
		t.Error("changing a package did not change the digest")
	}
	// The image a file is copied from is part of what is asked for.
	copyFrom := func(image string) string {
		e := &Environment{Steps: []Step{{Copy: &CopyStep{Source: "/uv", Target: "/usr/local/bin/uv", Image: image}}}}
		return e.Digest()
	}
	if copyFrom("ghcr.io/astral-sh/uv:0.4.0") == copyFrom("ghcr.io/astral-sh/uv:0.5.0") || copyFrom("") == copyFrom("ghcr.io/astral-sh/uv:0.4.0") {
		t.Error("changing the image of a copy did not change the digest")
	}
}

func TestPosString(t *testing.T) {
	for p, want := range map[Pos]string{
		{}:                           "<unknown>",
		{File: "f"}:                  "f",
		{File: "f", Line: 2}:         "f:2",
		{File: "f", Line: 2, Col: 3}: "f:2:3",
	} {
		if p.String() != want {
			t.Errorf("%#v.String() = %q, want %q", p, p.String(), want)
		}
	}
}
