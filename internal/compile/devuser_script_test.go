package compile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stubAccounts makes a PATH whose getent reads passwd and group files of
// the test's own, and whose account commands log what they are asked.
func stubAccounts(t *testing.T, passwd, group string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	files := map[string]string{
		"passwd": passwd,
		"group":  group,
		"getent": "#!/bin/sh\nawk -F: -v k=\"$2\" '$1==k || $3==k {print; found=1; exit} END {exit !found}' \"" + dir + "/$1\"\n",
	}
	for _, cmd := range []string{"useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod"} {
		files[cmd] = "#!/bin/sh\necho \"" + cmd + " $*\" >> \"" + log + "\"\n"
	}
	// userdel removes the account (its last argument), so what follows sees
	// it gone; the group of the same name stays, as without USERGROUPS_ENAB.
	files["userdel"] += "for n; do :; done\ngrep -v \"^$n:\" \"" + dir + "/passwd\" > \"" + dir + "/passwd.new\"; mv \"" + dir + "/passwd.new\" \"" + dir + "/passwd\"\n"
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), log
}

const (
	debianPasswd = "root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998::/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	debianGroup  = "root:x:0:\nusers:x:100:\nsystemd-network:x:998:\nnogroup:x:65534:\n"
	ubuntuPasswd = debianPasswd + "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"
	ubuntuGroup  = debianGroup + "ubuntu:x:1000:\n"
)

// TestDevUserScriptDecisions runs devUserScript with /bin/sh against stub
// account commands: what it removes, creates and refuses.
func TestDevUserScriptDecisions(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	tests := []struct {
		name          string
		passwd, group string
		uid, gid      int
		want, not     []string // lines of the log
		stderr        string   // "" means the script succeeds
	}{
		{
			name: "new uid and gid", passwd: debianPasswd, group: debianGroup, uid: 1234, gid: 1234,
			want: []string{"groupadd -g 1234 envd", "useradd -l -m -d /home/envd -u 1234 -g 1234 -s /bin/bash envd", "usermod -g 1234 -s /bin/bash envd"},
			not:  []string{"userdel", "groupdel"},
		},
		{
			name: "gid of the image's users group", passwd: debianPasswd, group: debianGroup, uid: 1234, gid: 100,
			want: []string{"useradd -l -m -d /home/envd -u 1234 -g 100 -s /bin/bash envd"},
			not:  []string{"groupadd", "groupdel", "groupmod", "userdel"},
		},
		{
			name: "ubuntu 24.04's user", passwd: ubuntuPasswd, group: ubuntuGroup, uid: 1000, gid: 1000,
			want: []string{"userdel -r ubuntu", "useradd -l -m -d /home/envd -u 1000 -g 1000 -s /bin/bash envd"},
			not:  []string{"groupdel"},
		},
		{
			name: "envd of another uid", passwd: debianPasswd + "envd:x:1000:1000::/home/envd:/bin/bash\n", group: debianGroup + "envd:x:1000:\n", uid: 1234, gid: 1234,
			want: []string{"userdel envd", "groupmod -g 1234 envd", "useradd -l -m -d /home/envd -u 1234 -g 1234 -s /bin/bash envd"},
		},
		{
			name: "envd already right", passwd: debianPasswd + "envd:x:1234:100::/home/envd:/bin/zsh\n", group: debianGroup, uid: 1234, gid: 100,
			want: []string{"usermod -g 100 -s /bin/bash envd"},
			not:  []string{"useradd", "userdel", "groupadd"},
		},
		{
			name: "system account", passwd: debianPasswd, group: debianGroup, uid: 998, gid: 100,
			stderr: "uid 998 is taken by the system account systemd-network in the base image; set config.owner(uid=..., gid=...) or run envd as another user",
		},
		{
			name: "nobody", passwd: debianPasswd, group: debianGroup, uid: 65534, gid: 65534,
			stderr: "uid 65534 is taken by the system account nobody in the base image",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, logFile := stubAccounts(t, tt.passwd, tt.group)
			cmd := exec.Command("/bin/sh", "-c", devUserScript(tt.uid, tt.gid, "/bin/bash"))
			cmd.Env = append(os.Environ(), "PATH="+path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			logged, _ := os.ReadFile(logFile)
			lines := strings.Split(strings.TrimSpace(string(logged)), "\n")
			if tt.stderr != "" {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), tt.stderr) {
					t.Errorf("err %v, stderr %q: want exit 1 saying %q", err, stderr.String(), tt.stderr)
				}
				if len(logged) != 0 {
					t.Errorf("accounts changed before refusing: %q", logged)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			has := func(prefix string) bool {
				for _, l := range lines {
					if strings.HasPrefix(l, prefix) {
						return true
					}
				}
				return false
			}
			for _, w := range tt.want {
				if !has(w) {
					t.Errorf("log lacks %q:\n%s", w, logged)
				}
			}
			for _, n := range tt.not {
				if has(n) {
					t.Errorf("log has %q:\n%s", n, logged)
				}
			}
		})
	}
}
