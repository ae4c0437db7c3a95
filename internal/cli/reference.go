package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/lang"
)

// referenceOptions are the raw flags of `envd reference`.
type referenceOptions struct {
	format string
}

func newReferenceCmd(s streams) *cobra.Command {
	o := &referenceOptions{}
	c := &cobra.Command{
		Use:   "reference [MODULE | FUNCTION]",
		Short: "Print the build.envd reference, or Python type stubs for editors (--format pyi)",
		Long: "Print every function build files can call, with its parameters and defaults (Markdown), or only those of\n" +
			"a module (envd reference install) or one function (envd reference install.python_packages).\n" +
			"--format pyi prints type stubs: save them as typings/__builtins__.pyi for pyright and Pylance.",
		Args: func(c *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(c, args); err != nil {
				return usageError{err}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			return runReference(s, o, args)
		},
	}
	c.Flags().StringVar(&o.format, "format", "md", "md (the reference, Markdown) or pyi (type stubs for editors)")
	return c
}

func runReference(s streams, o *referenceOptions, args []string) error {
	switch {
	case o.format == "pyi" && len(args) == 0:
		fmt.Fprint(s.out, lang.Stubs())
		return nil
	case o.format == "pyi":
		return usageError{fmt.Errorf("--format pyi prints the stubs of every function; leave out %s", args[0])}
	case o.format != "md":
		return usageError{fmt.Errorf("--format %q: use md or pyi", o.format)}
	case len(args) == 0:
		fmt.Fprint(s.out, lang.Reference())
		return nil
	}
	var found []lang.Builtin
	var names []string
	for _, b := range lang.Builtins() {
		// A module, a namespace in one (data.path) or one function.
		if b.Name == args[0] || b.Module == args[0] || strings.HasPrefix(b.Name, args[0]+".") {
			found = append(found, b)
		}
		names = append(names, b.Name)
	}
	if len(found) == 0 {
		return usageError{fmt.Errorf("no function or module %q%s", args[0], suggest(args[0], names))}
	}
	for _, b := range found {
		fmt.Fprint(s.out, b.Markdown())
	}
	return nil
}

// suggest is a "did you mean" for a function or module name.
func suggest(query string, names []string) string {
	for _, m := range lang.Modules() {
		names = append(names, m.Name)
	}
	if near := lang.Nearest(query, names); near != "" {
		return fmt.Sprintf("; did you mean %q?", near)
	}
	return "; run envd reference for the list"
}
