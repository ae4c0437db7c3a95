package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// benchBase is the second base image tag the switch-base scenario moves to; ensureBenchBase makes it.
const benchBase = "debian:bookworm-bench"

// bench is one run: what it started (cleanups), and what it measured.
type bench struct {
	o        options
	dir      string // everything this run writes; removed at the end
	cleanups []func() error
	machine  machine
	tools    []tool
	works    []*workload
	results  []result
	registry string // host:port of the team registry, once started
}

// onCleanup registers f to run at cleanup, in reverse order of registration.
func (b *bench) onCleanup(f func() error) { b.cleanups = append(b.cleanups, f) }

func (b *bench) cleanup() error {
	var errs []error
	for _, f := range slices.Backward(b.cleanups) {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	b.cleanups = nil
	return errors.Join(errs...)
}

func (b *bench) run(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: envd's managed buildkitd and docker need it")
	}
	b.machine.loadBefore = loadAverage()
	b.machine.started = time.Now()
	if err := b.preflight(ctx); err != nil {
		return err
	}
	if b.o.logs != "" {
		if err := os.MkdirAll(b.o.logs, 0o755); err != nil {
			return err
		}
	}
	// Short: the managed buildkitd's socket lives below it.
	dir, err := os.MkdirTemp(b.o.tmp, "envd-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.onCleanup(func() error { return removeTree(dir) })

	if err := ensureBenchBase(ctx, b.o.docker, b.o.mirror); err != nil {
		return err
	}
	if err := b.startTools(ctx); err != nil {
		return err
	}
	for _, name := range b.o.workloads {
		w, err := newWorkload(name, b)
		if err != nil {
			return err
		}
		b.works = append(b.works, w)
	}
	b.machine.collect(ctx, b)

	for _, w := range b.works {
		for rep := 1; rep <= w.reps; rep++ {
			for _, t := range b.tools {
				rs, err := b.sequence(ctx, w, t, rep)
				b.results = append(b.results, rs...)
				if err != nil {
					return fmt.Errorf("%s, %s, repetition %d: %w", w.name, t.name(), rep, err)
				}
			}
		}
	}
	b.machine.loadAfter = loadAverage()
	b.machine.finished = time.Now()

	if b.o.smoke {
		return smokeChecks(os.Stdout, b.results, b.works)
	}
	return b.writeReport()
}

// preflight checks what the run needs, so it fails in seconds with the fix rather than after a cold build.
func (b *bench) preflight(ctx context.Context) error {
	need := []string{b.o.envd, b.o.docker}
	if b.o.buildkitd != "" {
		need = append(need, b.o.buildkitd)
	}
	if slices.Contains(b.o.scenarios, "team-cache") {
		need = append(need, b.o.registry)
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not found: run `make setup` (or `make build`) from the repository root", p)
		}
	}
	if _, err := output(ctx, nil, b.o.docker, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("docker does not answer (%v): run `make setup`", err)
	}
	resp, err := http.Get("http://" + b.o.mirror + "/v2/")
	if err != nil {
		return fmt.Errorf("registry mirror %s does not answer (%v): run `make setup`", b.o.mirror, err)
	}
	resp.Body.Close()
	return nil
}

// startTools copies the binaries under test, so a rebuild of bin/ during the run does not change what is
// measured, and prepares each tool.
func (b *bench) startTools(ctx context.Context) error {
	binDir := filepath.Join(b.dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	envdBin, bkBin := filepath.Join(binDir, "envd"), ""
	if err := copyFile(b.o.envd, envdBin); err != nil {
		return err
	}
	if b.o.buildkitd != "" {
		bkBin = filepath.Join(binDir, "buildkitd")
		if err := copyFile(b.o.buildkitd, bkBin); err != nil {
			return err
		}
	}
	// envd finds the agent beside itself (a static envd is its own); only envd-dev's images need it.
	if agent := filepath.Join(filepath.Dir(b.o.envd), "envd-agent"); fileExists(agent) {
		if err := copyFile(agent, filepath.Join(binDir, "envd-agent")); err != nil {
			return err
		}
	}
	for _, name := range b.o.tools {
		var t tool
		switch name {
		case "envd", "envd-dev", "envd-container":
			e := &envdTool{bin: envdBin, buildkitd: bkBin, state: filepath.Join(b.dir, name),
				mirror: "http://" + b.o.mirror, images: images{docker: b.o.docker},
				container: name == "envd-container", dev: name == "envd-dev"}
			b.onCleanup(e.close) // registered first: it stops a buildkitd start() may have left half-started
			if err := e.start(ctx); err != nil {
				return err
			}
			t = e
		case "docker-legacy", "docker-buildkit":
			d := &dockerTool{buildkit: name == "docker-buildkit", mirror: b.o.mirror, caBundle: caBundle(),
				images: images{docker: b.o.docker}}
			b.onCleanup(d.close)
			t = d
		}
		b.tools = append(b.tools, t)
	}
	// Cold starts remove the base images from Docker: put back those Docker had before.
	{
		var had []string
		for _, ref := range dockerBaseRefs(b.o.mirror) {
			if _, err := output(ctx, nil, b.o.docker, "image", "inspect", ref); err == nil {
				had = append(had, ref)
			}
		}
		b.onCleanup(func() error {
			var errs []error
			for _, ref := range had {
				if out, err := output(context.Background(), nil, b.o.docker, "pull", ref); err != nil {
					errs = append(errs, fmt.Errorf("pulling back %s: %v: %s", ref, err, tail(out, 3)))
				}
			}
			return errors.Join(errs...)
		})
	}
	// dockerd's BuildKit cache from this run: ours to drop (cold starts drop it too).
	if slices.Contains(b.o.tools, "docker-buildkit") {
		b.onCleanup(func() error {
			_, err := output(context.Background(), nil, b.o.docker, "builder", "prune", "-af")
			return err
		})
	}
	return nil
}

// sequence runs every scenario once for one tool, from a cold start, each scenario changing the project the
// previous one left.
func (b *bench) sequence(ctx context.Context, w *workload, t tool, rep int) ([]result, error) {
	proj := filepath.Join(b.dir, "projects", t.name(), "bench-"+w.name)
	if err := removeTree(proj); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(proj, 0o755); err != nil {
		return nil, err
	}
	image := "envd-bench-" + w.name + ":" + t.name()
	if err := b.clearDocker(ctx); err != nil {
		return nil, fmt.Errorf("clearing Docker: %w", err)
	}
	if err := t.reset(ctx); err != nil {
		return nil, fmt.Errorf("clearing caches: %w", err)
	}
	s := w.initial
	seen := map[string]bool{}   // wheels downloaded since the cold start
	chains := map[string]bool{} // layer chains Docker holds from this sequence's earlier builds
	var out []result
	second := filepath.Join(b.dir, "projects", t.name(), "bench-"+w.name+"-second")
	secondImage := "envd-bench-" + w.name + "-second:" + t.name()
	if err := removeTree(second); err != nil {
		return nil, err
	}
	// Not timed: the images must hold what was asked for. Before a teammate's
	// build, which starts by clearing Docker.
	verified := false
	verify := func() error {
		if verified {
			return nil
		}
		verified = true
		imports := w.imports
		if slices.Contains(b.o.scenarios, "add-package") {
			imports = append(slices.Clone(imports), w.addImport)
		}
		if err := verifyImage(ctx, b.o.docker, image, imports); err != nil {
			return err
		}
		if slices.Contains(b.o.scenarios, "second-project") {
			return verifyImage(ctx, b.o.docker, secondImage, w.secondImports)
		}
		return nil
	}
	for _, sc := range scenarios {
		if !slices.Contains(b.o.scenarios, sc.name) {
			continue
		}
		if sc.team {
			if err := verify(); err != nil {
				return out, err
			}
			r, ok, err := b.teamBuild(ctx, w, t, filepath.Join(b.dir, "projects", t.name(), "bench-"+w.name+"-team"), image)
			if !ok {
				continue
			}
			r.Workload, r.Tool, r.Scenario, r.Rep = w.name, t.name(), sc.name, rep
			if err != nil {
				return out, fmt.Errorf("%s: %w", sc.name, err)
			}
			// Another machine: what it downloads, it downloads for the first time.
			w.account(&r, map[string]bool{})
			r.Layers, r.NewLayers = newLayers(ctx, b.o.docker, image, map[string]bool{})
			b.printResult(r)
			out = append(out, r)
			if err := verifyImage(ctx, b.o.docker, image, w.imports); err != nil {
				return out, err
			}
			continue
		}
		if sc.change != nil {
			s = sc.change(s, w)
		}
		dir, img, files := proj, image, t.files(s, w)
		if sc.second {
			dir, img, files = second, secondImage, t.files(w.second, w)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return out, err
			}
		}
		if err := writeFiles(dir, files); err != nil {
			return out, err
		}
		r, err := b.build(ctx, w, t, dir, img)
		r.Workload, r.Tool, r.Scenario, r.Rep = w.name, t.name(), sc.name, rep
		if b.o.logs != "" {
			name := fmt.Sprintf("%s-%s-%d-%s.log", w.name, t.name(), rep, sc.name)
			if err := os.WriteFile(filepath.Join(b.o.logs, name), r.output, 0o644); err != nil {
				return out, err
			}
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc.name, err)
		}
		w.account(&r, seen)
		r.Layers, r.NewLayers = newLayers(ctx, b.o.docker, img, chains)
		b.printResult(r)
		out = append(out, r)
	}
	return out, verify()
}

func (b *bench) printResult(r result) {
	phases := ""
	if r.Phases != nil {
		phases = "  " + phasesText(r.Phases)
	}
	fmt.Printf("%-9s %-15s rep %d %-17s %7.2f s  %8.1f MB  %3d re-downloaded  %2d/%2d layers new  %s%s\n",
		r.Workload, r.Tool, r.Rep, r.Scenario, r.Seconds, mb(r.Bytes), r.Redownloaded, r.NewLayers, r.Layers, r.stepsText(), phases)
}

// teamBuild is a teammate's first build of the project: someone built it
// and exported the build cache to the team's registry (here, on this
// machine, not timed), then the teammate's machine, whose builder and Docker
// hold nothing of it (a cold start), builds it importing that cache. False
// when the tool cannot share a cache.
func (b *bench) teamBuild(ctx context.Context, w *workload, t tool, dir, image string) (result, bool, error) {
	reg, err := b.teamRegistry(ctx)
	if err != nil {
		return result{}, true, err
	}
	ref := fmt.Sprintf("%s/envd-bench/%s-%s:%d", reg, w.name, t.name(), time.Now().UnixNano())
	tc, ok := t.teamCache(ref)
	if !ok {
		return result{}, false, nil
	}
	if err := removeTree(dir); err != nil {
		return result{}, true, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, true, err
	}
	if err := writeFiles(dir, t.files(w.initial, w)); err != nil {
		return result{}, true, err
	}
	if r, err := b.build(ctx, w, t, dir, image, tc.export...); err != nil {
		return r, true, fmt.Errorf("exporting the team cache: %w", err)
	}
	t.recordImage(ref, "")
	if tc.push {
		if out, err := output(ctx, nil, b.o.docker, "push", ref); err != nil {
			return result{}, true, fmt.Errorf("docker push %s: %v: %s", ref, err, tail(out, 5))
		}
	}
	if err := b.clearDocker(ctx); err != nil {
		return result{}, true, fmt.Errorf("clearing Docker: %w", err)
	}
	if err := t.reset(ctx); err != nil {
		return result{}, true, fmt.Errorf("clearing caches: %w", err)
	}
	r, err := b.build(ctx, w, t, dir, image, tc.imp...)
	return r, true, err
}

// teamRegistry is the team's registry: a Distribution registry (Debian's
// docker-registry) of this run's own on 127.0.0.1, started on first use.
func (b *bench) teamRegistry(ctx context.Context) (string, error) {
	if b.registry != "" {
		return b.registry, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(b.dir, "registry")
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: envd-bench\n",
		filepath.Join(dir, "storage"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(b.o.registry, "serve", filepath.Join(dir, "config.yml"))
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", fmt.Errorf("starting the team registry (%s): %w", b.o.registry, err)
	}
	b.onCleanup(func() error {
		cmd.Process.Kill()
		cmd.Wait()
		return logf.Close()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(filepath.Join(dir, "log"))
			return "", fmt.Errorf("the team registry did not answer on %s: %s", addr, tail(string(data), 10))
		}
	}
	b.registry = addr
	return addr, nil
}

// clearDocker removes from Docker every image the run made and the base images, so that a cold start
// finds none of their layers there: an earlier tool's image would hand the next one its base layer.
func (b *bench) clearDocker(ctx context.Context) error {
	var errs []error
	for _, t := range b.tools {
		errs = append(errs, t.removeImages(ctx))
	}
	for _, ref := range dockerBaseRefs(b.o.mirror) {
		errs = append(errs, removeImage(ctx, b.o.docker, ref))
	}
	return errors.Join(errs...)
}

// build runs one build and measures it: wall time of the command, downloads, steps.
func (b *bench) build(ctx context.Context, w *workload, t tool, proj, image string, flags ...string) (result, error) {
	var r result
	// Every build starts on a settled disk: what the previous build (or a cold start's deletions) left to write back
	// is not charged to the next one. Unsettled, the first step to finish waits for it: unmounting a step's overlay
	// flushes the whole disk (up to ~1 s here after a 600 MB build).
	if out, err := output(ctx, nil, "sync"); err != nil {
		return r, fmt.Errorf("sync: %v: %s", err, out)
	}
	env, argv := t.command(proj, image, w, flags...)
	t.recordImage(image, "") // removed at the end even if the build fails half-way
	w.resetCounters()
	r.Load1 = loadAverage()[0]
	rx := hostRxBytes()

	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = proj
	// Ctrl-C first, as a user would: envd and docker then cancel the build on their daemon.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.Seconds = time.Since(start).Seconds()
	r.output = append(stdout.Bytes(), stderr.Bytes()...)
	r.HostRx = hostRxBytes() - rx
	if err != nil {
		return r, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, tail(withoutJSON(stdout.String()+stderr.String()), 30))
	}
	if err := t.parse(&r, stdout.Bytes(), stderr.Bytes()); err != nil {
		return r, err
	}
	r.Installed = installedPackages(r.text)
	if id, err := output(ctx, nil, b.o.docker, "image", "inspect", "--format", "{{.Id}}", image); err == nil {
		t.recordImage(image, strings.TrimSpace(id))
	}
	return r, nil
}

// newLayers counts the image's layers and those Docker had to take anew. Docker knows a layer by its chain: the
// layer with every layer below it. So a changed layer makes every layer above it new to Docker too, even when
// its content is the same.
func newLayers(ctx context.Context, docker, image string, chains map[string]bool) (total, added int) {
	out, err := output(ctx, nil, docker, "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", image)
	if err != nil {
		return 0, 0
	}
	chain := ""
	for _, diffID := range strings.Fields(out) {
		chain += diffID + " "
		total++
		if !chains[chain] {
			chains[chain] = true
			added++
		}
	}
	return total, added
}

// verifyImage imports every module of the workload in the image.
func verifyImage(ctx context.Context, docker, image string, modules []string) error {
	code := "import " + strings.Join(modules, ", ")
	// Past any entrypoint: a dev image's is envd's agent.
	if out, err := output(ctx, nil, docker, "run", "--rm", "--entrypoint", "python", image, "-c", code); err != nil {
		return fmt.Errorf("the image %s does not import its packages (%s): %v\n%s", image, code, err, tail(out, 10))
	}
	return nil
}

// ensureBenchBase makes debian:bookworm-bench in the mirror: debian:bookworm plus one small file, so moving to
// it changes the base of every step without changing the distribution.
func ensureBenchBase(ctx context.Context, docker, mirror string) error {
	ref := mirror + "/library/" + benchBase
	repo, tag, _ := strings.Cut(benchBase, ":")
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+mirror+"/v2/library/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	fmt.Printf("making %s (the switch-base scenario's second base tag)\n", ref)
	dockerfile := fmt.Sprintf("FROM %s/library/debian:bookworm\nRUN echo 'envd benchmark base' > /etc/envd-bench-base\n", mirror)
	cmd := exec.CommandContext(ctx, docker, "build", "-t", ref, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(dockerfile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", ref, err, tail(string(out), 10))
	}
	defer output(context.Background(), nil, docker, "rmi", ref) // the mirror keeps it; Docker need not
	if out, err := output(ctx, nil, docker, "push", ref); err != nil {
		return fmt.Errorf("pushing %s: %v\n%s", ref, err, tail(out, 10))
	}
	return nil
}

// output runs a command and returns its combined output.
func output(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// removeTree removes dir without descending into a mount a killed daemon may have left behind.
func removeTree(dir string) error {
	if !fileExists(dir) {
		return nil
	}
	if out, err := exec.Command("rm", "-rf", "--one-file-system", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("removing %s: %v: %s", dir, err, out)
	}
	return nil
}

// withoutJSON drops rawjson progress lines, keeping the messages around them.
func withoutJSON(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "{\"") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func mb(n int64) float64 { return float64(n) / 1e6 }
