package agentcmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"envd.dev/envd/internal/vsix"
)

// runVSCodeExtensions installs extensions at build time: envd's dev image
// runs `envd-agent vscode-extensions --dir DIR ID...` in a build step.
func runVSCodeExtensions(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("vscode-extensions", flag.ContinueOnError)
	fset.SetOutput(stderr)
	marketplace := fset.String("marketplace", vsix.DefaultMarketplace, "Open VSX-compatible marketplace URL")
	dir := fset.String("dir", "", "extensions directory (e.g. ~/.vscode-server/extensions)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fset.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: envd-agent vscode-extensions [--marketplace URL] --dir DIR PUBLISHER.NAME[@VERSION]...")
		return 2
	}
	tmp, err := os.MkdirTemp("", "vsix-")
	if err != nil {
		fmt.Fprintf(stderr, "envd-agent: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	for _, id := range fset.Args() {
		file, err := id, error(nil)
		if !strings.HasSuffix(strings.ToLower(id), ".vsix") { // a marketplace id, not a file
			var ref vsix.Ref
			if ref, err = vsix.ParseRef(id); err == nil {
				file, err = vsix.Download(context.Background(), *marketplace, ref, tmp)
			}
		}
		if err == nil {
			var dest string
			if dest, err = vsix.Install(file, *dir); err == nil {
				fmt.Fprintf(stdout, "installed %s into %s\n", id, dest)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "envd-agent: %v\n", err)
			return 1
		}
	}
	return 0
}
