package builder

import (
	"context"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"google.golang.org/grpc"
)

// Credentials are a user name and password for one registry host.
type Credentials struct{ User, Secret string }

// registryAuth answers BuildKit's questions for registry credentials from
// a fixed map by host, then from lookup (the user's Docker login), if set:
// the build session is where BuildKit gets them, so they never touch a file
// or a command line.
type registryAuth struct {
	auth.UnimplementedAuthServer
	hosts  map[string]Credentials
	lookup func(host string) (Credentials, bool)
}

var _ session.Attachable = (*registryAuth)(nil)

func (a *registryAuth) Register(s *grpc.Server) { auth.RegisterAuthServer(s, a) }

func (a *registryAuth) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	c, ok := a.hosts[req.Host]
	if !ok && a.lookup != nil {
		c, ok = a.lookup(req.Host)
	}
	if !ok {
		return &auth.CredentialsResponse{}, nil
	}
	return &auth.CredentialsResponse{Username: c.User, Secret: c.Secret}, nil
}
