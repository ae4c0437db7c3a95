package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// The original envd's command lines work beside ours (docs/original-envd.md
// maps each one). What needs more than a flag alias lives here.

// originalShorthands are the original's two-letter flags, which pflag cannot
// declare: they are rewritten to the long flags before parsing. Only whole
// arguments before "--" are, so a command after "--" is never touched.
var originalShorthands = map[string]string{
	"-ec": "--export-cache",
	"-ic": "--import-cache",
}

func rewriteShorthands(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, value, hasValue := strings.Cut(a, "=")
		if long, ok := originalShorthands[name]; ok {
			if hasValue {
				a = long + "=" + value
			} else {
				a = long
			}
		}
		out = append(out, a)
	}
	return out
}

// newEnvCmd is the original's `envd env ls`.
func newEnvCmd(st streams) *cobra.Command {
	c := &cobra.Command{Use: "env", Short: "Environments (the original envd's `envd env ls`; the same as envd ls)"}
	ls := newLsCmd(st)
	c.AddCommand(ls)
	return c
}

// originalKinds are the original's --builder values that are not ours.
var originalKinds = map[string]bool{"tcp": true, "unix": true, "docker-container": true, "moby-worker": true, "nerdctl-container": true}

// originalBuilder turns the original's `context create --builder KIND
// --builder-address ADDR` into one of our builder addresses.
func originalBuilder(kind, addr string) (string, error) {
	if addr == "" {
		return "", usageError{fmt.Errorf("--builder %s needs --builder-address", kind)}
	}
	switch kind {
	case "tcp", "unix", "docker-container":
		if strings.Contains(addr, "://") {
			return addr, nil
		}
		if kind == "unix" && !strings.HasPrefix(addr, "/") {
			return "", usageError{fmt.Errorf("--builder-address %q: a unix socket's absolute path", addr)}
		}
		return kind + "://" + addr, nil
	case "kube-pod":
		return "", usageError{fmt.Errorf("--builder kube-pod with an address (a pod of yours) is not supported: envd runs its own builder pod with --runtime kubernetes --registry REG --builder kube-pod")}
	case "moby-worker", "nerdctl-container":
		return "", usageError{fmt.Errorf("--builder %s is not supported: use docker-container with a moby/buildkit container, or the managed builder (no --builder)", kind)}
	}
	return "", usageError{fmt.Errorf("--builder %q with --builder-address: the kinds are tcp, unix and docker-container", kind)}
}
