package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// startEnvd starts envd in dir without waiting for it; stderr lines go to
// onLine as they come (and are kept for the result).
func startEnvd(t *testing.T, dir string, onLine func(string), args ...string) (*exec.Cmd, func() result) {
	t.Helper()
	cmd := exec.Command(envdBin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return cmd, func() result {
		<-done
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("running envd: %v", err)
		}
		return r
	}
}

// lastLines is the end of what envd said, for the test log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func imageExists(t *testing.T, image string) bool {
	_, err := dockerCmd(t, "image", "inspect", image)
	return err == nil
}

// TestBuilderVanishingFiles: files removed while the build directory is
// sent must fail the build with the file's name, and tag nothing (they
// used to arrive as empty files in an image built "successfully").
func TestBuilderVanishingFiles(t *testing.T) {
	requireE2E(t)
	dir := project(t, "bd-vanish", map[string]string{
		"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    io.copy(\"data\", \"/data\")\n",
	})
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	block := bytes.Repeat([]byte("envd"), 10<<20/4)
	var names []string
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("f%02d.bin", i)
		if err := os.WriteFile(filepath.Join(data, name), block, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	image := "bd-vanish:dev"
	removeImage(t, image)

	// Once the solve runs (envd reads the files before, for its build key)
	// and a file is opened to be sent, remove the last ten: files go in
	// order, so those are not sent yet.
	armed := make(chan struct{})
	var once sync.Once
	removed := removeOnOpen(t, data, armed, names[:30], names[30:])
	_, wait := startEnvd(t, dir, func(line string) {
		if strings.HasPrefix(line, "#1 ") {
			once.Do(func() { close(armed) })
		}
	}, "build", "--progress", "plain", "--force")
	r := wait()
	select {
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Fatalf("no file was opened during the solve, so nothing was removed: %s", r)
	}
	if r.code != 1 {
		if r.code == 0 {
			out := runInImage(t, image, "sh", "-c", "find /data -size 0 | sort")
			t.Fatalf("build with files removed during the transfer exited 0; empty files in the image:\n%s\n%s", out, r)
		}
		t.Fatalf("exit %d, want 1: %s", r.code, r)
	}
	t.Logf("envd said:\n%s", lastLines(r.stderr, 2))
	if !strings.Contains(r.stderr, "while envd was sending it to the builder") || !strings.Contains(r.stderr, filepath.Join(data, "f")) {
		t.Errorf("the error does not name the file that changed: %s", r)
	}
	if imageExists(t, image) {
		t.Errorf("%s was tagged by a failed build", image)
	}
	// With the directory settled, the build works.
	mustEnvd(t, dir, "build", "--progress", "plain")
	if out := runInImage(t, image, "sh", "-c", "ls /data | wc -l; find /data -size 0 | wc -l"); strings.Fields(out)[0] != "30" || strings.Fields(out)[1] != "0" {
		t.Errorf("rebuilt image: files, empty files = %q; want 30, 0", out)
	}
}

// removeOnOpen watches dir (inotify) and, once armed is closed, removes
// victims as soon as one of triggers is opened; the returned channel closes
// when it has.
func removeOnOpen(t *testing.T, dir string, armed <-chan struct{}, triggers, victims []string) <-chan struct{} {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer syscall.Close(fd)
		buf := make([]byte, 64*1024)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += syscall.SizeofInotifyEvent + int(ev.Len)
				select {
				case <-armed:
				default:
					continue
				}
				if slices.Contains(triggers, name) {
					for _, v := range victims {
						os.Remove(filepath.Join(dir, v))
					}
					close(done)
					return
				}
			}
		}
	}()
	return done
}

// listeningPorts are the 127.0.0.1 TCP ports process pid listens on.
func listeningPorts(pid int) []int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	data, _ := os.ReadFile("/proc/net/tcp")
	var ports []int
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// sl local rem st ... inode(9)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] || !strings.HasPrefix(f[1], "0100007F:") {
			continue
		}
		p, _ := strconv.ParseInt(strings.TrimPrefix(f[1], "0100007F:"), 16, 32)
		ports = append(ports, int(p))
	}
	return ports
}

// TestBuilderHandoverRegistryNeedsSecret: during a build, another local
// user finds the hand-over registry's port; it refuses them (list, pull,
// push) and still hands the image over to Docker.
func TestBuilderHandoverRegistryNeedsSecret(t *testing.T) {
	requireE2E(t)
	dir := project(t, "bd-reg", map[string]string{
		"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    run([\"echo bd-reg > /bd-reg.txt\"])\n",
	})
	image := "bd-reg:dev"
	removeImage(t, image)
	cmd, wait := startEnvd(t, dir, nil, "build", "--progress", "plain", "--force", "--load-via", "registry")

	var port int
	for deadline := time.Now().Add(2 * time.Minute); port == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ps := listeningPorts(cmd.Process.Pid); len(ps) > 0 {
			port = ps[0]
		}
	}
	if port == 0 {
		t.Fatalf("envd never listened on 127.0.0.1: %s", wait())
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Requests made before the registry serves wait until it does.
	tries := []struct{ method, path string }{
		{"GET", "/v2/_catalog"},
		{"GET", "/v2/"},
		{"GET", "/v2/envd/x/manifests/latest"},
		{"GET", "/v2/envd/x/blobs/sha256:" + strings.Repeat("0", 64)},
		{"POST", "/v2/envd/x/blobs/uploads/"},
		{"PUT", "/v2/envd/x/manifests/latest"},
	}
	codes := make([]string, len(tries))
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 3 * time.Minute}
	for i, tr := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(tr.method, base+tr.path, strings.NewReader("{}"))
			resp, err := client.Do(req)
			if err != nil {
				codes[i] = err.Error()
				return
			}
			resp.Body.Close()
			codes[i] = strconv.Itoa(resp.StatusCode)
		}()
	}
	r := wait()
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	for i, tr := range tries {
		if codes[i] != "401" {
			t.Errorf("%s %s without the secret: %s, want 401", tr.method, tr.path, codes[i])
		}
	}
	if out := runInImage(t, image, "cat", "/bd-reg.txt"); strings.TrimSpace(out) != "bd-reg" {
		t.Errorf("image handed over: %q", out)
	}
	if out, _ := dockerCmd(t, "images", "--digests", "--format", "{{.Repository}}:{{.Tag}}@{{.Digest}}"); strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("the hand-over reference stayed in Docker:\n%s", out)
	}
	// After the build the port is closed.
	if _, err := http.Get(base + "/v2/"); err == nil {
		t.Errorf("the registry still answers after the build")
	}
}

func builderDir() string { return filepath.Join(stateDir, "data", "envd", "buildkit") }

func builderPID(t *testing.T) int {
	data, err := os.ReadFile(filepath.Join(builderDir(), "buildkitd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// mountsUnder lists the mounts below dir in this (the host's) mount table.
func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// stepProcesses are the processes whose root is a build step's rootfs of
// the builder under test (its snapshots are the overlay's upper dir).
func stepProcesses() []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		data, _ := os.ReadFile("/proc/" + p.Name() + "/mountinfo")
		first, _, _ := strings.Cut(string(data), "\n")
		if strings.Contains(first, " / / ") && strings.Contains(first, "upperdir="+builderDir()+"/") {
			cmd, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
			out = append(out, p.Name()+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// TestBuilderKilledMidStep: the managed builder killed during a step ends
// the build with exit 1 and plain words naming its log; the next build
// restarts it and works, and nothing stays mounted below its directory.
func TestBuilderKilledMidStep(t *testing.T) {
	requireE2E(t)
	dir := project(t, "bd-kill", map[string]string{
		"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n    run([\"sleep 30\"])\n",
	})
	image := "bd-kill:dev"
	removeImage(t, image)
	tmpBefore := mountsUnder(os.TempDir())
	pid := builderPID(t)
	var once sync.Once
	_, wait := startEnvd(t, dir, func(line string) {
		if strings.Contains(line, "sleep 30") {
			once.Do(func() {
				time.Sleep(2 * time.Second) // the step is running
				syscall.Kill(pid, syscall.SIGKILL)
			})
		}
	}, "build", "--progress", "plain", "--force")
	r := wait()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r)
	}
	t.Logf("envd said:\n%s", lastLines(r.stderr, 3))
	logPath := filepath.Join(builderDir(), "buildkitd.log")
	if !strings.Contains(r.stderr, "the builder stopped during the build") || !strings.Contains(r.stderr, logPath) ||
		!strings.Contains(r.stderr, "run the command again") {
		t.Errorf("the error does not say the builder stopped and where its log is (%s): %s", logPath, r)
	}
	if imageExists(t, image) {
		t.Errorf("%s was tagged by a failed build", image)
	}
	t.Logf("the kill left %d mounts below %s, and these processes: %q", len(mountsUnder(builderDir())), builderDir(), stepProcesses())
	os.WriteFile(filepath.Join(dir, "build.envd"), []byte("def build():\n    base(image=\"debian:bookworm\")\n    run([\"echo again > /again\"])\n"), 0o644)
	mustEnvd(t, dir, "build", "--progress", "plain")
	if out := runInImage(t, image, "cat", "/again"); strings.TrimSpace(out) != "again" {
		t.Errorf("the next build's image: %q", out)
	}
	if left := mountsUnder(builderDir()); len(left) > 0 {
		t.Errorf("mounts left below %s after the builder restarted:\n%s", builderDir(), strings.Join(left, "\n"))
	}
	if left := stepProcesses(); len(left) > 0 {
		t.Errorf("the killed builder's step still runs after the builder restarted: %q", left)
	}
	// A step's secrets (the CA bundle) are a tmpfs of the builder's: below
	// its directory, never in the host's /tmp, where nothing would sweep it.
	if left := mountsUnder(os.TempDir()); len(left) > len(tmpBefore) {
		t.Errorf("mounts left in %s: %q (before the build: %q)", os.TempDir(), left, tmpBefore)
	}
}

// handoverBytes is the size of the hand-over registry's blob cache.
func handoverBytes(t *testing.T) int64 {
	var n int64
	es, _ := os.ReadDir(filepath.Join(stateDir, "cache", "envd", "handover", "sha256"))
	for _, e := range es {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// TestBuilderHandoverCacheFreed: removing images frees their blobs in the
// hand-over cache, whether envd removed them (images rm) or Docker did and
// `envd images prune` runs after.
func TestBuilderHandoverCacheFreed(t *testing.T) {
	requireE2E(t)
	const big = 30 << 20
	var images []string
	for _, name := range []string{"bd-cache1", "bd-cache2"} {
		dir := project(t, name, map[string]string{
			"build.envd": fmt.Sprintf("def build():\n    base(image=\"debian:bookworm\")\n    run([\"head -c %d /dev/urandom > /%s\"])\n", big, name),
		})
		image := name + ":dev"
		removeImage(t, image)
		mustEnvd(t, dir, "build", "--progress", "plain", "--force", "--load-via", "registry")
		images = append(images, image)
	}
	before := handoverBytes(t)
	if before < 2*big {
		t.Fatalf("hand-over cache holds %d bytes after two builds of %d-byte layers", before, big)
	}
	r := mustEnvd(t, "", "images", "rm", images[0])
	afterRm := handoverBytes(t)
	t.Logf("cache: %d bytes, after images rm %d", before, afterRm)
	if before-afterRm < big {
		t.Errorf("envd images rm freed %d bytes of the hand-over cache, want at least %d: %s", before-afterRm, big, r)
	}
	if out, err := dockerCmd(t, "rmi", images[1]); err != nil {
		t.Fatal(out)
	}
	r = mustEnvd(t, "", "images", "prune")
	afterPrune := handoverBytes(t)
	t.Logf("after docker rmi + envd images prune %d: %s", afterPrune, r.stdout)
	if afterRm-afterPrune < big || !strings.Contains(r.stdout, "of the hand-over cache") {
		t.Errorf("envd images prune freed %d bytes of the hand-over cache, want at least %d: %s", afterRm-afterPrune, big, r)
	}
	if imageExists(t, images[0]) || imageExists(t, images[1]) {
		t.Errorf("images still there")
	}

	// envd destroy removes the environment's image, and its blobs with it.
	name := "bd-cache3"
	dir := project(t, name, map[string]string{
		"build.envd": fmt.Sprintf("def build():\n    base(os=\"debian12\", language=\"python3\")\n    run([\"head -c %d /dev/urandom > /%s\"])\n", big, name),
	})
	t.Cleanup(func() { envd(t, dir, "destroy", name) })
	mustEnvd(t, dir, "up", "--detach", "--progress", "plain")
	withEnv := handoverBytes(t)
	r = mustEnvd(t, dir, "destroy", name)
	afterDestroy := handoverBytes(t)
	t.Logf("with %s up: %d, after destroy %d", name, withEnv, afterDestroy)
	if withEnv-afterDestroy < big {
		t.Errorf("envd destroy freed %d bytes of the hand-over cache, want at least %d: %s", withEnv-afterDestroy, big, r)
	}
}
