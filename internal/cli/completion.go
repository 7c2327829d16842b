package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCommand is an explicit completion verb (cobra's default one
// is disabled in newRootCommand so its help text and shells are ours).
func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Example:   "  source <(berth completion bash)\n  berth completion zsh > \"${fpath[1]}/_berth\"\n  berth completion fish > ~/.config/fish/completions/berth.fish",
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("berth cannot complete for shell %q; run berth completion bash, zsh or fish", args[0])
		},
	}
}
