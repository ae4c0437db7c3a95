package cli

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	apitypes "github.com/moby/buildkit/api/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/elfbin"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]compile.Platform{
		"linux/amd64":    compile.LinuxAMD64,
		"linux/x86_64":   compile.LinuxAMD64,
		"linux/arm64":    compile.LinuxARM64,
		"linux/aarch64":  compile.LinuxARM64,
		"linux/arm64/v8": compile.LinuxARM64,
		"Linux/AMD64":    compile.LinuxAMD64,
	} {
		if got, err := parsePlatform(in); err != nil || got != want {
			t.Errorf("parsePlatform(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "amd64", "linux/riscv64", "linux/arm/v7", "windows/amd64", "darwin/arm64", "linux/amd64 "} {
		_, err := parsePlatform(in)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "--platform "+in+": envd builds linux/amd64 and linux/arm64 images") {
			t.Errorf("parsePlatform(%q): %v, want a usage error naming the supported platforms", in, err)
		}
	}
}

// The platform changes the build key: an arm64 build never finds the
// amd64 image up to date.
func TestPlatformIsInTheBuildKey(t *testing.T) {
	isolate(t)
	dir := writeProject(t, map[string]string{"build.envd": "def build():\n    base(image=\"debian:bookworm\")\n"})
	keys := map[string]string{}
	for _, platform := range []string{"linux/amd64", "linux/arm64", "linux/aarch64"} {
		p, err := (&buildOptions{path: dir, file: "build.envd", progress: "auto", platform: platform}).plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.buildKey == "" {
			t.Fatal("no build key")
		}
		keys[p.platform.String()] = p.buildKey
	}
	if len(keys) != 2 || keys["linux/amd64"] == keys["linux/arm64"] {
		t.Errorf("keys %v: want one for each platform, and different", keys)
	}
	// Without --platform: the managed builder's, this machine's.
	p, err := (&buildOptions{path: dir, file: "build.envd", progress: "auto"}).plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.platform.Arch != goruntime.GOARCH || p.buildKey != keys[p.platform.String()] {
		t.Errorf("default platform %v, key %s; want linux/%s and its key", p.platform, p.buildKey, goruntime.GOARCH)
	}
}

// arm64Builder answers ListWorkers like a native arm64 buildkitd that
// emulates amd64.
type arm64Builder struct {
	controlapi.UnimplementedControlServer
}

func (arm64Builder) ListWorkers(context.Context, *controlapi.ListWorkersRequest) (*controlapi.ListWorkersResponse, error) {
	return &controlapi.ListWorkersResponse{Record: []*apitypes.WorkerRecord{{ID: "w", Platforms: []*pb.Platform{
		{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}}}}}, nil
}

// Without --platform: a builder of the user's is asked; the managed one,
// and one that does not answer, are this machine's.
func TestDefaultPlatform(t *testing.T) {
	tmp, err := os.MkdirTemp("", "plat") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	sock := filepath.Join(tmp, "bk.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	controlapi.RegisterControlServer(srv, arm64Builder{})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	host, err := hostPlatform()
	if err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		ctx  builderctx.Context
		want compile.Platform
	}{
		{builderctx.Context{Name: "default", Builder: builderctx.Managed}, host},
		{builderctx.Context{Name: "mine", Builder: "unix://" + sock}, compile.LinuxARM64},
		{builderctx.Context{Name: "gone", Builder: "unix://" + filepath.Join(tmp, "none.sock")}, host},
	} {
		if got, err := defaultPlatform(context.Background(), tt.ctx); err != nil || got != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.ctx.Builder, got, err, tt.want)
		}
	}
}

func TestBuilderPlatform(t *testing.T) {
	worker := func(ps ...ocispecs.Platform) *client.WorkerInfo { return &client.WorkerInfo{Platforms: ps} }
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	riscv := ocispecs.Platform{OS: "linux", Architecture: "riscv64"}

	ws := []*client.WorkerInfo{worker(arm64, amd64)}
	if p, err := workersPlatform(ws, "ci"); err != nil || p != compile.LinuxARM64 {
		t.Errorf("native arm64: %v, %v", p, err)
	}
	if _, err := workersPlatform([]*client.WorkerInfo{worker(riscv, amd64)}, "ci"); err == nil || !strings.Contains(err.Error(), `context "ci" is linux/riscv64`) {
		t.Errorf("riscv64: %v", err)
	}
	if _, err := workersPlatform([]*client.WorkerInfo{worker()}, "ci"); err == nil {
		t.Error("a worker without platforms gave one")
	}

	if err := workersRun(ws, compile.LinuxAMD64); err != nil {
		t.Errorf("emulated amd64: %v", err)
	}
	err := workersRun([]*client.WorkerInfo{worker(amd64, ocispecs.Platform{OS: "linux", Architecture: "386"})}, compile.LinuxARM64)
	if err == nil || !strings.Contains(err.Error(), "cannot run linux/arm64 steps, only linux/amd64, linux/386") || !strings.Contains(err.Error(), "binfmt --install arm64") {
		t.Errorf("amd64 builder, arm64 image: %v", err)
	}
}

// hostAgent is an agent binary for this machine's images: the test binary
// itself, an ELF executable of this machine's architecture.
func hostAgent(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(t.TempDir(), compile.AgentBinary)
	if err := os.Symlink(exe, agent); err != nil {
		t.Fatal(err)
	}
	return agent
}

// elfHeader is the header of an ELF executable for machine: all that
// agentArch reads.
func elfHeader(t *testing.T, machine elf.Machine) []byte {
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hostAndOther are this machine's platform and the other one envd knows.
func hostAndOther(t *testing.T) (host, other compile.Platform) {
	t.Helper()
	host, err := hostPlatform()
	if err != nil {
		t.Skip(err)
	}
	if other = compile.LinuxARM64; host == other {
		other = compile.LinuxAMD64
	}
	return host, other
}

func TestFindAgentChecksItsArchitecture(t *testing.T) {
	isolate(t)
	host, other := hostAndOther(t)

	// The test binary is of this machine: accepted for its platform only.
	t.Setenv("ENVD_AGENT", hostAgent(t))
	if dir, file, err := findAgent(host); err != nil || filepath.Join(dir, file) != os.Getenv("ENVD_AGENT") {
		t.Errorf("findAgent(%s) = %s, %s, %v", host, dir, file, err)
	}
	_, _, err := findAgent(other)
	if err == nil || !strings.Contains(err.Error(), "no envd-agent for "+other.String()) ||
		!strings.Contains(err.Error(), os.Getenv("ENVD_AGENT")+" ("+host.String()+")") || !strings.Contains(err.Error(), "make agents") {
		t.Errorf("findAgent(%s) with a %s agent: %v", other, host, err)
	}

	// envd-agent-linux-ARCH on PATH is found for its architecture.
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	otherAgent := filepath.Join(bin, "envd-agent-linux-"+other.Arch)
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[other.Arch]
	if err := os.WriteFile(otherAgent, elfHeader(t, machine), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, file, err := findAgent(other); err != nil || dir != bin || file != "envd-agent-linux-"+other.Arch {
		t.Errorf("findAgent(%s) = %s, %s, %v; want %s", other, dir, file, err, otherAgent)
	}

	// Not an executable at all.
	notELF := filepath.Join(t.TempDir(), compile.AgentBinary)
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVD_AGENT", notELF)
	t.Setenv("PATH", t.TempDir())
	if _, _, err := findAgent(host); err == nil || !strings.Contains(err.Error(), notELF+" (not a Linux executable)") {
		t.Errorf("a shell script as the agent: %v", err)
	}
}

// Without an envd-agent, envd is its own agent when it is static and of the
// image's architecture; a dynamic envd says how to get a static one.
func TestFindAgentFallsBackToEnvd(t *testing.T) {
	isolate(t)
	host, other := hostAndOther(t)
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[host.Arch]
	static := filepath.Join(t.TempDir(), "envd")
	if err := os.WriteFile(static, elfHeader(t, machine), 0o755); err != nil { // no interpreter: static
		t.Fatal(err)
	}
	setSelf(t, static)
	if dir, file, err := findAgent(host); err != nil || filepath.Join(dir, file) != static {
		t.Errorf("a static envd for %s: findAgent = %s, %s, %v; want envd itself", host, dir, file, err)
	}
	if _, _, err := findAgent(other); err == nil || !strings.Contains(err.Error(), "envd-agent not found") {
		t.Errorf("a static envd of %s, for %s: want not found, got %v", host, other, err)
	}
	// An envd-agent beside envd comes first.
	beside := filepath.Join(filepath.Dir(static), compile.AgentBinary)
	if err := os.WriteFile(beside, elfHeader(t, machine), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, file, err := findAgent(host); err != nil || file != compile.AgentBinary {
		t.Errorf("with envd-agent beside envd: findAgent = %s, %v; want envd-agent", file, err)
	}
	os.Remove(beside)
	// An ENVD_AGENT that does not fit is an error, not a quiet fall-back.
	t.Setenv("ENVD_AGENT", filepath.Join(t.TempDir(), "missing"))
	if _, _, err := findAgent(host); err == nil {
		t.Errorf("ENVD_AGENT missing: want an error, envd used itself")
	}
	t.Setenv("ENVD_AGENT", "")

	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if info, err := elfbin.Read(sh); err != nil || info.Static() || info.Arch != host.Arch {
		t.Skipf("%s is not a dynamic executable of this machine", sh)
	}
	setSelf(t, sh)
	_, _, err = findAgent(host)
	if err == nil || !strings.Contains(err.Error(), "linked dynamically") && !strings.Contains(err.Error(), "this one is dynamic") ||
		!strings.Contains(err.Error(), "CGO_ENABLED=0 go install envd.dev/envd/cmd/envd@") {
		t.Errorf("a dynamic envd: want how to install a static one, got %v", err)
	}
}
