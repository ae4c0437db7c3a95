package cli

import "github.com/spf13/cobra"

// addLanguageCommands adds the commands about the build language itself
// (init, reference).
func addLanguageCommands(root *cobra.Command, s streams) {}
