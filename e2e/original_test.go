package e2e

import (
	"strings"
	"testing"
)

// TestOriginalCommandLines: the original envd's command lines, as its users'
// scripts have them, against the real Docker (docs/original-envd.md).
func TestOriginalCommandLines(t *testing.T) {
	requireE2E(t)
	name := "e2e-original"
	dir := project(t, name, map[string]string{"build.envd": `def build():
    base(os="debian12", language="python3")
    runtime.command(commands={
        "go version": "echo version-$((40 + 2))",
        "train": "echo training with",
    })
`})
	removeImage(t, name+":dev")
	t.Cleanup(func() { envd(t, dir, "destroy", "--name", name) })
	parent := strings.TrimSuffix(dir, "/"+name)

	// From another directory, with --path/-p and --from/-f as the original has them.
	mustEnvd(t, parent, "build", "--path", name, "--from", "build.envd:build", "-t", name+":dev")
	mustEnvd(t, parent, "up", "--path", name, "--name", name, "--detach", "--no-gpu", "--timeout", "2m")

	if r := mustEnvd(t, parent, "exec", "--name", name, "--command", "go version"); strings.TrimSpace(r.stdout) != "version-42" {
		t.Errorf("exec --command \"go version\": %q", r.stdout)
	}
	// NAME as an argument, and arguments after -- appended to the command.
	if r := mustEnvd(t, parent, "exec", name, "--command", "train", "--", "--epochs", "3"); strings.TrimSpace(r.stdout) != "training with --epochs 3" {
		t.Errorf("exec NAME --command train -- ARGS: %q", r.stdout)
	}
	if r := envd(t, parent, "exec", "--name", name, "--command", "nope"); r.code != 1 || !strings.Contains(r.stderr, `has no command "nope"; it has "go version", "train"`) {
		t.Errorf("an unknown command: %s", r)
	}
	if r := mustEnvd(t, parent, "env", "ls"); !strings.Contains(r.stdout, name) {
		t.Errorf("env ls does not list %s:\n%s", name, r.stdout)
	}
	if r := mustEnvd(t, parent, "images", "ls"); !strings.Contains(r.stdout, name) {
		t.Errorf("images ls does not list %s:\n%s", name, r.stdout)
	}
	// destroy -p: the project in that directory, and its image with it.
	mustEnvd(t, parent, "destroy", "-p", name)
	if out, _ := dockerCmd(t, "ps", "-aq", "--filter", "name=^envd-"+name+"$"); strings.TrimSpace(out) != "" {
		t.Errorf("container left after destroy -p: %s", out)
	}
	if out, err := dockerCmd(t, "image", "inspect", name+":dev"); err == nil {
		t.Errorf("image left after destroy -p:\n%s", out)
	}
}
