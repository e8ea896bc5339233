// Command cvmkit-sbom catalogues a root filesystem with syft and writes its
// SBOMs (package sbom). 'cvmkit sbom' and 'cvmkit verify --rebuild' run it.
//
// It is a separate program because syft and its dependencies add about
// 20 ms of package initialisation to every process start, which cvmkit's
// measurement commands (targets of 15–20 ms per run) cannot afford.
//
// Usage:
//
//	cvmkit-sbom version
//	cvmkit-sbom --job-stdin   (the arguments below, as a JSON array on stdin)
//	cvmkit-sbom --name N [--version V] [--epoch UNIX-SECONDS] [--tool T]
//	    [--kernel FILE] [--initrd FILE] [--firmware NAME=FILE]… [--firmware-vars NAME=FILE]…
//	    -o DIR INPUT
//
// INPUT is an EROFS image (a file) or a root filesystem folder; DIR (new)
// receives sbom.spdx.json and sbom.cdx.json; stdout gets {"packages": n}.
// The kernel, initrd and firmware files are listed beside the root
// filesystem's packages (sbom.Part), under their base names.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/internal/version"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/sbom"
)

func main() { os.Exit(run()) }

// maxJob bounds the job read from standard input (a few paths and names).
const maxJob = 1 << 20

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// "cvmkit-sbom version" prints this program's version, with syft's, as
	// JSON ('cvmkit version --json' asks it).
	if len(os.Args) == 2 && os.Args[1] == "version" {
		_ = json.NewEncoder(os.Stdout).Encode(version.Get())
		return 0
	}
	// The licence scanner, the largest fixed cost, is built while the boot
	// chain is read and the image extracted.
	licenses := sbom.StartLicenseScanner(ctx)
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--job-stdin" {
		// Started ahead of its job ('cvmkit release' starts it before the
		// image is built, so that the scanner is ready when the image is):
		// the arguments come as a JSON array on standard input. No job
		// (the release failed first) means nothing to do.
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxJob+1))
		if err != nil || len(b) > maxJob {
			fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: reading the job from standard input: %v (at most %d bytes)\n", err, maxJob)
			return 2
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return 0
		}
		if err := json.Unmarshal(b, &args); err != nil {
			fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: the job on standard input is not a JSON array of arguments: %v\n", err)
			return 2
		}
	}
	return sbomMain(ctx, args, licenses)
}

func sbomMain(ctx context.Context, args []string, licenses *sbom.LicenseScanner) int {
	fs := flag.NewFlagSet("cvmkit-sbom", flag.ContinueOnError)
	o := sbom.Options{Licenses: licenses}
	var epoch int64
	var out string
	fs.StringVar(&o.Name, "name", "", "name of the system described")
	fs.StringVar(&o.Version, "version", "", "its version")
	fs.Int64Var(&epoch, "epoch", 0, "creation time, UNIX seconds (SOURCE_DATE_EPOCH)")
	fs.StringVar(&o.Tool, "tool", "", "cvmkit version, recorded as the creating tool")
	fs.StringVar(&out, "o", "", "new output folder")
	var kernel, initrd string
	var firmware, vars namedFiles
	fs.StringVar(&kernel, "kernel", "", "kernel image (bzImage or UKI) to list")
	fs.StringVar(&initrd, "initrd", "", "initrd to list, with the programs and modules inside it")
	fs.Var(&firmware, "firmware", "NAME=FILE: firmware image to list (repeatable)")
	fs.Var(&vars, "firmware-vars", "NAME=FILE: firmware variable store to list (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || out == "" || o.Name == "" {
		fmt.Fprintln(os.Stderr, "usage: cvmkit-sbom --name N [--version V] [--epoch S] [--tool T] [--kernel F] [--initrd F] [--firmware NAME=F]... [--firmware-vars NAME=F]... -o DIR INPUT")
		return 2
	}
	o.Epoch = time.Unix(epoch, 0).UTC()
	input := fs.Arg(0)
	fi, err := os.Stat(input)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: %v\n", err)
		return 3
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		fmt.Fprintf(os.Stderr, "cvmkit-sbom: error: %s: not a folder or a regular file (an EROFS image)\n", input)
		return 3
	}
	if o.Parts, err = bootParts(ctx, kernel, initrd, firmware, vars); err != nil {
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

// namedFiles is a repeatable NAME=FILE flag.
type namedFiles [][2]string

func (n *namedFiles) String() string { return fmt.Sprint(*n) }

func (n *namedFiles) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("%q: want NAME=FILE", v)
	}
	*n = append(*n, [2]string{name, file})
	return nil
}

// maxKernel bounds the kernel image read into memory (bzImages are tens of
// MiB; UKIs with a large initrd a few hundred), counted on the bytes read.
const maxKernel = 1 << 30

// bootParts describes the boot chain's files. The kernel's version comes
// from its setup header (measure/tdx.ReadKernelInfo, the reading that also
// decides RTMR2); a kernel whose version cannot be read is still listed by
// digest, with the reason.
func bootParts(ctx context.Context, kernel, initrd string, firmware, vars namedFiles) ([]sbom.Part, error) {
	var parts []sbom.Part
	if kernel != "" {
		data, err := fileio.ReadAll(kernel, "--kernel", maxKernel)
		if err != nil {
			return nil, err
		}
		info, err := tdx.ReadKernelInfo(data)
		if err != nil {
			p, _ := sbom.FilePart(sbom.Kernel, "linux", filepath.Base(kernel), bytes.NewReader(data))
			p.Description = "kernel image whose version cannot be read: " + err.Error()
			parts = append(parts, p)
		} else {
			parts = append(parts, sbom.KernelPart(filepath.Base(kernel), data, info.Version, info.UKI))
		}
	}
	if initrd != "" {
		f, _, err := fileio.Open(initrd, "--initrd")
		if err != nil {
			return nil, err
		}
		p, err := sbom.InitrdPart(ctx, filepath.Base(initrd), f)
		f.Close()
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	for _, l := range []struct {
		kind  sbom.Kind
		files namedFiles
		what  string
	}{{sbom.Firmware, firmware, "firmware image"}, {sbom.FirmwareVars, vars, "firmware variable store template"}} {
		for _, nf := range l.files {
			f, _, err := fileio.Open(nf[1], "--"+map[sbom.Kind]string{sbom.Firmware: "firmware", sbom.FirmwareVars: "firmware-vars"}[l.kind])
			if err != nil {
				return nil, err
			}
			p, err := sbom.FilePart(l.kind, nf[0], filepath.Base(nf[1]), f)
			f.Close()
			if err != nil {
				return nil, err
			}
			p.Description = l.what + " " + strconv.Quote(nf[0]) + ", identified by its digest"
			parts = append(parts, p)
		}
	}
	return parts, nil
}
