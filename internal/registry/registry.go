// Package registry is what envd needs to know about an image in a
// registry, and the credentials for it, when it runs environments in
// Kubernetes: the digest a pod runs (REPO@DIGEST), the image's labels,
// and the user's Docker login for the registry, turned into the content
// of a pull secret.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Image is what a registry says about a tag.
type Image struct {
	// Digest is the "sha256:..." digest of the tag's manifest (of its
	// index, for a multi-platform image): what a pod should run, as
	// REPO@DIGEST.
	Digest string
	// Labels are the image config's labels (of the linux/amd64 image,
	// for a multi-platform image). Never nil.
	Labels map[string]string
}

// ErrNotFound is what Lookup's error is (errors.Is) when the registry has
// no such tag or repository.
var ErrNotFound = errors.New("image not found in the registry")

// notFound is Lookup's error for a missing image: it names it, and it is
// ErrNotFound.
type notFound struct{ host, ref string }

func (e *notFound) Error() string {
	return fmt.Sprintf("the registry %s has no image %s\n  hint: push it first, or check the name and tag", e.host, e.ref)
}

func (e *notFound) Is(target error) bool { return target == ErrNotFound }

// Lookup reads the manifest and config of ref ("host[:port]/repo:tag")
// with the user's Docker credentials (go-containerregistry's
// authn.DefaultKeychain: $DOCKER_CONFIG/config.json or
// ~/.docker/config.json and its credential helpers). insecure allows
// plain http (a registry on localhost, 127.0.0.1 or a private address is
// plain http anyway). A tag or repository the registry does not have is an
// error for which errors.Is(err, ErrNotFound) is true; other errors say
// which registry and what failed.
func Lookup(ctx context.Context, ref string, insecure bool) (*Image, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	host := r.Context().RegistryStr()
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, explain(host, r, "reading the manifest of", err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, explain(host, r, "reading the image", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, explain(host, r, "reading the image config of", err)
	}
	labels := map[string]string{}
	for k, v := range cfg.Config.Labels {
		labels[k] = v
	}
	return &Image{Digest: desc.Digest.String(), Labels: labels}, nil
}

// explain turns an error from the registry into one that says which
// registry and what failed, in plain words.
func explain(host string, r name.Reference, what string, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("cannot reach the registry %s (%s %s): %w", host, what, r, err)
		}
		return fmt.Errorf("%s %s from the registry %s: %w", what, r, host, err)
	}
	has := func(codes ...transport.ErrorCode) bool {
		for _, d := range te.Errors {
			for _, c := range codes {
				if d.Code == c {
					return true
				}
			}
		}
		return false
	}
	switch {
	case te.StatusCode == http.StatusNotFound || has(transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
		return &notFound{host: host, ref: r.String()}
	case te.StatusCode == http.StatusUnauthorized || has(transport.UnauthorizedErrorCode):
		return fmt.Errorf("the registry %s refused the credentials%s (%v)\n  hint: log in to it: docker login %s",
			host, credentialsUsed(host), err, host)
	case te.StatusCode == http.StatusForbidden || has(transport.DeniedErrorCode):
		return fmt.Errorf("the registry %s denied access to %s with the credentials%s (%v)\n  hint: that login may not read this repository: docker login %s with one that can",
			host, r.Context(), credentialsUsed(host), err, host)
	}
	return fmt.Errorf("%s %s from the registry %s: %w", what, r, host, err)
}

// credentialsUsed says, for a message, which credentials Lookup sent.
func credentialsUsed(host string) string {
	c, found, err := CredentialFor(host)
	switch {
	case err != nil:
		return ": " + err.Error()
	case !found:
		return ": your Docker config has no login for " + host
	}
	return " from " + c.Source
}

// ByDigest returns REPO@DIGEST for ref (a tag reference) and a digest
// ("sha256:..."): what a pod runs.
func ByDigest(ref, digest string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	if _, err := v1.NewHash(digest); err != nil {
		return "", fmt.Errorf("image digest %q: %w", digest, err)
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != digest {
		return "", fmt.Errorf("image reference %q already has a different digest than %s", ref, digest)
	}
	d, err := name.NewDigest(r.Context().Name() + "@" + digest)
	if err != nil {
		return "", fmt.Errorf("image %s@%s: %w", r.Context().Name(), digest, err)
	}
	return d.String(), nil
}

// Credential is a login for one registry from the user's Docker config.
type Credential struct {
	Username, Password, IdentityToken string
	// Source says where it came from, for messages: e.g.
	// "~/.docker/config.json (auths)" or "docker-credential-pass".
	Source string
}

// dockerHubKey is the key under which Docker keeps its Docker Hub login.
const dockerHubKey = "https://index.docker.io/v1/"

// authKey is the Docker config key for host, as Docker spells it.
func authKey(host string) string {
	if host == "docker.io" || host == "index.docker.io" || host == name.DefaultRegistry {
		return dockerHubKey
	}
	return host
}

// CredentialFor returns the login for one registry host ("host[:port]")
// from the user's Docker config (the file $DOCKER_CONFIG/config.json or
// ~/.docker/config.json): its "auths" entry (written "host" or
// "https://host/"), or the credential helper docker-credential-NAME that
// "credHelpers" names for that host, else "credsStore". found is false
// when the config has nothing for that host, which is not an error.
func CredentialFor(host string) (c Credential, found bool, err error) {
	host = strings.TrimSpace(host)
	if host == "" {
		return Credential{}, false, errors.New("docker credentials: no registry host given")
	}
	dir := os.Getenv(config.EnvOverrideConfigDir)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Credential{}, false, fmt.Errorf("docker credentials: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	file := filepath.Join(dir, config.ConfigFileName)
	cf, err := config.Load(dir)
	if err != nil {
		return Credential{}, false, fmt.Errorf("docker credentials for %s: %w", host, err)
	}
	key := authKey(host)
	source := tilde(file) + " (auths)"
	if helper := cf.CredentialHelpers[key]; helper != "" {
		source = "docker-credential-" + helper
	} else if cf.CredentialsStore != "" {
		source = "docker-credential-" + cf.CredentialsStore
	}
	if inEnv(key) {
		source = "$DOCKER_AUTH_CONFIG"
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return Credential{}, false, fmt.Errorf("docker credentials for %s from %s: %w", host, source, err)
	}
	c = Credential{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, Source: source}
	if c.Username == "" && c.Password == "" && c.IdentityToken == "" {
		return Credential{}, false, nil
	}
	return c, true, nil
}

// inEnv says whether $DOCKER_AUTH_CONFIG, which Docker reads before its
// config file, has a login for key.
func inEnv(key string) bool {
	v := os.Getenv("DOCKER_AUTH_CONFIG")
	if v == "" {
		return false
	}
	var env struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if json.Unmarshal([]byte(v), &env) != nil {
		return false
	}
	_, ok := env.Auths[key]
	return ok
}

// tilde writes a path under the home directory as ~/...
func tilde(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return p
	}
	if rel, err := filepath.Rel(home, p); err == nil && filepath.IsLocal(rel) {
		return "~/" + filepath.ToSlash(rel)
	}
	return p
}

// DockerConfigJSON is the .dockerconfigjson content of a
// kubernetes.io/dockerconfigjson Secret holding c for host. The kubelet
// uses a username and password (or "auth"); an identity token alone is
// written but the kubelet does not use it.
func DockerConfigJSON(host string, c Credential) ([]byte, error) {
	host = strings.TrimSpace(host)
	if host == "" {
		return nil, errors.New("pull secret: no registry host given")
	}
	if c.Username == "" && c.Password == "" && c.IdentityToken == "" {
		return nil, fmt.Errorf("pull secret for %s: the credentials are empty", host)
	}
	type entry struct {
		Username      string `json:"username,omitempty"`
		Password      string `json:"password,omitempty"`
		Auth          string `json:"auth,omitempty"`
		IdentityToken string `json:"identitytoken,omitempty"`
	}
	e := entry{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken}
	if c.Username != "" || c.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	}
	return json.Marshal(struct {
		Auths map[string]entry `json:"auths"`
	}{map[string]entry{authKey(host): e}})
}

// Push writes img to ref ("host[:port]/repo:tag") unless the registry
// already has it there, with the user's Docker credentials, as Lookup
// reads. It returns ref by digest, as a pod runs it.
func Push(ctx context.Context, ref string, img v1.Image, insecure bool) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	host := r.Context().RegistryStr()
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	byDigest := r.Context().Name() + "@" + digest.String()
	if desc, err := remote.Head(r, ropts...); err == nil && desc.Digest == digest {
		return byDigest, nil
	}
	if err := remote.Write(r, img, ropts...); err != nil {
		return "", explain(host, r, "pushing", err)
	}
	return byDigest, nil
}

// OnLoopback says whether REF (or REGISTRY[/PREFIX]) names a registry on
// this machine, localhost or a loopback address, where registries speak
// plain http (as Docker assumes for one).
func OnLoopback(ref string) bool {
	host, _, _ := strings.Cut(ref, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
