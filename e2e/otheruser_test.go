package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// otherUser is a second real local account, as another user of a shared
// machine would be: created for one test and removed after it.
type otherUser struct {
	name     string
	uid, gid int
}

// newOtherUser adds the account uid (pick one no real user has, not 1000)
// and removes it when the test ends. It needs root; without it the test is
// skipped.
func newOtherUser(t *testing.T, uid int) *otherUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to add a second local user")
	}
	name := fmt.Sprintf("envd-other-%d", uid)
	exec.Command("userdel", name).Run() // left over from a killed run
	if out, err := exec.Command("useradd", "--uid", strconv.Itoa(uid), "--user-group",
		"--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	out, err := exec.Command("id", "-g", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return &otherUser{name: name, uid: uid, gid: gid}
}

// run runs argv as the user, with no supplementary groups and a bare
// environment, and returns its stdout and stderr.
func (u *otherUser) run(argv ...string) (stdout, stderr string, err error) {
	args := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), "--clear-groups", "--"}, argv...)
	cmd := exec.Command("setpriv", args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "USER=" + u.name, "LANG=C"}
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// sh runs a shell command line as the user.
func (u *otherUser) sh(script string) (stdout, stderr string, err error) {
	return u.run("sh", "-c", script)
}

// canRead reports whether the user can read the file at path.
func (u *otherUser) canRead(path string) bool {
	_, _, err := u.run("cat", path)
	return err == nil
}

// openForTraversal lets other users pass through dirs (o+x, not o+r), as a
// home directory of mode 0755 does, so that what keeps them out of envd's
// files is envd's own modes; the old modes come back when the test ends.
func openForTraversal(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		old := fi.Mode().Perm()
		if err := os.Chmod(d, old|0o001); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(d, old) })
	}
}

// parents returns dir and its parents up to (not including) stop.
func parents(dir, stop string) []string {
	var out []string
	for d := filepath.Clean(dir); d != stop && d != "/" && d != "."; d = filepath.Dir(d) {
		out = append(out, d)
	}
	return out
}
