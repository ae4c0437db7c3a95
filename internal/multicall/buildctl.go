package multicall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"flag"
	"io"
	"net"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
)

// defaultBuildkitdAddr is buildctl's default.
const defaultBuildkitdAddr = "unix:///run/buildkit/buildkitd.sock"

// buildctl is the buildctl commands envd runs in a builder container:
// `buildctl [--addr unix://PATH] dial-stdio`, whose stdin and stdout become a
// connection to buildkitd's socket, which envd dials through `docker exec`
// or an exec in a pod; and `buildctl [--addr unix://PATH] debug workers`, the
// builder pod's startup probe. Anything else needs the real buildctl.
func buildctl(args []string, s Streams) int {
	fset := flag.NewFlagSet("buildctl", flag.ContinueOnError)
	fset.SetOutput(s.Err)
	addr := fset.String("addr", defaultBuildkitdAddr, "buildkitd address (unix://PATH)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	command := strings.Join(fset.Args(), " ")
	if command != "dial-stdio" && command != "debug workers" {
		return usageError(s, "buildctl: this is envd, which does only `buildctl [--addr unix://PATH] dial-stdio` and `debug workers`; use the real buildctl for %q", command)
	}
	path, ok := strings.CutPrefix(*addr, "unix://")
	if !ok {
		return usageError(s, "buildctl %s: --addr %q: only unix:// addresses are supported here", command, *addr)
	}
	if command == "debug workers" {
		return debugWorkers(*addr, s)
	}
	// A failure past the command line exits 1, as buildctl's do.
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintf(s.Err, "buildctl dial-stdio: %v\n", err)
		return 1
	}
	defer conn.Close()
	if err := dialStdio(conn.(*net.UnixConn), s.In, s.Out); err != nil {
		fmt.Fprintf(s.Err, "buildctl dial-stdio: %v\n", err)
		return 1
	}
	return 0
}

// dialStdio copies in to conn and conn to out. The end of in half-closes
// conn, so buildkitd sees it; the end of conn ends the command.
func dialStdio(conn *net.UnixConn, in io.Reader, out io.Writer) error {
	go func() {
		_, _ = io.Copy(conn, in)
		_ = conn.CloseWrite()
	}()
	_, err := io.Copy(out, conn)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// debugWorkers lists the daemon's workers, as buildctl does: exit 0 once
// buildkitd answers with one.
func debugWorkers(addr string, s Streams) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		fmt.Fprintf(s.Err, "buildctl debug workers: %v\n", err)
		return 1
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err == nil && len(ws) == 0 {
		err = errors.New("no workers")
	}
	if err != nil {
		fmt.Fprintf(s.Err, "buildctl debug workers: %v\n", err)
		return 1
	}
	fmt.Fprintln(s.Out, "ID\tPLATFORMS")
	for _, w := range ws {
		ps := make([]string, 0, len(w.Platforms))
		for _, p := range w.Platforms {
			ps = append(ps, platforms.Format(p))
		}
		fmt.Fprintf(s.Out, "%s\t%s\n", w.ID, strings.Join(ps, ","))
	}
	return 0
}
