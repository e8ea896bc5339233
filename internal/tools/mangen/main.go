// Command mangen writes cvmkit's man pages (section 1, one per command) into
// a folder, for the release archives (scripts/release-docs.sh). It is a
// separate program so that cvmkit itself does not link the Markdown-to-roff
// converter (its package initialisers cost every cvmkit start ~1.5 ms). The
// pages are dated SOURCE_DATE_EPOCH when set (cobra/doc reads it), so they
// are reproducible.
//
// Usage: go run ./internal/tools/mangen DIR
package main

import (
	"fmt"
	"os"

	"github.com/cvmkit/cvmkit/internal/cli"
	"github.com/spf13/cobra/doc"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mangen DIR")
		os.Exit(2)
	}
	if err := os.MkdirAll(os.Args[1], 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
	root := cli.CommandTree()
	root.DisableAutoGenTag = true
	h := &doc.GenManHeader{Title: "CVMKIT", Section: "1", Source: "cvmkit " + cli.Version().Version, Manual: "cvmkit manual"}
	if err := doc.GenManTree(root, h, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}
