// Package handovercmd is the command line of envd-handover, which serves envd's hand-over registry inside a builder
// container on another machine, so that the built image reaches that
// machine's Docker without crossing the network. envd runs it through
// `docker exec -i` and speaks to it on stdin and stdout:
//
//	stdin, first line:  the secret every request must carry (user "envd")
//	stdout:             "127.0.0.1:PORT", once the registry listens
//	stdin:              keep IMAGE REPO DIGEST   (after Docker pulled it)
//	stdout:             "ok" or "error: ..."
//
// At the end of stdin it stops and exits 0: when envd goes, so does the
// registry. cmd/envd-handover is only this, and envd is this too when it
// runs as envd-handover (see cmd/envd).
package handovercmd

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"envd.dev/envd/internal/handover"
)

// defaultDir is in the builder's volume, so the blobs outlive the
// container, as the local hand-over cache outlives envd.
const defaultDir = "/var/lib/buildkit/envd-handover"

// minSecret refuses a secret too short to keep the machine's other users out.
const minSecret = 16

// Main runs the command line (args without the program name) and returns
// the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("envd-handover", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", defaultDir, "where the registry keeps its blobs")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if err := run(stdin, stdout, *dir); err != nil {
		fmt.Fprintln(stderr, "envd-handover:", err)
		return 1
	}
	return 0
}

func run(stdin io.Reader, stdout io.Writer, dir string) error {
	in := bufio.NewReader(stdin)
	secret, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	secret = strings.TrimSpace(secret)
	if len(secret) < minSecret {
		return fmt.Errorf("the first line of stdin must be the secret (%d characters at least)", minSecret)
	}
	reg, err := handover.Listen(dir, "127.0.0.1:0", secret)
	if err != nil {
		return fmt.Errorf("start the hand-over registry in %s: %w", dir, err)
	}
	defer reg.Close()
	reg.Serve()
	if _, err := fmt.Fprintln(stdout, reg.Host()); err != nil {
		return err
	}
	for {
		line, err := in.ReadString('\n')
		if strings.TrimSpace(line) != "" {
			if _, werr := fmt.Fprintln(stdout, answer(reg, line)); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// answer carries out one request line.
func answer(reg *handover.Registry, line string) string {
	f := strings.Fields(line)
	switch {
	case len(f) == 4 && f[0] == "keep":
		// No live check: the builder cannot ask Docker which images it still
		// has, so all count; MaxCache bounds the size.
		if err := reg.Keep(f[1], f[2], f[3], nil); err != nil {
			return "error: " + oneLine(err.Error())
		}
		return "ok"
	default:
		return fmt.Sprintf("error: unknown request %q (want: keep IMAGE REPO DIGEST)", strings.TrimSpace(line))
	}
}

// oneLine keeps a multi-line error on the protocol's one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
