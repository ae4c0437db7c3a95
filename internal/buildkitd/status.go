package buildkitd

import (
	"context"
	"os"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// State describes the managed buildkitd of some Options.
type State struct {
	Running bool   // a managed buildkitd process is alive
	Ready   bool   // and it answered ListWorkers just now
	PID     int    // its pid (0 when not running)
	Addr    string // where it listens (or would)
	Dir     string // its state directory
	Mirror  string // the docker.io mirror in its buildkitd.toml; "" = none
	// Version is the BuildKit it says it runs, when it answered: see
	// describeVersion.
	Version string
	// Container is the builder container's name, for a builder in one.
	Container string
}

// Status reports on the managed buildkitd of o without starting or changing
// anything.
func Status(ctx context.Context, o Options) (State, error) {
	o, err := o.withDefaults()
	if err != nil {
		return State{}, err
	}
	if o.Container != nil {
		return containerStatus(ctx, o)
	}
	st := State{Addr: o.Addr(), Dir: o.Dir}
	if pid, ok := o.managedPID(); ok {
		st.Running, st.PID = true, pid
		v, err := ping(ctx, st.Addr, 3*time.Second)
		st.Ready, st.Version = err == nil, v
	}
	b, err := os.ReadFile(o.configPath())
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Mirror, err = configMirror(b)
	return st, err
}

// configMirror reads the docker.io mirror back from a buildkitd.toml.
func configMirror(b []byte) (string, error) {
	var cfg struct {
		Registry map[string]struct {
			Mirrors []string `toml:"mirrors"`
		} `toml:"registry"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return "", err
	}
	if m := cfg.Registry["docker.io"].Mirrors; len(m) > 0 {
		return m[0], nil
	}
	return "", nil
}
