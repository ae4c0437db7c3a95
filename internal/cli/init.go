package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/lang"
)

// initOptions are the raw flags of `envd init`.
type initOptions struct {
	path  string
	force bool
}

func newInitCmd(s streams) *cobra.Command {
	o := &initOptions{}
	c := &cobra.Command{
		Use:   "init",
		Short: "Write a build.envd from the project's requirements.txt, pyproject.toml, environment.yml and .python-version",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return runInit(s, o)
		},
	}
	c.Flags().StringVarP(&o.path, "path", "p", ".", "project directory")
	c.Flags().BoolVar(&o.force, "force", false, "replace an existing build.envd")
	return c
}

func runInit(s streams, o *initOptions) error {
	if st, err := os.Stat(o.path); err != nil || !st.IsDir() {
		return usageError{fmt.Errorf("project directory %s does not exist", o.path)}
	}
	target := filepath.Join(o.path, "build.envd")
	if _, err := os.Stat(target); err == nil && !o.force {
		return fmt.Errorf("%s already exists; keep it, or pass --force to replace it", target)
	}
	p, err := findProject(o.path)
	if err != nil {
		return err
	}
	content := p.render()
	// What init writes must build: check it as envd build would.
	if _, err := (lang.Loader{Print: s.err}).LoadSource(target, []byte(content), ""); err != nil {
		return fmt.Errorf("envd init wrote a build file that does not load; this is a bug in envd, please report it: %w", err)
	}
	if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
		return err
	}
	for _, n := range p.notes {
		fmt.Fprintf(s.err, "note: %s\n", n)
	}
	fmt.Fprintf(s.out, "wrote %s:\n\n%s", target, content)
	return nil
}
