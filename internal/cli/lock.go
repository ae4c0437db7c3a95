package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/lang"
)

// lockOptions are the raw flags of `envd lock`.
type lockOptions struct {
	path   string
	file   string
	update bool
}

func newLockCmd(s streams) *cobra.Command {
	o := &lockOptions{}
	c := &cobra.Command{
		Use:   "lock",
		Short: "Pin the git modules build.envd includes in envd.lock, without building",
		Long: "Run build.envd as envd build would, so that every include(git=...) is fetched and pinned by commit in\n" +
			"envd.lock beside it, and print the lock. --update moves every pin to the current commit of its ref.",
		Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return runLock(s, o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.path, "path", "p", ".", "build directory")
	f.StringVarP(&o.file, "file", "f", "build.envd", "build file and function, FILE[:FUNC] (relative to the build directory)")
	f.BoolVar(&o.update, "update", false, "move every pin to the current commit of its ref (like envd build --update-modules)")
	return c
}

func runLock(s streams, o *lockOptions) error {
	file, fn := o.file, lang.DefaultFunc
	if i := strings.LastIndex(file, ":"); i > 0 {
		file, fn = file[:i], file[i+1:]
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(o.path, file)
	}
	if _, err := (lang.Loader{Print: s.err, UpdateModules: o.update}).Load(file, fn); err != nil {
		return err
	}
	lock := filepath.Join(filepath.Dir(file), lang.LockFile)
	data, err := os.ReadFile(lock)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.err, "%s includes no git modules: nothing to pin\n", file)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(s.err, "%s:\n", lock)
	_, err = s.out.Write(data)
	return err
}
