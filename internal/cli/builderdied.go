package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"envd.dev/envd/internal/buildkitd"
)

// builderStopped says in plain words that the builder went away during the
// build (killed, crashed, out of memory), where to look, and what to do,
// instead of gRPC's "code = Unavailable desc = error reading from server:
// EOF". It returns nil for any other error.
func builderStopped(err error) error {
	if !isUnavailable(err) {
		return nil
	}
	where := "the builder's own log"
	again := "check that the builder is running, then run the command again"
	if store, serr := contextStore(); serr == nil {
		if cur, cerr := store.Current(); cerr == nil {
			if cur.ManagedInContainer(os.Geteuid()) {
				where = "`docker logs " + buildkitd.ContainerName(buildkitd.Options{}) + "`"
				again = "run the command again and envd starts it again"
			} else if cur.IsManaged() {
				if p := buildkitd.LogPath(buildkitd.Options{}); p != "" {
					where = p
				}
				again = "run the command again and envd restarts it"
			} else {
				where = "the log of the builder at " + cur.Builder
			}
		}
	}
	return fmt.Errorf("the builder stopped during the build (%v)\n  hint: its log is at %s; %s", err, where, again)
}

func isUnavailable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok && s.Code() == codes.Unavailable {
			return true
		}
	}
	return strings.Contains(err.Error(), "code = Unavailable")
}
