package multicall

import (
	"errors"
	"flag"
	"io"
	"net"
	"strings"
)

// defaultBuildkitdAddr is buildctl's default.
const defaultBuildkitdAddr = "unix:///run/buildkit/buildkitd.sock"

// buildctl is the one buildctl command envd runs in a builder container,
// `buildctl [--addr unix://PATH] dial-stdio`: its stdin and stdout become a
// connection to buildkitd's socket, which envd dials through `docker exec`
// or an exec in a pod. Anything else needs the real buildctl.
func buildctl(args []string, s Streams) int {
	fset := flag.NewFlagSet("buildctl", flag.ContinueOnError)
	fset.SetOutput(s.Err)
	addr := fset.String("addr", defaultBuildkitdAddr, "buildkitd address (unix://PATH)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 1 || fset.Arg(0) != "dial-stdio" {
		return usageError(s, "buildctl: this is envd, which does only `buildctl [--addr unix://PATH] dial-stdio`; use the real buildctl for %q", strings.Join(fset.Args(), " "))
	}
	path, ok := strings.CutPrefix(*addr, "unix://")
	if !ok {
		return usageError(s, "buildctl dial-stdio: --addr %q: only unix:// addresses are supported here", *addr)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return usageError(s, "buildctl dial-stdio: %v", err)
	}
	defer conn.Close()
	if err := dialStdio(conn.(*net.UnixConn), s.In, s.Out); err != nil {
		return usageError(s, "buildctl dial-stdio: %v", err)
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
