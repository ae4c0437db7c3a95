package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAdoptAccount(t *testing.T) {
	const passwd = "root:x:0:0:root:/root:/bin/bash\nenvd:x:1000:1000::/home/envd:/bin/bash\n"
	const group = "root:x:0:\nsudo:x:27:envd\nvideo:x:44:other,envd\nenvd:x:1000:\n"
	tests := []struct {
		name       string
		passwd     string
		group      string
		user       User
		wantPasswd string
		wantGroup  string
		wantGroups []int
	}{
		{
			name: "new uid", passwd: passwd, group: group,
			user:       User{Name: "envd", UID: 1234, GID: 1235, Home: "/home/envd"},
			wantPasswd: "root:x:0:0:root:/root:/bin/bash\nenvd:x:1234:1235::/home/envd:/bin/bash\n",
			wantGroup:  "root:x:0:\nsudo:x:27:envd\nvideo:x:44:other,envd\nenvd:x:1235:\n",
			wantGroups: []int{1235, 27, 44},
		},
		{
			name: "same uid changes nothing", passwd: passwd, group: group,
			user:       User{Name: "envd", UID: 1000, GID: 1000, Home: "/home/envd"},
			wantPasswd: passwd, wantGroup: group, wantGroups: []int{1000, 27, 44},
		},
		{
			name: "missing account and group are added", passwd: "root:x:0:0:root:/root:/bin/bash\n", group: "root:x:0:\n",
			user:       User{Name: "envd", UID: 501, GID: 20, Home: "/home/envd"},
			wantPasswd: "root:x:0:0:root:/root:/bin/bash\nenvd:x:501:20::/home/envd:/bin/sh\n",
			wantGroup:  "root:x:0:\nenvd:x:20:\n",
			wantGroups: []int{20},
		},
		{
			name: "gid already has a group", passwd: passwd, group: "root:x:0:\nstaff:x:50:\n",
			user:       User{Name: "envd", UID: 1000, GID: 50, Home: "/home/envd"},
			wantPasswd: "root:x:0:0:root:/root:/bin/bash\nenvd:x:1000:50::/home/envd:/bin/bash\n",
			wantGroup:  "root:x:0:\nstaff:x:50:\n",
			wantGroups: []int{50},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etc := t.TempDir()
			writeFile(t, filepath.Join(etc, "passwd"), []byte(tt.passwd))
			writeFile(t, filepath.Join(etc, "group"), []byte(tt.group))
			groups, err := adoptAccount(etc, &tt.user, "/bin/sh")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(etc, "passwd")); string(got) != tt.wantPasswd {
				t.Errorf("passwd:\n%s\nwant:\n%s", got, tt.wantPasswd)
			}
			if got, _ := os.ReadFile(filepath.Join(etc, "group")); string(got) != tt.wantGroup {
				t.Errorf("group:\n%s\nwant:\n%s", got, tt.wantGroup)
			}
			if !slices.Equal(groups, tt.wantGroups) {
				t.Errorf("groups %v, want %v", groups, tt.wantGroups)
			}
		})
	}
}

// dropRoot must change every thread, so the children the agent starts
// later (from any goroutine) run as the user too.
func TestDropRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if os.Getenv("ENVD_TEST_DROP_ROOT") == "1" {
		if err := dropRoot(&User{Name: "nobody", UID: 65534, GID: 65534}, []int{65534, 44}); err != nil {
			t.Fatal(err)
		}
		done := make(chan string)
		go func() {
			out, err := exec.Command("id").CombinedOutput()
			done <- fmt.Sprintf("%s %v", strings.TrimSpace(string(out)), err)
		}()
		fmt.Println("ID:", <-done)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDropRoot$", "-test.v")
	cmd.Env = append(os.Environ(), "ENVD_TEST_DROP_ROOT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ID: uid=65534") || !strings.Contains(string(out), "gid=65534") ||
		!strings.Contains(string(out), "44") {
		t.Fatalf("after dropRoot:\n%s", out)
	}
}
