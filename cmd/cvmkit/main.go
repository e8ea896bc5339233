// Command cvmkit builds, measures, encrypts and signs confidential AI
// releases. All of it lives in the library packages; this file only wires
// the process to internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cvmkit/cvmkit/internal/cli"
)

func main() { os.Exit(run()) }

func run() int {
	// SIGINT/SIGTERM cancel the context; commands stop, remove their
	// temporary files and exit with code 130.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
}
