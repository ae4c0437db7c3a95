package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/elfbin"
)

// platformAliases are other names of the architectures, as uname -m and
// Docker write them.
var platformAliases = map[string]string{"x86_64": "amd64", "aarch64": "arm64", "arm64/v8": "arm64"}

// parsePlatform reads --platform: linux/amd64 or linux/arm64, or an alias.
func parsePlatform(s string) (compile.Platform, error) {
	if arch, ok := strings.CutPrefix(strings.ToLower(s), "linux/"); ok {
		if a, ok := platformAliases[arch]; ok {
			arch = a
		}
		for _, p := range compile.Platforms {
			if p.Arch == arch {
				return p, nil
			}
		}
	}
	return compile.Platform{}, usageError{fmt.Errorf("--platform %s: envd builds %s images (linux/x86_64 and linux/aarch64 name them too)", s, compile.PlatformNames())}
}

// hostPlatform is this machine's platform.
func hostPlatform() (compile.Platform, error) {
	p, err := parsePlatform("linux/" + goruntime.GOARCH)
	if err != nil {
		return p, fmt.Errorf("this machine is linux/%s, for which envd builds no images: pass --platform (%s)", goruntime.GOARCH, compile.PlatformNames())
	}
	return p, nil
}

// builderAskTimeout bounds asking a builder its platform.
const builderAskTimeout = 5 * time.Second

// defaultPlatform is the image's platform when --platform is not given:
// the builder's, so that no step needs emulation. The builders envd runs
// itself (managed: a process, or a container on this machine, in Podman,
// on an ssh server or in a cluster) run this machine's buildkitd binary (a
// server of another architecture is refused), so theirs is this machine's.
// A builder of the user's is asked: its first worker's first platform,
// which BuildKit lists native first. One that does not answer gets this
// machine's: an image that is up to date needs no builder, and one that is
// not fails on connecting, with its hint.
func defaultPlatform(ctx context.Context, cur builderctx.Context) (compile.Platform, error) {
	if cur.IsManaged() || cur.IsKubePod() {
		return hostPlatform()
	}
	ctx, cancel := context.WithTimeout(ctx, builderAskTimeout)
	defer cancel()
	bk, err := builderctx.Connect(ctx, cur, buildkitd.Options{})
	if err != nil {
		return hostPlatform()
	}
	defer bk.Close()
	ws, err := bk.ListWorkers(ctx)
	if err != nil {
		return hostPlatform()
	}
	return workersPlatform(ws, cur.Name)
}

// workersPlatform is the native platform of the first worker.
func workersPlatform(ws []*client.WorkerInfo, context string) (compile.Platform, error) {
	if len(ws) == 0 || len(ws[0].Platforms) == 0 {
		return compile.Platform{}, fmt.Errorf("the builder of context %q names no platform: pass --platform (%s)", context, compile.PlatformNames())
	}
	native := ws[0].Platforms[0]
	p, err := parsePlatform(native.OS + "/" + native.Architecture)
	if err != nil {
		return p, fmt.Errorf("the builder of context %q is %s, for which envd builds no images: pass --platform (%s; the builder then needs to emulate it)", context, formatPlatform(native), compile.PlatformNames())
	}
	return p, nil
}

// checkBuilderPlatform refuses a builder whose workers cannot run steps of
// platform p: each would fail with "exec format error".
func checkBuilderPlatform(ctx context.Context, bk *client.Client, p compile.Platform) error {
	ws, err := bk.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("asking the builder its platforms: %w", err)
	}
	return workersRun(ws, p)
}

// workersRun says whether a worker runs p, natively or emulated.
func workersRun(ws []*client.WorkerInfo, p compile.Platform) error {
	var has []string
	for _, w := range ws {
		for _, wp := range w.Platforms {
			if wp.OS == "linux" && wp.Architecture == p.Arch {
				return nil
			}
			has = append(has, formatPlatform(wp))
		}
	}
	return fmt.Errorf("the builder cannot run %s steps, only %s\n  hint: build for its platform (leave --platform out), use a builder of that architecture (envd context create NAME --builder ...), or install QEMU emulation on the builder's machine (docker run --privileged --rm tonistiigi/binfmt --install %s)",
		p, strings.Join(has, ", "), p.Arch)
}

func formatPlatform(p ocispecs.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// agentNames are the names an agent for arch goes by: envd-agent-linux-ARCH
// (one for each architecture, side by side) and envd-agent.
func agentNames(arch string) []string {
	return []string{compile.AgentBinary + "-linux-" + arch, compile.AgentBinary}
}

// selfExecutable is envd's own binary (a variable for tests).
var selfExecutable = os.Executable

// findAgent returns the directory and name of the envd-agent binary that
// goes into dev images of platform p, where it is PID 1: the first of
// $ENVD_AGENT, then agentNames beside the envd binary, then on PATH, that
// is a Linux executable of p's architecture. Without one, envd is its own
// agent (internal/multicall) if it can run in any image: static, of p's
// architecture. An $ENVD_AGENT that does not fit is an error.
func findAgent(p compile.Platform) (dir, file string, err error) {
	explicit := os.Getenv("ENVD_AGENT")
	candidates := []string{explicit}
	self, _ := selfExecutable()
	if self != "" {
		for _, n := range agentNames(p.Arch) {
			candidates = append(candidates, filepath.Join(filepath.Dir(self), n))
		}
	}
	for _, n := range agentNames(p.Arch) {
		if path, err := exec.LookPath(n); err == nil {
			candidates = append(candidates, path)
		}
	}
	var others []string // found, of another architecture
	seen := map[string]bool{}
	for _, c := range candidates {
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		if st, err := os.Stat(c); err != nil || !st.Mode().IsRegular() {
			continue
		}
		switch arch, err := agentArch(c); {
		case err != nil:
			others = append(others, fmt.Sprintf("%s (%v)", c, err))
		case arch == p.Arch:
			return filepath.Dir(c), filepath.Base(c), nil
		default:
			others = append(others, fmt.Sprintf("%s (linux/%s)", c, arch))
		}
	}
	selfNote := ""
	if self != "" && explicit == "" {
		switch info, err := elfbin.Read(self); {
		case err != nil: // not a Linux envd
		case info.Arch == p.Arch && info.Static():
			return filepath.Dir(self), filepath.Base(self), nil
		case info.Arch == p.Arch:
			selfNote = fmt.Sprintf("\n  envd itself (%s) can be the agent only when it is linked statically, and this one is dynamic: Go links with the C library when a C compiler is there; install envd with CGO_ENABLED=0 go install envd.dev/envd/cmd/envd@VERSION", self)
		}
	}
	if len(others) > 0 {
		return "", "", fmt.Errorf("no envd-agent for %s: a dev image needs one of its own architecture, and envd found only %s%s\n  hint: `make agents` builds bin/envd-agent-linux-amd64 and bin/envd-agent-linux-arm64, which envd finds beside it; or set ENVD_AGENT=/path/to/envd-agent built for %s",
			p, strings.Join(others, ", "), selfNote, p)
	}
	return "", "", fmt.Errorf("envd-agent not found: dev environments (base(os=...) or dev=True) need it beside envd%s\n  hint: run `make build` (`make agents` for both architectures), or set ENVD_AGENT=/path/to/envd-agent", selfNote)
}

// agentArch is the architecture of the executable at path, as Go names it.
func agentArch(path string) (string, error) {
	info, err := elfbin.Read(path)
	return info.Arch, err
}
