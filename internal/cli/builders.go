package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/moby/buildkit/client"
	"github.com/spf13/cobra"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/xdg"
)

// managedOptions configures the managed buildkitd of context cur. An empty
// mirror keeps the one already in its config, so a mirror given once stays
// in force. A builder in a container needs the local Docker: the returned
// func closes the connection.
func managedOptions(ctx context.Context, s streams, cur builderctx.Context, mirror string) (buildkitd.Options, func(), error) {
	o := buildkitd.Options{
		Mirror: mirror,
		Logf:   func(format string, args ...any) { fmt.Fprintf(s.err, "envd: "+format+"\n", args...) },
	}
	done := func() {}
	switch {
	case cur.RuntimeKind() == builderctx.RuntimeSSH:
		var err error
		if o, err = serverBuilderOptions(ctx, cur, o); err != nil {
			return o, done, err
		}
	case cur.RuntimeKind() == builderctx.RuntimePodman:
		p, err := podmanFor(ctx, cur)
		if err != nil {
			return o, done, err
		}
		o.Container, o.Dir, o.UserNamespace = p.dk, podmanBuilderDir(), p.engine.Rootless
	case cur.IsManaged() && cur.ManagedInContainer(os.Geteuid()):
		dk, err := docker.Connect(ctx)
		if err != nil {
			return o, done, builderNeedsDocker(err)
		}
		o.Container, done = dk, func() { dk.Close() }
	}
	if mirror == "" {
		st, err := buildkitd.Status(ctx, o)
		if err != nil {
			done()
			return o, func() {}, err
		}
		o.Mirror = st.Mirror
	}
	return o, done, nil
}

// builderNeedsDocker explains a Docker that does not answer when the
// builder is to run in it.
func builderNeedsDocker(err error) error {
	return fmt.Errorf("the managed builder runs as a container in Docker (or use a builder of yours: envd context create NAME --builder unix:///path --use)\n%w", err)
}

func contextStore() (*builderctx.Store, error) {
	return builderctx.Open(xdg.ConfigDir())
}

// connectBuilder connects to the current context's builder, starting the
// managed one when that is the current context. local reports whether the
// builder shares this machine's network (it can reach 127.0.0.1).
func connectBuilder(ctx context.Context, s streams, mirror string) (c *client.Client, local bool, err error) {
	cur, err := selectedContext()
	if err != nil {
		return nil, false, err
	}
	if cur.IsKubePod() {
		k, err := newKubeBuilder(s, cur)
		if err != nil {
			return nil, false, err
		}
		c, err := k.connect(ctx, mirror)
		return c, false, err
	}
	if mirror != "" && !cur.IsManaged() {
		return nil, false, usageError{fmt.Errorf("--registry-mirror configures the managed builder, but the current context %q uses %s; configure the mirror on that builder", cur.Name, cur.Builder)}
	}
	o, done, err := managedOptions(ctx, s, cur, mirror)
	if err != nil {
		return nil, false, err
	}
	defer done()
	c, err = builderctx.Connect(ctx, cur, o)
	onThisMachine := cur.IsManaged() || strings.HasPrefix(cur.Builder, "unix://")
	return c, onThisMachine && cur.RuntimeKind() != builderctx.RuntimeSSH, err
}

type bootstrapOptions struct {
	mirror string
	stop   bool
	remove bool // with stop: a builder pod's cache too
	status bool
}

func newBootstrapCmd(s streams) *cobra.Command {
	o := &bootstrapOptions{}
	c := &cobra.Command{
		Use:   "bootstrap",
		Short: "Start (or restart with new settings) the managed buildkitd",
		Long: "bootstrap starts the buildkitd that envd manages for the default context and waits until it answers.\n" +
			"It keeps running between builds; --stop stops it. A --registry-mirror is written into its config and kept.\n" +
			"In a context with --builder kube-pod it does the same for the builder pod in the context's namespace;\n" +
			"--stop removes the pod and keeps its cache claim, --stop --rm removes the cache too.",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error { return runBootstrap(c.Context(), s, o) },
	}
	c.Flags().StringVar(&o.mirror, "registry-mirror", "", "docker.io registry mirror, e.g. http://127.0.0.1:5000")
	c.Flags().BoolVar(&o.stop, "stop", false, "stop the managed buildkitd")
	c.Flags().BoolVar(&o.remove, "rm", false, "with --stop: remove the builder container or pod with its cache (volume or claim)")
	c.Flags().BoolVar(&o.status, "status", false, "show the managed buildkitd's state without changing it")
	return c
}

func runBootstrap(ctx context.Context, s streams, o *bootstrapOptions) error {
	if o.stop && (o.status || o.mirror != "") {
		return usageError{fmt.Errorf("--stop cannot be combined with --status or --registry-mirror")}
	}
	if o.remove && !o.stop {
		return usageError{fmt.Errorf("--rm goes with --stop")}
	}
	cur, err := selectedContext()
	if err != nil {
		return err
	}
	if cur.IsKubePod() {
		k, err := newKubeBuilder(s, cur)
		if err != nil {
			return err
		}
		return k.bootstrap(ctx, s, o)
	}
	if !cur.IsManaged() {
		cur = builderctx.Context{Name: builderctx.Default, Builder: builderctx.Managed} // bootstrap is about the managed one
	}
	bo, done, err := managedOptions(ctx, s, cur, o.mirror)
	if err != nil {
		return err
	}
	defer done()
	switch {
	case o.stop && o.remove:
		if bo.Container == nil {
			return usageError{fmt.Errorf("--rm removes a builder container or pod with its cache; this managed buildkitd is a process: --stop stops it")}
		}
		if err := buildkitd.RemoveContainer(ctx, bo, true); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "builder container %s removed, with its cache volume\n", buildkitd.ContainerName(bo))
		return nil
	case o.stop:
		if err := buildkitd.Stop(ctx, bo); err != nil {
			return err
		}
		fmt.Fprintln(s.out, "managed buildkitd stopped")
		return nil
	case o.status:
		st, err := buildkitd.Status(ctx, bo)
		if err != nil {
			return err
		}
		state := "stopped"
		if st.Running {
			state = fmt.Sprintf("running (pid %d, ready %v)", st.PID, st.Ready)
		}
		if st.Container != "" {
			state += ", in the container " + st.Container
		}
		fmt.Fprintf(s.out, "managed buildkitd: %s\naddress: %s\nstate: %s\nmirror: %s\n", state, st.Addr, st.Dir, orNone(st.Mirror))
		if st.Version != "" {
			fmt.Fprintf(s.out, "buildkit: %s\n", st.Version)
		}
		return nil
	}
	addr, err := buildkitd.Ensure(ctx, bo)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "managed buildkitd ready at %s (docker.io mirror: %s)\n", addr, orNone(bo.Mirror))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newContextCmd(s streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "context",
		Short: "Manage contexts: which BuildKit envd builds with, and where environments run",
	}
	var format string
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List contexts",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			store, err := contextStore()
			if err != nil {
				return err
			}
			list, cur, err := store.List()
			if err != nil {
				return err
			}
			return printContexts(s, list, cur, format)
		},
	}
	ls.Flags().StringVarP(&format, "output", "o", "table", "table or json")

	var builder, ca, cert, key, serverName, rt, cache, nameFlag, builderAddr, podmanSocket string
	var kube builderctx.Kube
	var use bool
	create := &cobra.Command{
		Use: "create NAME [--builder ADDRESS] [--runtime docker|podman|kubernetes --registry REGISTRY/PREFIX|ssh://USER@HOST[:PORT]]",
		Example: "  envd context create ci --builder tcp://10.0.0.5:1234 --use\n" +
			"  envd context create gpu-box --runtime ssh://alice@gpu.example.org --use\n" +
			"  envd context create pod --runtime podman --use\n" +
			"  envd context create --name ci --builder tcp --builder-address 10.0.0.5:1234 --use   (the original envd's form)",
		Short: "Create a context: a builder (managed, unix:///path, tcp://host:port, docker-container://name) and a runtime",
		Long: "A context names the BuildKit envd builds with (--builder, default: the managed local one) and where\n" +
			"environments run (--runtime, default: the local Docker). With --runtime kubernetes, envd up pushes the\n" +
			"image to --registry and runs the environment as a pod in the cluster of --kubeconfig/--kube-context,\n" +
			"in --namespace; you never need kubectl. With --runtime ssh://USER@HOST (or ssh://ALIAS of your ssh\n" +
			"config) environments run in that server's Docker and are built there by envd's builder container;\n" +
			"envd reaches it with your own ssh (config, agent, known_hosts), copies the project in on the first\n" +
			"start, and forwards Jupyter and exposed ports to 127.0.0.1 here. With --runtime podman, environments and envd's\n" +
			"builder run in your Podman (rootless for a user who is not root: your files are the dev user's inside). --cache REF names a team's build cache in a registry: every\n" +
			"build imports it, and envd build exports to it, so a builder that never built an environment reuses\n" +
			"what a teammate's built.",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 1 && nameFlag != "" && nameFlag != args[0] || len(args) > 1 {
				return usageError{fmt.Errorf("give the context's name once: envd context create NAME (or --name NAME)")}
			}
			if len(args) == 0 && nameFlag == "" {
				return usageError{fmt.Errorf("give the context a name: envd context create NAME")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{nameFlag}
			}
			if builderAddr != "" || originalKinds[builder] {
				addr, err := originalBuilder(builder, builderAddr)
				if err != nil {
					return err
				}
				builder = addr
			}
			store, err := contextStore()
			if err != nil {
				return err
			}
			ctx := builderctx.Context{Name: args[0], Builder: builder, Runtime: rt, Cache: cache}
			if ca != "" || cert != "" || key != "" || serverName != "" {
				ctx.TLS = &builderctx.TLS{CACert: ca, Cert: cert, Key: key, ServerName: serverName}
			}
			if kube != (builderctx.Kube{}) {
				ctx.Kube = &kube
			}
			if podmanSocket != "" {
				ctx.Podman = &builderctx.Podman{Socket: podmanSocket}
			}
			if err := store.Create(ctx); err != nil {
				return err
			}
			if rt == builderctx.RuntimePodman {
				notePodman(cmd.Context(), s, ctx)
			}
			if use {
				if err := store.Use(args[0]); err != nil {
					return err
				}
			}
			fmt.Fprintf(s.out, "context %s created\n", args[0])
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&builder, "builder", "", "builder: managed, managed-container, kube-pod (with --runtime kubernetes: a BuildKit pod in its namespace), unix:///path, tcp://host:port or docker-container://name")
	f.StringVar(&ca, "tlscacert", "", "CA certificate for tcp://")
	f.StringVar(&cert, "tlscert", "", "client certificate for tcp://")
	f.StringVar(&key, "tlskey", "", "client key for tcp://")
	f.StringVar(&serverName, "tlsservername", "", "server name to verify for tcp://")
	f.BoolVar(&use, "use", false, "make it the current context")
	f.StringVar(&rt, "runtime", "", "where environments run: docker (the local Docker, the default), podman (your Podman service; builds run in it too), kubernetes, or ssh://USER@HOST[:PORT] (a server's Docker, reached with your OpenSSH; builds run there too)")
	f.StringVar(&podmanSocket, "podman-socket", "", "podman: its API socket (default: $CONTAINER_HOST, else $XDG_RUNTIME_DIR/podman/podman.sock, and for root /run/podman/podman.sock)")
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kubernetes: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
	f.StringVar(&kube.Context, "kube-context", "", "kubernetes: the context in the kubeconfig (default: its current one)")
	f.StringVar(&kube.Namespace, "namespace", "", "kubernetes: the namespace environments go in (default: the kubeconfig context's, else default)")
	f.StringVar(&kube.Registry, "registry", "", "kubernetes: REGISTRY[/PREFIX] that envd pushes images to and the cluster pulls from")
	f.StringVar(&cache, "cache", "", "a registry REF[:TAG] for the team's build cache: imported by every build, exported by envd build")
	f.StringVar(&nameFlag, "name", "", "the context's name, instead of NAME (the original envd's form)")
	f.StringVar(&builderAddr, "builder-address", "", "with --builder tcp|unix|docker-container: its address (the original envd's form)")

	useCmd := &cobra.Command{
		Use:   "use NAME",
		Short: "Make a context the current one",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := contextStore()
			if err != nil {
				return err
			}
			if err := store.Use(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "now using context %s\n", args[0])
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a context",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := contextStore()
			if err != nil {
				return err
			}
			if err := store.Remove(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "context %s removed\n", args[0])
			return nil
		},
	}
	c.AddCommand(ls, create, useCmd, rm)
	return c
}

func printContexts(s streams, list []builderctx.Context, cur, format string) error {
	switch format {
	case "json":
		type row struct {
			builderctx.Context
			Current bool `json:"current"`
		}
		var rows []row
		for _, c := range list {
			rows = append(rows, row{c, c.Name == cur})
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table":
		w := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tBUILDER\tRUNTIME\tCURRENT")
		for _, c := range list {
			b := c.Builder
			if c.IsManaged() {
				b = "managed (local buildkitd)"
			}
			mark := ""
			if c.Name == cur {
				mark = "*"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, b, describeRuntime(c), mark)
		}
		return w.Flush()
	}
	return usageError{fmt.Errorf("-o %q: use table or json", format)}
}

// describeRuntime is the RUNTIME column of envd context ls.
func describeRuntime(c builderctx.Context) string {
	switch c.RuntimeKind() {
	case builderctx.RuntimeSSH:
		return "docker on " + c.SSH.Host + " (builds there)"
	case builderctx.RuntimeDocker:
		return "docker (local)"
	case builderctx.RuntimePodman:
		if c.Podman != nil {
			return "podman on " + c.Podman.Socket
		}
		return "podman (your service)"
	}
	where := c.Kube.Context
	if where == "" {
		where = "current kube context"
	}
	ns := c.Kube.Namespace
	if ns == "" {
		ns = "its namespace"
	}
	return fmt.Sprintf("kubernetes (%s, %s; images in %s)", where, ns, c.Kube.Registry)
}
