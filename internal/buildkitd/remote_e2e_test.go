package buildkitd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	mobyclient "github.com/moby/moby/client"
	"google.golang.org/grpc"

	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/handover"
	"envd.dev/envd/internal/testing/daemontest"
)

// remoteOptions skips unless ENVD_E2E=1 with a Docker here, and gives
// Options for a builder container that acts as if that Docker were on
// another machine: Remote, a name of the test's own. Everything it makes
// goes at cleanup.
func remoteOptions(t *testing.T) (Options, *docker.Client) {
	t.Helper()
	if os.Getenv("ENVD_E2E") != "1" {
		t.Skip("set ENVD_E2E=1 to run against a real Docker")
	}
	ctx := context.Background()
	dk, err := docker.Connect(ctx)
	if err != nil {
		t.Skipf("no Docker here: %v", err)
	}
	t.Cleanup(func() { dk.Close() })
	bin := daemontest.Buildkitd(t)
	for _, b := range []string{bin, besideOrNone(bin, "buildctl"), besideOrNone(bin, "envd-handover")} {
		if b == "" || !isExecutable(b) {
			t.Skipf("no buildkitd, buildctl and envd-handover in %s: run make build", filepath.Dir(bin))
		}
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	o := Options{
		Dir:           t.TempDir(),
		Binary:        bin,
		Container:     dk,
		Remote:        true,
		ContainerName: "envd-buildkitd-test-" + hex.EncodeToString(suffix),
		Logf:          t.Logf,
	}
	t.Cleanup(func() {
		if err := RemoveContainer(context.Background(), o, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return o, dk
}

func TestRemoteBuilderContainer(t *testing.T) {
	o, dk := remoteOptions(t)
	ctx := context.Background()
	name := o.ContainerName

	// 1. It starts, with no path of this machine in it.
	addr, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if addr != "docker-container://"+name {
		t.Errorf("addr = %q", addr)
	}
	res, err := dk.API().ContainerInspect(ctx, name, mobyclient.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id1 := res.Container.ID
	for _, m := range res.Container.Mounts {
		if m.Type == "bind" && m.Destination != "/sys/fs/cgroup" {
			t.Errorf("bind mount of %s at %s: a remote builder must use no path of this machine", m.Source, m.Destination)
		}
		if m.Type == "volume" && (m.Name != name || m.Destination != containerRoot) {
			t.Errorf("volume %s at %s, want %s at %s", m.Name, m.Destination, name, containerRoot)
		}
	}
	if len(res.Container.Mounts) != 2 {
		t.Errorf("mounts = %+v, want the volume and /sys/fs/cgroup", res.Container.Mounts)
	}
	if st := status(t, o); !st.Running || !st.Ready || st.Addr != addr || st.Container != name || st.Mirror != "" {
		t.Errorf("status: %+v", st)
	}
	c := dialClient(t, dk, name)

	// 2. A build pushes to the hand-over registry in the container, and
	// Docker pulls from it.
	h, err := StartHandover(ctx, dk, name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	def, err := llb.Scratch().File(llb.Mkfile("/hello", 0o644, []byte("hi"))).Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Solve(ctx, def, client.SolveOpt{
		Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{
			"name": h.Host() + "/envd/test:latest", "push": "true", "registry.insecure": "true",
		}}},
		Session: []session.Attachable{&staticAuth{host: h.Host(), user: handover.User, secret: h.Secret()}},
	}, nil)
	if err != nil {
		t.Fatalf("build and push: %v", err)
	}
	dgst := resp.ExporterResponse["containerimage.digest"]
	if dgst == "" {
		t.Fatalf("no digest in %v", resp.ExporterResponse)
	}
	image := name + ":hello"
	t.Cleanup(func() { dk.RemoveImage(context.Background(), image) })
	if err := dk.PullAs(ctx, h.Host()+"/envd/test@"+dgst, image, handover.User, h.Secret()); err != nil {
		t.Fatalf("pull from the hand-over registry: %v", err)
	}
	if _, err := dk.InspectImage(ctx, image); err != nil {
		t.Fatalf("the pulled image: %v", err)
	}
	if err := h.Keep(image, "envd/test", dgst); err != nil {
		t.Errorf("Keep: %v", err)
	}
	if err := h.Keep(image, "envd/test", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("Keep of a digest never pushed: no error")
	}
	if !handoverRuns(t, dk, name) {
		t.Error("envd-handover is not running in the container before Close")
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if handoverRuns(t, dk, name) { // Close waited for its exec to end
		t.Error("envd-handover still runs after Close")
	}

	// 3. It comes back after a restart, the same container.
	if _, err := dk.API().ContainerRestart(ctx, name, mobyclient.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(ctx, o); err != nil {
		t.Fatalf("after docker restart: %v", err)
	}
	dialClient(t, dk, name)
	if st := status(t, o); !st.Ready || st.PID == 0 {
		t.Errorf("after docker restart: %+v", st)
	}

	// 4. Another mirror makes another container, with its configuration copied in.
	o.Mirror = "http://127.0.0.1:5999"
	if _, err := Ensure(ctx, o); err != nil {
		t.Fatal(err)
	}
	res, err = dk.API().ContainerInspect(ctx, name, mobyclient.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container.ID == id1 {
		t.Error("a new mirror kept the old container")
	}
	cfg, err := readContainerFile(ctx, dk, name, containerConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `mirrors = ["127.0.0.1:5999"]`) || strings.Contains(string(cfg), "[grpc]") {
		t.Errorf("buildkitd.toml in the container:\n%s", cfg)
	}
	if st := status(t, o); !st.Ready || st.Mirror != "127.0.0.1:5999" {
		t.Errorf("status after the new mirror: %+v", st)
	}
	dialClient(t, dk, name)

	// 5. Stop stops it; the volume stays for the next start.
	if err := Stop(ctx, o); err != nil {
		t.Fatal(err)
	}
	if st := status(t, o); st.Running {
		t.Errorf("after Stop: %+v", st)
	}
	if _, err := dk.API().VolumeInspect(ctx, name, mobyclient.VolumeInspectOptions{}); err != nil {
		t.Errorf("the volume after Stop: %v", err)
	}
}

// A command that fails in the container says why, through the connection.
func TestRemoteExecErrors(t *testing.T) {
	o, dk := remoteOptions(t)
	ctx := context.Background()
	if _, err := Ensure(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  []string
		want []string
	}{
		{"no daemon there", []string{"buildctl", "--addr", "unix:///nowhere.sock", "dial-stdio"}, []string{"failed (exit code 1)", "nowhere.sock"}},
		{"no such command", []string{"/usr/bin/nothing-here"}, []string{"could not start (exit code 12", "nothing-here"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := execIn(ctx, dk, o.ContainerName, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = io.ReadAll(c)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("read: %v, want an error with %q", err, w)
				}
			}
		})
	}
	if _, err := pingExec(ctx, dk, "envd-no-such-container", 2*time.Second); err == nil || !strings.Contains(err.Error(), "envd-no-such-container") {
		t.Errorf("ping of a missing container: %v", err)
	}
}

// dialClient is a BuildKit client through DialContainer that has answered
// ListWorkers.
func dialClient(t *testing.T, dk *docker.Client, name string) *client.Client {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(ctx, "", client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return DialContainer(ctx, dk, name)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ws, err := c.ListWorkers(ctx)
	if err != nil || len(ws) == 0 {
		t.Fatalf("ListWorkers through DialContainer: %v, %d workers", err, len(ws))
	}
	return c
}

// handoverRuns says whether envd-handover runs in the container.
func handoverRuns(t *testing.T, dk *docker.Client, name string) bool {
	t.Helper()
	top, err := dk.API().ContainerTop(context.Background(), name, mobyclient.ContainerTopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range top.Processes {
		if strings.Contains(strings.Join(p, " "), imageHandover) {
			return true
		}
	}
	return false
}

// staticAuth gives BuildKit one registry's credentials through the session.
type staticAuth struct {
	auth.UnimplementedAuthServer
	host, user, secret string
}

func (a *staticAuth) Register(s *grpc.Server) { auth.RegisterAuthServer(s, a) }

func (a *staticAuth) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	if req.Host != a.host {
		return &auth.CredentialsResponse{}, nil
	}
	return &auth.CredentialsResponse{Username: a.user, Secret: a.secret}, nil
}
