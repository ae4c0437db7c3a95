package ir

import (
	"strings"
	"testing"
)

func TestPipURLProblem(t *testing.T) {
	for in, want := range map[string]string{
		"https://download.pytorch.org/whl/cpu":   "",
		"http://127.0.0.1:8080/simple/":          "",
		"file:///opt/wheels":                     "",
		"https://x.example/~team/links.html?p=*": "",
		"download.pytorch.org/whl/cpu":           "is not an http://, https:// or file:// URL",
		"ftp://x.example/":                       "is not an http://, https:// or file:// URL",
		"":                                       "is not an http://, https:// or file:// URL",
		"https:///simple":                        "has no host",
		"file://":                                "has no path",
		"https://x.example/$(id)":                "holds characters",
		"https://x.example/a b":                  "holds characters",
		"https://x.example/;id":                  "holds characters",
		"http://[::1":                            "is not a URL",
	} {
		got := PipURLProblem(in)
		if (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("PipURLProblem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPipHostProblem(t *testing.T) {
	for in, ok := range map[string]bool{
		"download.pytorch.org": true, "pypi.lan:8080": true, "127.0.0.1": true,
		"https://pypi.lan": false, "pypi.lan/simple": false, "": false, "-x": false, "a b": false,
	} {
		if got := PipHostProblem(in) == ""; got != ok {
			t.Errorf("PipHostProblem(%q) accepted %v, want %v", in, got, ok)
		}
	}
}

func TestShellSyntax(t *testing.T) {
	for in, want := range map[string]string{
		"numpy>=1.26,<2": "", "torch==2.1.0+cpu": "", "jax[cuda12_pip]": "", "numpy==1.*": "", "a\tb": "",
		"a;b": ";", "a && b": "&", "$(id)": "$", "`id`": "`", "a|b": "|", `a\b`: `\`, "'a'": "'", "a\nb": "\n", "{a}": "{",
	} {
		if got := ShellSyntax(in); got != want {
			t.Errorf("ShellSyntax(%q) = %q, want %q", in, got, want)
		}
	}
}

// Options made by other code than lang get lang's checks.
func TestValidatePipOptions(t *testing.T) {
	env := &Environment{Base: Base{Image: DefaultImage}, PipOptions: &PipOptions{
		IndexURL: "https://ok.example/simple", FindLinks: []string{"https://x.example/$(id)"}, TrustedHosts: []string{"https://pypi.lan"},
		Pos: Pos{File: "build.envd", Line: 3, Col: 9},
	}}
	err := env.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`build.envd:3:9: pip option URL "https://x.example/$(id)" holds characters`, `--trusted-host "https://pypi.lan" is not a host name`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	env.PipOptions.FindLinks, env.PipOptions.TrustedHosts = nil, nil
	if err := env.Validate(); err != nil {
		t.Errorf("good options refused: %v", err)
	}
}
