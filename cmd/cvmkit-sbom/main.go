// Command cvmkit-sbom catalogues a root filesystem with syft and writes its
// SBOMs (package sbom). 'cvmkit sbom' and 'cvmkit verify --rebuild' run it.
//
// It is a separate program because syft and its dependencies add about
// 20 ms of package initialisation to every process start, which cvmkit's
// measurement commands (targets of 15–20 ms per run) cannot afford.
//
// Usage:
//
//	cvmkit-sbom --name N [--version V] [--epoch UNIX-SECONDS] [--tool T] -o DIR INPUT
//
// INPUT is an EROFS image (a file) or a root filesystem folder; DIR (new)
// receives sbom.spdx.json and sbom.cdx.json; stdout gets {"packages": n}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/sbom"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("cvmkit-sbom", flag.ContinueOnError)
	var o sbom.Options
	var epoch int64
	var out string
	fs.StringVar(&o.Name, "name", "", "name of the system described")
	fs.StringVar(&o.Version, "version", "", "its version")
	fs.Int64Var(&epoch, "epoch", 0, "creation time, UNIX seconds (SOURCE_DATE_EPOCH)")
	fs.StringVar(&o.Tool, "tool", "", "cvmkit version, recorded as the creating tool")
	fs.StringVar(&out, "o", "", "new output folder")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 || out == "" || o.Name == "" {
		fmt.Fprintln(os.Stderr, "usage: cvmkit-sbom --name N [--version V] [--epoch S] [--tool T] -o DIR INPUT")
		return 2
	}
	o.Epoch = time.Unix(epoch, 0).UTC()
	input := fs.Arg(0)
	fi, err := os.Stat(input)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: %v\n", err)
		return 3
	}
	var docs *sbom.Documents
	if fi.IsDir() {
		docs, err = sbom.FromDir(ctx, input, o)
	} else {
		var f *os.File
		if f, err = os.Open(input); err == nil {
			docs, err = sbom.FromEROFS(ctx, f, o)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: %s: %v\n", input, err)
		return 3
	}
	err = atomicfile.Dir(out, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "sbom.spdx.json"), docs.SPDX, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "sbom.cdx.json"), docs.CycloneDX, 0o644)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: %v\n", err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]int{"packages": docs.Packages})
	return 0
}
