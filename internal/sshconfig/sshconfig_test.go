package sshconfig

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// testEntry returns a valid entry whose key paths live under dir.
func testEntry(dir, name string, port int) Entry {
	return Entry{
		Name:           name,
		HostName:       "127.0.0.1",
		Port:           port,
		User:           "envd",
		IdentityFile:   filepath.Join(dir, "id_ed25519"),
		KnownHostsFile: filepath.Join(dir, "known_hosts"),
	}
}

// sshG runs `ssh -G` on cfg for host and returns its settings; skips the test
// when OpenSSH is not installed.
func sshG(t *testing.T, cfg, host string) map[string]string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/ssh"); err != nil {
		t.Skip("OpenSSH client not installed")
	}
	cmd := exec.Command("/usr/bin/ssh", "-G", "-F", cfg, host)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh -G -F %s %s: %v\n%s", cfg, host, err, stderr.Bytes())
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		key, value, _ := strings.Cut(line, " ")
		if _, seen := settings[key]; !seen {
			settings[key] = value
		}
	}
	return settings
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"foo", true}, {"a", true}, {"0x", true}, {"my-env_1.2", true},
		{"", false}, {"Foo", false}, {"-x", false}, {".x", false}, {"_x", false},
		{"a b", false}, {"a*", false}, {"a,b", false}, {"a/b", false}, {"ä", false},
	}
	for _, tt := range tests {
		if err := ValidateName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestAddRejectsBadEntry(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		modify func(*Entry)
		want   string
	}{
		{"upper-case name", func(e *Entry) { e.Name = "Foo" }, "invalid environment name"},
		{"wildcard name", func(e *Entry) { e.Name = "f*" }, "invalid environment name"},
		{"port zero", func(e *Entry) { e.Port = 0 }, "invalid ssh port"},
		{"port too big", func(e *Entry) { e.Port = 70000 }, "invalid ssh port"},
		{"user with space", func(e *Entry) { e.User = "a b" }, "invalid ssh user"},
		{"empty host", func(e *Entry) { e.HostName = "" }, "invalid ssh HostName"},
		{"relative key", func(e *Entry) { e.IdentityFile = "id_ed25519" }, "absolute path"},
		{"percent in key path", func(e *Entry) { e.IdentityFile = "/a%d/id" }, "misread"},
		{"newline in known_hosts path", func(e *Entry) { e.KnownHostsFile = "/a\n/k" }, "misread"},
		{"quote in known_hosts path", func(e *Entry) { e.KnownHostsFile = `/a"b/k` }, "misread"},
		{"shell syntax in envd's path", func(e *Entry) { e.Proxy = "/opt/a;rm -rf ~/envd" }, "cannot go into a ProxyCommand"},
		{"backquote in envd's path", func(e *Entry) { e.Proxy = "/opt/`id`/envd" }, "cannot go into a ProxyCommand"},
		{"relative envd path", func(e *Entry) { e.Proxy = "bin/envd" }, "cannot go into a ProxyCommand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "config")
			e := testEntry(dir, "foo", 2222)
			tt.modify(&e)
			err := Add(cfg, e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add: got %v, want error containing %q", err, tt.want)
			}
			if _, err := os.Stat(cfg); !os.IsNotExist(err) {
				t.Errorf("config written despite the error")
			}
		})
	}
	if err := Remove(filepath.Join(dir, "config"), "Bad Name"); err == nil {
		t.Error("Remove accepted an invalid name")
	}
}

func TestRender(t *testing.T) {
	e := Entry{Name: "foo", HostName: "127.0.0.1", Port: 2222, User: "envd",
		IdentityFile: "/root/.config/envd/id_ed25519", KnownHostsFile: "/root/my dir/known_hosts"}
	want := `# BEGIN envd foo (managed by envd; edits here are overwritten)
Host foo.envd
  HostName 127.0.0.1
  Port 2222
  User envd
  IdentityFile /root/.config/envd/id_ed25519
  IdentitiesOnly yes
  HostKeyAlias foo.envd
  UserKnownHostsFile "/root/my dir/known_hosts"
  StrictHostKeyChecking yes
  ForwardAgent no
# back to all hosts, so the lines below keep their meaning
Host *
# END envd foo
`
	if got := string(e.render("\n")); got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	e.ForwardAgent = true
	if got, want := string(e.render("\n")), strings.Replace(want, "ForwardAgent no", "ForwardAgent yes", 1); got != want {
		t.Errorf("render with ForwardAgent:\n%s\nwant:\n%s", got, want)
	}
	e.ForwardAgent, e.Proxy = false, "/opt/my tools/envd"
	withProxy := strings.Replace(want, "  Port 2222\n", "  Port 2222\n  ProxyCommand \"/opt/my tools/envd\" ssh --stdio foo\n", 1)
	if got := string(e.render("\n")); got != withProxy {
		t.Errorf("render with Proxy:\n%s\nwant:\n%s", got, withProxy)
	}
	e.Context = "cluster"
	withContext := strings.Replace(withProxy, "ssh --stdio foo", "--context cluster ssh --stdio foo", 1)
	if got := string(e.render("\n")); got != withContext {
		t.Errorf("render with Context:\n%s\nwant:\n%s", got, withContext)
	}
}

// TestOpenSSHReadsBlock checks that OpenSSH itself reads the block as meant,
// including paths with spaces and a user's `Host *` that follows it.
func TestOpenSSHReadsBlock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space")
	cfg := filepath.Join(dir, "config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("Host *\n  User bob\n  Port 22\n  StrictHostKeyChecking no\n  ForwardAgent yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEntry(dir, "foo", 2222)
	if err := Add(cfg, e); err != nil {
		t.Fatal(err)
	}
	// ssh-agent forwarding is off, even though the user's Host * turns it on.
	if got := sshG(t, cfg, "foo.envd")["forwardagent"]; got != "no" {
		t.Errorf("ssh -G foo.envd: forwardagent = %q, want no", got)
	}
	if other := sshG(t, cfg, "example.com"); other["forwardagent"] != "yes" {
		t.Errorf("ssh -G example.com: forwardagent = %q, want the user's yes", other["forwardagent"])
	}
	e.ForwardAgent = true // envd up --forward-agent
	e.Proxy = filepath.Join(dir, "envd")
	e.Context = "cluster"
	if err := Add(cfg, e); err != nil {
		t.Fatal(err)
	}
	if entries, err := Entries(cfg); err != nil || len(entries) != 1 || entries[0] != e {
		t.Errorf("Entries = %+v, %v; want %+v", entries, err, e)
	}
	got := sshG(t, cfg, "foo.envd")
	want := map[string]string{
		"hostname":              "127.0.0.1",
		"port":                  "2222",
		"user":                  "envd",
		"identityfile":          e.IdentityFile,
		"identitiesonly":        "yes",
		"hostkeyalias":          "foo.envd",
		"userknownhostsfile":    e.KnownHostsFile,
		"stricthostkeychecking": "true", // how ssh -G prints "yes"
		"forwardagent":          "yes",
		"proxycommand":          `"` + e.Proxy + `" --context cluster ssh --stdio foo`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ssh -G foo.envd: %s = %q, want %q", k, got[k], v)
		}
	}
	// The user's own hosts still get the user's settings.
	if other := sshG(t, cfg, "example.com"); other["user"] != "bob" || other["stricthostkeychecking"] != "false" {
		t.Errorf("ssh -G example.com: user=%q stricthostkeychecking=%q, want bob, false", other["user"], other["stricthostkeychecking"])
	}
}

// TestAddRemoveKeepsUserBytes adds and removes blocks in config files of many
// shapes and checks that the user's bytes, and what ssh makes of the user's
// hosts, never change.
func TestAddRemoveKeepsUserBytes(t *testing.T) {
	const lf = "# my hosts\nInclude INC\n\nHost box\n  HostName 10.0.0.5\n\nHost *\n  User bob\n"
	tests := []struct {
		name    string
		content string // "INC" stands for an included file; ignored if missing
		missing bool
	}{
		{name: "missing file", missing: true},
		{name: "empty file", content: ""},
		{name: "comments, Include, Host *", content: lf},
		{name: "CRLF, no trailing newline", content: strings.TrimSuffix(strings.ReplaceAll(lf, "\n", "\r\n"), "\r\n")},
		{name: "options and Include before any Host", content: "ServerAliveInterval 30\nUser carol\nInclude INC\n\nHost *\n  ForwardX11 no"},
		{name: "leading blank lines", content: "\n\nHost box\n  Port 2200\n"},
		{name: "stray END marker", content: "# END envd a\nHost box\n  Port 2201\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "ssh", "config")
			inc := filepath.Join(dir, "included")
			if err := os.WriteFile(inc, []byte("Host inc-host\n  HostName 10.1.2.3\n  Port 2022\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			original := []byte(strings.ReplaceAll(tt.content, "INC", inc))
			if !tt.missing {
				os.MkdirAll(filepath.Dir(cfg), 0o700)
				if err := os.WriteFile(cfg, original, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			userHosts := []string{"box", "inc-host", "example.com"}
			before := map[string]map[string]string{}
			if !tt.missing {
				for _, h := range userHosts {
					before[h] = sshG(t, cfg, h)
				}
			}

			a, b := testEntry(dir, "a", 2222), testEntry(dir, "b", 2223)
			if err := Add(cfg, a); err != nil {
				t.Fatal(err)
			}
			eol := lineEnding(original)
			want := a.render(eol)
			if len(original) > 0 {
				want = concat(want, []byte(eol), original)
			}
			if got := readFile(t, cfg); !bytes.Equal(got, want) {
				t.Fatalf("after Add a:\n%q\nwant:\n%q", got, want)
			}

			if err := Add(cfg, b); err != nil {
				t.Fatal(err)
			}
			a.Port = 3333 // re-adding replaces a in place, below b
			if err := Add(cfg, a); err != nil {
				t.Fatal(err)
			}
			got := readFile(t, cfg)
			if !bytes.HasSuffix(got, original) || bytes.Count(got, []byte("# BEGIN envd a ")) != 1 {
				t.Fatalf("after Add b, a:\n%q", got)
			}
			if entries, _ := Entries(cfg); !reflect.DeepEqual(entries, []Entry{b, a}) {
				t.Errorf("Entries = %+v, want b then a", entries)
			}
			if s := sshG(t, cfg, "a.envd"); s["port"] != "3333" || s["user"] != "envd" {
				t.Errorf("ssh -G a.envd: port %s user %s", s["port"], s["user"])
			}
			for _, h := range userHosts {
				if before[h] == nil {
					continue
				}
				after := sshG(t, cfg, h)
				for k, v := range before[h] {
					if after[k] != v {
						t.Errorf("ssh -G %s: %s changed from %q to %q", h, k, v, after[k])
					}
				}
			}

			if err := Remove(cfg, "a"); err != nil {
				t.Fatal(err)
			}
			if entries, _ := Entries(cfg); !reflect.DeepEqual(entries, []Entry{b}) {
				t.Errorf("after Remove a, Entries = %+v, want just b", entries)
			}
			for _, name := range []string{"b", "b", "never-added"} {
				if err := Remove(cfg, name); err != nil {
					t.Fatalf("Remove %s: %v", name, err)
				}
			}
			if got := readFile(t, cfg); !bytes.Equal(got, original) {
				t.Errorf("after removing all:\n%q\nwant:\n%q", got, original)
			}
		})
	}
}

func TestAddExistingBlocks(t *testing.T) {
	dir := t.TempDir()
	e := testEntry(dir, "a", 2222)
	old := testEntry(dir, "a", 1111)
	block, oldBlock := string(e.render("\n")), string(old.render("\n"))
	tests := []struct {
		name, before, after string
	}{
		{"in place, mid-file", "Host x\n\n" + oldBlock + "\nHost y\n", "Host x\n\n" + block + "\nHost y\n"},
		{"last line unterminated", "Host x\n" + strings.TrimSuffix(oldBlock, "\n"), "Host x\n" + strings.TrimSuffix(block, "\n")},
		{"duplicates collapse to the first", oldBlock + "\n" + "Host x\n" + oldBlock + "\n", block + "\n" + "Host x\n"},
		{"CRLF block", strings.ReplaceAll(oldBlock, "\n", "\r\n") + "\r\nHost x\r\n", strings.ReplaceAll(block, "\n", "\r\n") + "\r\nHost x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(cfg, []byte(tt.before), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Add(cfg, e); err != nil {
				t.Fatal(err)
			}
			if got := string(readFile(t, cfg)); got != tt.after {
				t.Errorf("got:\n%q\nwant:\n%q", got, tt.after)
			}
		})
	}
}

func TestRemoveMissing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	content := []byte("Host x\n  Port 1\n")
	if err := os.WriteFile(cfg, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Remove(cfg, "nope"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, cfg); !bytes.Equal(got, content) {
		t.Errorf("file changed: %q", got)
	}
	// A missing config (and directory) stays missing.
	absent := filepath.Join(dir, "none", "config")
	if err := Remove(absent, "nope"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(absent)); !os.IsNotExist(err) {
		t.Errorf("Remove created %s", filepath.Dir(absent))
	}
	if entries, err := Entries(absent); err != nil || entries != nil {
		t.Errorf("Entries of a missing file = %v, %v", entries, err)
	}
}

func TestUnterminatedBlock(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	content := []byte("Host x\n# BEGIN envd a (managed by envd)\nHost a.envd\n  Port 1\nHost y\n")
	if err := os.WriteFile(cfg, content, 0o600); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{
		"Add":    Add(cfg, testEntry(t.TempDir(), "b", 2)),
		"Remove": Remove(cfg, "a"),
	}
	_, checks["Entries"] = Entries(cfg)
	for op, err := range checks {
		if err == nil || !strings.Contains(err.Error(), cfg+":2:") || !strings.Contains(err.Error(), `"# END envd a"`) {
			t.Errorf("%s: got %v, want an error naming %s:2 and the missing END line", op, err, cfg)
		}
	}
	if got := readFile(t, cfg); !bytes.Equal(got, content) {
		t.Errorf("file changed: %q", got)
	}
}

func TestSymlinkedConfig(t *testing.T) {
	tests := []struct {
		name   string
		exists bool
	}{
		{"target exists", true},
		{"dangling link", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "dotfiles", "ssh_config")
			link := filepath.Join(dir, ".ssh", "config")
			os.MkdirAll(filepath.Dir(target), 0o755)
			os.MkdirAll(filepath.Dir(link), 0o700)
			if tt.exists {
				if err := os.WriteFile(target, []byte("Host x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("../dotfiles/ssh_config", link); err != nil {
				t.Fatal(err)
			}
			if err := Add(link, testEntry(dir, "a", 2222)); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("link replaced: %v %v", fi.Mode(), err)
			}
			if !bytes.Contains(readFile(t, target), []byte("# BEGIN envd a ")) {
				t.Errorf("block not written to the link's target")
			}
			if err := Remove(link, "a"); err != nil {
				t.Fatal(err)
			}
			if entries, _ := Entries(link); len(entries) != 0 {
				t.Errorf("block not removed: %v", entries)
			}
		})
	}
}

func TestModes(t *testing.T) {
	dir := t.TempDir()
	// A new config gets 0600 in a new 0700 directory.
	cfg := filepath.Join(dir, "new", ".ssh", "config")
	if err := Add(cfg, testEntry(dir, "a", 2222)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o600 {
		t.Errorf("new config mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(cfg)); fi.Mode().Perm() != 0o700 {
		t.Errorf("new dir mode %v, want 0700", fi.Mode().Perm())
	}
	// An existing config keeps its mode through Add and Remove.
	cfg = filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("Host x\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(cfg, 0o640) // beat the umask
	for _, op := range []func() error{
		func() error { return Add(cfg, testEntry(dir, "a", 2222)) },
		func() error { return Remove(cfg, "a") },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", fi.Mode().Perm())
		}
	}
}

// TestConcurrentAdd races Adds from goroutines and from separate processes
// (this test binary re-run as TestHelperProcess); no block may be lost.
func TestConcurrentAdd(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("Host *\n  User bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const goroutines, procs, perProc = 16, 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines+procs)
	for i := range goroutines {
		wg.Go(func() { errs <- Add(cfg, testEntry(dir, fmt.Sprintf("g%d", i), 3000+i)) })
	}
	for p := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "ENVD_SSHCONFIG_HELPER=add", "ENVD_CFG="+cfg, fmt.Sprintf("ENVD_PREFIX=p%d-", p))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("helper %d: %v\n%s", p, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	entries, err := Entries(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != goroutines+procs*perProc {
		t.Errorf("got %d blocks, want %d", len(entries), goroutines+procs*perProc)
	}
	if !bytes.HasSuffix(readFile(t, cfg), []byte("Host *\n  User bob\n")) {
		t.Error("user's lines lost")
	}
	// Besides the config, only its lock file: no temp files left behind.
	names, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(names) != 1 || filepath.Base(names[0]) != ".config.envd.lock" {
		t.Errorf("leftover files: %v", names)
	}
}

// TestHelperProcess is run in a child process by the concurrency tests.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv("ENVD_SSHCONFIG_HELPER") {
	case "add":
		cfg, prefix := os.Getenv("ENVD_CFG"), os.Getenv("ENVD_PREFIX")
		for i := range 8 {
			if err := Add(cfg, testEntry(filepath.Dir(cfg), fmt.Sprintf("%s%d", prefix, i), 4000+i)); err != nil {
				t.Fatal(err)
			}
		}
	case "key":
		k, err := EnsureUserKey(os.Getenv("ENVD_KEYDIR"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(k.AuthorizedKey)
	default:
		t.Skip("only run as a helper process")
	}
}
