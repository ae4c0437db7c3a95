// Package builderctx keeps named builder contexts, like docker contexts: each
// names a BuildKit to build with, and one is current. They live in
// xdg.ConfigDir()/contexts.json. The context "default" is built in and means
// the envd-managed local buildkitd (package buildkitd).
package builderctx

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"envd.dev/envd/internal/sshhost"
)

// Default is the built-in context; it always exists and cannot be removed.
const Default = "default"

// Managed is the Builder value of the envd-managed local buildkitd ("" means
// the same).
const Managed = "managed"

// ManagedContainer is the envd-managed buildkitd run as a container in the
// local Docker, asked for explicitly. "managed" means the same for a user
// who is not root; root gets a process unless it asks for this.
const ManagedContainer = "managed-container"

// KubePod is envd's BuildKit run as a pod in the cluster of a kubernetes
// context, in its namespace (package kube).
const KubePod = "kube-pod"

// Context is one named builder, and the runtime environments run in.
type Context struct {
	Name string `json:"name"`
	// Builder is "managed" (or ""), "managed-container", "kube-pod",
	// "unix:///path", "tcp://host:port" or "docker-container://name" (a
	// moby/buildkit container).
	Builder string `json:"builder"`
	// TLS is for tcp:// builders only.
	TLS *TLS `json:"tls,omitempty"`
	// Runtime is where `envd up` runs environments: RuntimeDocker (or "")
	// the local Docker, RuntimeKubernetes the cluster that Kube names.
	Runtime string `json:"runtime,omitempty"`
	Kube    *Kube  `json:"kubernetes,omitempty"`
	// SSH is the server of RuntimeSSH.
	SSH *SSH `json:"ssh,omitempty"`
	// Podman is the service of RuntimePodman.
	Podman *Podman `json:"podman,omitempty"`
	// Cache is a registry REF[:TAG] holding the team's build cache: builds
	// import it, and envd build exports to it.
	Cache string `json:"cache,omitempty"`
}

// Runtimes a context can name.
const (
	RuntimeDocker     = "docker"
	RuntimeKubernetes = "kubernetes"
	// RuntimeSSH: a server's Docker, reached with the user's OpenSSH; the
	// managed builder runs there too (--runtime ssh://USER@HOST[:PORT]).
	RuntimeSSH = "ssh"
	// RuntimePodman: the user's Podman, through its Docker-compatible
	// API; the managed builder runs as a container in it.
	RuntimePodman = "podman"
)

// Podman names the service of a podman context.
type Podman struct {
	// Socket is its API socket; "" finds it each time (podman.Sockets).
	Socket string `json:"socket,omitempty"`
}

// SSH names the server of an ssh context.
type SSH struct {
	// Host is ssh://[USER@]HOST[:PORT]; HOST may be a Host alias of the
	// user's ssh config.
	Host string `json:"host"`
}

// Kube says which cluster, namespace and registry a kubernetes context uses.
type Kube struct {
	// Kubeconfig is the file ("" the usual: $KUBECONFIG, ~/.kube/config),
	// Context the context in it ("" its current one), Namespace where the
	// environments go ("" the kubeconfig context's, else "default").
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// Registry is REGISTRY[/PREFIX]: images are pushed to
	// REGISTRY/PREFIX/NAME and the nodes pull them from there.
	Registry string `json:"registry"`
}

// RuntimeKind is the context's runtime, "docker" when it names none.
func (c Context) RuntimeKind() string {
	if c.Runtime == "" {
		return RuntimeDocker
	}
	return c.Runtime
}

// TLS names the files for a TLS connection to a tcp:// builder.
type TLS struct {
	CACert     string `json:"ca_cert,omitempty"`     // CA that signed the server's certificate; default: the system's
	Cert       string `json:"cert,omitempty"`        // client certificate, with Key
	Key        string `json:"key,omitempty"`         // client key, with Cert
	ServerName string `json:"server_name,omitempty"` // name to verify, when the address is not in the certificate
}

// IsManaged reports whether c means the envd-managed local buildkitd.
func (c Context) IsManaged() bool {
	return c.Builder == "" || c.Builder == Managed || c.Builder == ManagedContainer
}

// IsKubePod reports whether c builds in a pod of its cluster.
func (c Context) IsKubePod() bool { return c.Builder == KubePod }

// ManagedInContainer reports whether c's managed builder runs as a
// container: asked for, on a server (RuntimeSSH), in Podman, or because
// envd is not root (euid).
func (c Context) ManagedInContainer(euid int) bool {
	k := c.RuntimeKind()
	return c.Builder == ManagedContainer || (c.IsManaged() && (euid != 0 || k == RuntimeSSH || k == RuntimePodman))
}

// Kinds of Error, for errors.Is.
var (
	ErrInvalid  = errors.New("invalid context")
	ErrNotFound = errors.New("no such context")
	ErrExists   = errors.New("context exists")
	ErrBuiltin  = errors.New("built-in context")
	ErrConnect  = errors.New("cannot reach builder")
)

// Error is a mistake the user can fix: what is wrong and what to do.
type Error struct {
	Kind error
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + "\n  hint: " + e.Hint
}

func (e *Error) Is(target error) bool { return target == e.Kind }

func invalid(hint, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

const builderForms = "managed, managed-container, kube-pod (with --runtime kubernetes), unix:///path/to/buildkitd.sock, tcp://host:port or docker-container://name"

// validate checks c and returns it normalised: builder "" becomes "managed",
// TLS file paths become absolute (the CLI runs from any directory later).
func validate(c Context) (Context, error) {
	if !nameRE.MatchString(c.Name) || len(c.Name) > 63 {
		return c, invalid("use lower-case letters, digits, '-' and '_', starting with a letter or digit (at most 63)",
			"invalid context name %q", c.Name)
	}
	if c.Name == Default {
		return c, &Error{Kind: ErrBuiltin, Msg: `the context "default" is built in`, Hint: "choose another name"}
	}
	if c.Builder == "" {
		c.Builder = Managed
	}
	scheme, err := checkBuilder(c.Builder)
	if err != nil {
		return c, err
	}
	if err := checkRuntime(&c); err != nil {
		return c, err
	}
	if c.Cache != "" && (strings.Contains(c.Cache, "://") || strings.ContainsAny(c.Cache, " ,=") || c.Cache != strings.ToLower(c.Cache)) {
		return c, invalid("give the cache as an image reference: registry.example.com/team/cache[:tag]",
			"context %q: invalid cache %q", c.Name, c.Cache)
	}
	if c.TLS != nil {
		if scheme != "tcp" {
			return c, invalid("drop the TLS settings, or use a tcp://host:port builder",
				"context %q: TLS applies to tcp:// builders only, not %s", c.Name, c.Builder)
		}
		t, err := checkTLS(*c.TLS)
		if err != nil {
			return c, err
		}
		c.TLS = &t
	}
	return c, nil
}

// checkBuilder validates a builder address and returns its scheme.
func checkBuilder(b string) (string, error) {
	if b == Managed || b == ManagedContainer || b == KubePod {
		return b, nil
	}
	hint := "a builder is " + builderForms
	if !strings.Contains(b, "://") {
		if strings.HasPrefix(b, "/") {
			hint = "for a socket write unix://" + b
		}
		return "", invalid(hint, "invalid builder %q: no scheme", b)
	}
	u, err := url.Parse(b)
	if err != nil {
		return "", invalid(hint, "invalid builder %q: %v", b, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return "", invalid("write three slashes and an absolute path: unix:///run/buildkit/buildkitd.sock",
				"invalid builder %q: a unix socket needs an absolute path", b)
		}
	case "tcp":
		port, err := strconv.Atoi(u.Port())
		if u.Hostname() == "" || err != nil || port < 1 || port > 65535 {
			return "", invalid("write tcp://host:port, e.g. tcp://10.0.0.5:1234",
				"invalid builder %q: tcp needs a host and a port", b)
		}
		if strings.Trim(u.Path, "/") != "" || u.User != nil || u.RawQuery != "" {
			return "", invalid("write tcp://host:port, e.g. tcp://10.0.0.5:1234",
				"invalid builder %q: only a host and port are allowed", b)
		}
	case "docker-container":
		if u.Hostname() == "" || strings.Trim(u.Path, "/") != "" {
			return "", invalid("write docker-container://NAME, NAME being a running moby/buildkit container",
				"invalid builder %q: needs a container name", b)
		}
	case "kube-pod":
		return "", invalid("write --builder kube-pod, with --runtime kubernetes: envd runs its builder in the context's namespace",
			"invalid builder %q: kube-pod takes no address", b)
	default:
		return "", invalid(hint, "invalid builder %q: unknown scheme %q", b, u.Scheme)
	}
	return u.Scheme, nil
}

// registryRE: host[:port] and an optional path, as image references have.
var registryRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$`)

// checkRuntime validates the runtime settings and makes paths absolute.
func checkRuntime(c *Context) error {
	switch c.Runtime {
	case "", RuntimeDocker, RuntimePodman:
		if c.Runtime == RuntimePodman {
			return checkPodman(c)
		}
		if c.Podman != nil {
			return invalid("add --runtime podman, or drop --podman-socket", "context %q: --podman-socket is for --runtime podman", c.Name)
		}
		if c.SSH != nil {
			return invalid("drop the ssh settings", "context %q: ssh settings are for --runtime ssh://", c.Name)
		}
		if c.Builder == KubePod {
			return invalid("add --runtime kubernetes and its --registry: the builder pod runs in that cluster and pushes there",
				"context %q: --builder kube-pod needs --runtime kubernetes", c.Name)
		}
		if c.Kube != nil {
			return invalid("add --runtime kubernetes, or drop the cluster settings", "context %q: --kubeconfig, --kube-context, --namespace and --registry are for --runtime kubernetes", c.Name)
		}
		c.Runtime = ""
		return nil
	case RuntimeKubernetes:
	default:
		if strings.HasPrefix(c.Runtime, "ssh://") {
			return checkSSH(c)
		}
		return invalid("use --runtime docker, podman, kubernetes or ssh://USER@HOST[:PORT]", "context %q: unknown runtime %q", c.Name, c.Runtime)
	}
	if c.Podman != nil {
		return invalid("drop --podman-socket", "context %q: --podman-socket is for --runtime podman", c.Name)
	}
	if c.SSH != nil {
		return invalid("drop the ssh settings", "context %q: ssh settings are for --runtime ssh://", c.Name)
	}
	if c.Kube == nil || c.Kube.Registry == "" {
		return invalid("add --registry REGISTRY/PREFIX, a registry you can push to and the cluster's nodes pull from, e.g. registry.example.com/ml",
			"context %q: a kubernetes runtime needs a registry", c.Name)
	}
	if r := strings.TrimSuffix(c.Kube.Registry, "/"); !registryRE.MatchString(r) || strings.Contains(r, "://") {
		return invalid("write it as an image reference is written, without a scheme: host[:port][/prefix]",
			"context %q: invalid registry %q", c.Name, c.Kube.Registry)
	} else {
		c.Kube.Registry = r
	}
	if c.Kube.Kubeconfig != "" {
		abs, err := filepath.Abs(c.Kube.Kubeconfig)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return invalid("give the kubeconfig file the cluster's admin gave you", "kubeconfig %s: %v", c.Kube.Kubeconfig, errors.Unwrap(err))
		}
		c.Kube.Kubeconfig = abs
	}
	return nil
}

func checkTLS(t TLS) (TLS, error) {
	if t == (TLS{}) {
		return t, invalid("give at least a CA certificate, a client certificate and key, or a server name", "empty TLS settings")
	}
	if (t.Cert == "") != (t.Key == "") {
		return t, invalid("give both the client certificate and its key, or neither", "TLS client certificate and key go together")
	}
	for _, f := range []*string{&t.CACert, &t.Cert, &t.Key} {
		if *f == "" {
			continue
		}
		abs, err := filepath.Abs(*f)
		if err != nil {
			return t, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return t, invalid("check the path", "TLS file %s: %v", *f, errors.Unwrap(err))
		}
		if !fi.Mode().IsRegular() {
			return t, invalid("check the path", "TLS file %s is not a regular file", *f)
		}
		*f = abs
	}
	return t, nil
}

// checkSSH turns --runtime ssh://... into RuntimeSSH and its server. The
// build runs on the server, in envd's managed builder there: an image
// built elsewhere would cross the network.
func checkPodman(c *Context) error {
	if c.Kube != nil || c.SSH != nil {
		return invalid("drop --kubeconfig, --kube-context, --namespace and --registry", "context %q: the cluster settings are for --runtime kubernetes", c.Name)
	}
	if c.Builder != Managed && c.Builder != ManagedContainer {
		return invalid("drop --builder: envd runs its builder as a container in Podman, which pushes the image straight into Podman",
			"context %q: a podman runtime builds with envd's managed builder in Podman, not %s", c.Name, c.Builder)
	}
	if c.Podman != nil && c.Podman.Socket != "" {
		sock := strings.TrimPrefix(c.Podman.Socket, "unix://")
		abs, err := filepath.Abs(sock)
		if err != nil {
			return err
		}
		c.Podman.Socket = abs
	}
	if c.Podman != nil && c.Podman.Socket == "" {
		c.Podman = nil
	}
	return nil
}

func checkSSH(c *Context) error {
	h, err := sshhost.Parse(c.Runtime)
	if err != nil {
		return invalid("", "context %q: --runtime: %v", c.Name, err)
	}
	if c.Kube != nil {
		return invalid("drop --kubeconfig, --kube-context, --namespace and --registry", "context %q: the cluster settings are for --runtime kubernetes", c.Name)
	}
	if c.Builder != Managed && c.Builder != ManagedContainer {
		return invalid("drop --builder: envd runs its builder on the server, beside its Docker, so that images stay there",
			"context %q: an ssh runtime builds with envd's managed builder on the server, not %s", c.Name, c.Builder)
	}
	c.Runtime, c.SSH = RuntimeSSH, &SSH{Host: h.String()}
	return nil
}
