package cli

import (
	"os"

	"envd.dev/envd/internal/runtime"
)

// labelForwardAgent marks an environment started with --forward-agent:
// `envd ssh` and `envd exec` then forward the user's ssh-agent too, as the
// ssh config entry does. Without it, neither does.
const labelForwardAgent = "dev.envd.forward-agent"

func forwardsAgent(env *runtime.Env) bool { return env.Labels[labelForwardAgent] == "true" }

// privateDir makes dir, an environment's state (host key, agent config with
// the Jupyter token), reachable by its owner only, also when an older envd
// made it with other modes. The agent reads it as root in the container,
// or as the dev user, who has the owner's UID.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700) // its files are written 0600
}
