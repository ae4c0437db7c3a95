package builderctx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	// Registers docker-container:// with client.New.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"

	"envd.dev/envd/internal/buildkitd"
)

// verifyTimeout bounds the check that a builder answers. docker-container://
// runs `docker exec` per connection, hence not shorter.
var verifyTimeout = 10 * time.Second

// Connect returns a client for c's builder, starting the managed buildkitd
// (configured by m) when c is managed, and checks that the builder answers.
func Connect(ctx context.Context, c Context, m buildkitd.Options) (*client.Client, error) {
	addr := c.Builder
	var opts []client.ClientOpt
	if c.IsManaged() {
		var err error
		if addr, err = buildkitd.Ensure(ctx, m); err != nil {
			return nil, err
		}
		if m.Remote {
			// On a server: every connection is `buildctl dial-stdio` in the
			// builder container, through that Docker's exec.
			name := buildkitd.ContainerName(m)
			opts = append(opts, client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return buildkitd.DialContainer(ctx, m.Container, name)
			}))
		}
	} else if c.TLS != nil {
		opts = tlsOptions(*c.TLS)
	}
	return Verified(ctx, c, addr, opts...)
}

// Verified returns a client for the builder at addr (of context c), once
// it has answered.
func Verified(ctx context.Context, c Context, addr string, opts ...client.ClientOpt) (*client.Client, error) {
	cl, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, unreachable(c, addr, err)
	}
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	ws, err := cl.ListWorkers(vctx)
	if err == nil && len(ws) == 0 {
		err = errors.New("it has no workers")
	}
	if err != nil {
		cl.Close()
		return nil, unreachable(c, addr, err)
	}
	return cl, nil
}

func tlsOptions(t TLS) []client.ClientOpt {
	var opts []client.ClientOpt
	if t.CACert != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CACert))
	} else {
		// Without a CA file, WithServerConfig would trust nothing at all.
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if t.Cert != "" {
		opts = append(opts, client.WithCredentials(t.Cert, t.Key))
	}
	return opts
}

func unreachable(c Context, addr string, err error) error {
	hint := "check that it runs and that the address is right, or switch back: `envd context use default`"
	switch {
	case c.IsManaged():
		hint = "check buildkitd.log in the managed builder's directory"
	case c.IsKubePod():
		hint = "check the builder pod's log (kubectl logs envd-buildkitd in the context's namespace); `envd --context " + c.Name + " bootstrap --stop` removes it, the next build starts it again"
	case strings.HasPrefix(addr, "docker-container://"):
		hint = "check that the container runs (`docker ps`) and has buildctl, or switch back: `envd context use default`"
	}
	return &Error{Kind: ErrConnect,
		Msg:  fmt.Sprintf("cannot reach builder %s (context %q): %v", addr, c.Name, err),
		Hint: hint}
}
