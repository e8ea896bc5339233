package cli

import (
	"fmt"
	"os"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd writes a man page per command; hidden, for packaging (the release
// archives ship them, see scripts/release-docs.sh). The pages' date is
// SOURCE_DATE_EPOCH when set (cobra/doc reads it), so they are reproducible.
func (a *app) manCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write man pages (section 1) for every command into DIR",
		Long: `Write one man page per command (cvmkit.1, cvmkit-release.1, …) into DIR, for
packaging. The pages are dated SOURCE_DATE_EPOCH when it is set, so that they
are reproducible. Hidden: release archives ship the pages under man/man1.`,
		Example: `  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) cvmkit man man1/
  man -l man1/cvmkit-release.1`,
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return outcome.InputError(fmt.Errorf("%q: %w", args[0], unwrapPath(err)))
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenManTree(root, &doc.GenManHeader{Title: "CVMKIT", Section: "1", Source: "cvmkit " + Version().Version, Manual: "cvmkit manual"}, args[0])
		},
	}
}
