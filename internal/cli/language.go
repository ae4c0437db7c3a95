package cli

import "github.com/spf13/cobra"

// addLanguageCommands adds the commands about the build language itself:
// init (write a build.envd), reference (its functions, and editor stubs)
// and lock (pin the git modules it includes).
func addLanguageCommands(root *cobra.Command, s streams) {
	root.AddCommand(newInitCmd(s), newReferenceCmd(s), newLockCmd(s))
}
