package cli

import (
	"fmt"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

func (a *app) completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print the completion script for a shell on stdout. Load it in the current
shell, or install it where your shell looks for completions.

This command has no JSON form: its output is a shell script.`,
		Example: `  source <(cvmkit completion bash)
  cvmkit completion zsh > "${fpath[1]}/_cvmkit"
  cvmkit completion fish > ~/.config/fish/completions/cvmkit.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.json {
				return outcome.UsageError(fmt.Errorf("completion has no JSON output"), "drop --json")
			}
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(a.stdout)
			}
			return outcome.UsageError(fmt.Errorf("unknown shell %q", args[0]), "choose bash, zsh, fish or powershell")
		},
	}
}
