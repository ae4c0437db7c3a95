package cli

// Commands on environments that exist: ls, down, destroy, ssh, exec, logs,
// and on envd's images.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshclient"
	"envd.dev/envd/internal/sshconfig"
)

// envName is the NAME argument, or the current directory's project name.
func envName(args []string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return projectName(wd), nil
}

func newLsCmd(st streams) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "ls",
		Short: "List environments",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usageError{fmt.Errorf("-o %q: use table or json", format)}
			}
			s, err := openSession(c.Context(), st)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.rt.List(c.Context())
			if err != nil {
				return err
			}
			for i := range list {
				// Ports envd forwards in the background are its endpoints too.
				for _, f := range s.m.Forwarded(list[i].Name) {
					if host, port, err := net.SplitHostPort(f.LocalAddr); err == nil {
						n, _ := strconv.Atoi(port)
						list[i].Ports = append(list[i].Ports, runtime.Port{Name: f.Name, ContainerPort: f.RemotePort, HostIP: host, HostPort: n})
					}
				}
			}
			return printEnvs(st.out, list, format)
		},
	}
	c.Flags().StringVarP(&format, "output", "o", "table", "table or json")
	return c
}

// envRow is one line of `envd ls`.
type envRow struct {
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	Image     string         `json:"image"`
	SSH       string         `json:"ssh"`
	Endpoints []runtime.Port `json:"endpoints"`
	Project   string         `json:"project_dir,omitempty"`
}

func printEnvs(w io.Writer, envs []runtime.Env, format string) error {
	rows := []envRow{}
	for _, e := range envs {
		r := envRow{Name: e.Name, Status: e.Status, Image: e.Image, SSH: sshconfig.Alias(e.Name), Project: e.ProjectDir, Endpoints: []runtime.Port{}}
		for _, p := range e.Ports {
			if p.ContainerPort != contract.SSHPort && p.HostPort != 0 {
				r.Endpoints = append(r.Endpoints, p)
			}
		}
		rows = append(rows, r)
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tIMAGE\tSSH\tENDPOINTS")
	for _, r := range rows {
		var eps []string
		for _, p := range r.Endpoints {
			eps = append(eps, fmt.Sprintf("%d->%s", p.ContainerPort, hostPort(&p)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status, r.Image, r.SSH, strings.Join(eps, ","))
	}
	return tw.Flush()
}

func newDownCmd(st streams, destroy bool) *cobra.Command {
	use, short := "down [NAME]", "Stop and remove an environment's container (the image stays)"
	long := "down removes the environment's container (pod and secrets on Kubernetes), its ssh entry and its state;\n" +
		"the image stays, and on Kubernetes the project's claim. NAME, or --name, defaults to the project in --path.\n" +
		"The original envd's `envd destroy` is this, and more: ours also removes the image (see envd destroy)."
	if destroy {
		use, short = "destroy [NAME]", "Remove an environment's container and its image"
		long = "destroy is down and also removes the image (on Kubernetes the project's claim, with the work in it).\n" +
			"NAME, or --name/-n, defaults to the project in --path/-p, as the original envd's destroy."
	}
	var name, path string
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("accepts at most one NAME, got %d", len(args))}
			}
			if len(args) == 1 && name != "" && name != args[0] {
				return usageError{fmt.Errorf("NAME %q and --name %q differ: give one", args[0], name)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			n, err := nameOrProject(args, name, path)
			if err != nil {
				return err
			}
			return runDown(c.Context(), st, n, destroy)
		},
	}
	c.Flags().StringVarP(&name, "name", "n", "", "the environment (default: the project in --path)")
	c.Flags().StringVarP(&path, "path", "p", ".", "the project directory whose environment it is, when no name is given")
	return c
}

// nameOrProject is the environment a command names: NAME, else --name,
// else the project in path.
func nameOrProject(args []string, name, path string) (string, error) {
	switch {
	case len(args) > 0:
		return args[0], nil
	case name != "":
		return name, nil
	}
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return projectName(dir), nil
}

func runDown(ctx context.Context, st streams, name string, destroy bool) error {
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	env, err := s.m.Down(ctx, name, destroy)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "%s removed\n", name)
	if destroy && s.images != nil {
		if err := s.images.RemoveImage(ctx, env.Image); err != nil {
			return fmt.Errorf("removing image %s: %w", env.Image, err)
		}
		fmt.Fprintf(st.out, "image %s removed\n", env.Image)
		if _, err := pruneHandover(ctx, s.ctx, s.images); err != nil {
			return err
		}
	} else if destroy && s.server != nil {
		// The server keeps its builder's cache; the image goes.
		if err := s.server.RemoveImage(ctx, env.Image); err != nil {
			return fmt.Errorf("removing image %s on the server: %w", env.Image, err)
		}
		fmt.Fprintf(st.out, "its project volume and image %s removed on the server\n", env.Image)
	} else if destroy {
		fmt.Fprintf(st.out, "its project volume removed\n")
	}
	return nil
}

// runRemote runs cmd ("" for a login shell) in the environment and passes
// its exit code through.
func runRemote(ctx context.Context, st streams, name, cmd string) error {
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.run(ctx, name, cmd)
}

func (s *session) run(ctx context.Context, name, cmd string) error {
	t, err := s.m.Target(ctx, name)
	if err != nil {
		return err
	}
	return runOn(ctx, t, cmd)
}

// runOn runs cmd ("" for a login shell) over ssh on the terminal's streams;
// the remote exit code becomes envd's.
func runOn(ctx context.Context, t sshclient.Target, cmd string) error {
	c, err := sshclient.Dial(ctx, t)
	if err != nil {
		return fmt.Errorf("ssh to %s: %w", strings.TrimSuffix(t.Addr, sshconfig.Suffix), err)
	}
	defer c.Close()
	code, err := sshclient.Run(c, cmd, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError(code)
	}
	return nil
}

func newSSHCmd(st streams) *cobra.Command {
	var stdio bool
	c := &cobra.Command{
		Use:   "ssh [NAME]",
		Short: "Open a shell in an environment (envd's own ssh client)",
		Args:  maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if stdio && len(args) == 1 {
				// ssh's ProxyCommand may pass the host as typed: NAME.envd.
				args[0] = strings.TrimSuffix(args[0], sshconfig.Suffix)
			}
			name, err := envName(args)
			if err != nil {
				return err
			}
			if stdio {
				return proxyStdio(c.Context(), st, name, os.Stdin, os.Stdout)
			}
			return runRemote(c.Context(), st, name, "")
		},
	}
	c.Flags().BoolVar(&stdio, "stdio", false, "connect standard input and output to the environment's sshd (what the ssh config's ProxyCommand runs)")
	return c
}

// proxyStdio carries one ssh connection between stdin/stdout and the
// environment's sshd, reached the runtime's way wherever it runs now.
func proxyStdio(ctx context.Context, st streams, name string, in io.Reader, out io.Writer) error {
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	env, err := s.m.Get(ctx, name)
	if err != nil {
		return err
	}
	if !env.Running {
		return fmt.Errorf("%s is not running (%s)\n  hint: envd up starts it again", name, env.Status)
	}
	conn, err := s.rt.Dial(ctx, name, contract.SSHPort)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, in)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite() // ssh is done sending
		}
	}()
	_, err = io.Copy(out, conn)
	return err
}

// envdPath is this binary, for the ssh config's ProxyCommand; "" (a plain
// HostName and Port entry) when it cannot be told.
func envdPath() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}

func newExecCmd(st streams) *cobra.Command {
	var name, command string
	c := &cobra.Command{
		Use:   "exec NAME -- COMMAND [ARG...]",
		Short: "Run a command in an environment, in the project directory",
		Long: "exec runs COMMAND in the environment NAME. With --command C it runs the build file's runtime.command\n" +
			"named C instead (ARGs are appended), in the environment --name or NAME, else the current directory's\n" +
			"project: `envd exec --name N --command C` is the original envd's form.",
		Args: func(c *cobra.Command, args []string) error {
			if command == "" && (len(args) < 2 || name != "") {
				if name != "" {
					return usageError{errors.New("--name goes with --command: envd exec --name N --command C, or envd exec NAME -- COMMAND")}
				}
				return usageError{errors.New("give the environment and the command: envd exec NAME -- COMMAND [ARG...], or envd exec --name NAME --command C")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if command == "" {
				return runRemote(c.Context(), st, args[0], shellQuote(args[1:]))
			}
			// NAME is an argument before any "--": after it, all are the command's.
			if name == "" && len(args) > 0 && c.ArgsLenAtDash() != 0 {
				name, args = args[0], args[1:]
			}
			env, err := nameOrProject(nil, name, ".")
			if err != nil {
				return err
			}
			return runNamedCommand(c.Context(), st, env, command, args)
		},
	}
	c.Flags().StringVar(&name, "name", "", "with --command: the environment (default: the current directory's project)")
	c.Flags().StringVar(&command, "command", "", "run the build file's runtime.command of this name")
	return c
}

// runNamedCommand runs the runtime.command called command, which up
// recorded on the environment.
func runNamedCommand(ctx context.Context, st streams, name, command string, args []string) error {
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	env, err := s.m.Get(ctx, name)
	if err != nil {
		return err
	}
	var cmds map[string]string
	if raw := env.Labels[contract.LabelCommands]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &cmds); err != nil {
			return fmt.Errorf("environment %s: its commands label: %w", name, err)
		}
	}
	cmd, ok := cmds[command]
	if !ok {
		names := slices.Sorted(maps.Keys(cmds))
		if len(names) == 0 {
			return fmt.Errorf("environment %s has no command %q: its build file has no runtime.command (add one, then envd up again)", name, command)
		}
		return fmt.Errorf("environment %s has no command %q; it has %s\n  hint: a command added to the build file since needs envd up", name, command, strings.Join(quoteAll(names), ", "))
	}
	if len(args) > 0 {
		cmd += " " + shellQuote(args)
	}
	return s.run(ctx, name, cmd)
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Quote(x)
	}
	return out
}

// shellQuote joins argv into one command line for the remote shell.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.MaximumNArgs(n)(c, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newLogsCmd(st streams) *cobra.Command {
	var follow bool
	var tail int
	c := &cobra.Command{
		Use:   "logs [NAME [SERVICE]]",
		Short: "Show an environment's log, or one service's (a daemon, jupyter, init-N)",
		Args:  maxArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			name, err := envName(args)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return serviceLogs(c.Context(), st, name, args[1], follow, tail)
			}
			s, err := openSession(c.Context(), st)
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.m.Get(c.Context(), name); err != nil {
				return err
			}
			rc, err := s.rt.Logs(c.Context(), name, follow, tail)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(st.out, rc)
			return err
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	c.Flags().IntVarP(&tail, "tail", "n", 0, "only the last N lines (0: all)")
	return c
}

// serviceLogs prints a service's log file from inside the environment.
func serviceLogs(ctx context.Context, st streams, name, service string, follow bool, tail int) error {
	if !namePatternOK(service) {
		return usageError{fmt.Errorf("invalid service name %q", service)}
	}
	s, err := openSession(ctx, st)
	if err != nil {
		return err
	}
	defer s.Close()
	dir := logDir(devUser(s.rt))
	n := "+1"
	if tail > 0 {
		n = fmt.Sprint(tail)
	}
	f := ""
	if follow {
		f = " -F"
	}
	cmd := fmt.Sprintf(`f="%s/%s.log"; if [ ! -e "$f" ]; then echo "no service %s; logs: $(ls %s 2>/dev/null | sed -n 's/\.log$//p' | tr '\n' ' ')" >&2; exit 1; fi; exec tail -n %s%s "$f"`,
		dir, service, service, dir, n, f)
	return s.run(ctx, name, cmd)
}

func namePatternOK(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" && s[0] != '.'
}
