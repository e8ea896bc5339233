// Package initbin carries cmd/cvmkit-init, compiled for linux/amd64, inside
// the cvmkit binary, so that `cvmkit build` needs no Go toolchain and every
// copy of one cvmkit release puts the same init into the initrd.
//
// The binary is built by `make initbin` (and by `make build`, the release
// and the reproducible-build check) with
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' ./cmd/cvmkit-init
//
// into bin/, which git ignores. A cvmkit built with plain `go build` has
// none; `cvmkit build` then asks for --init-binary.
package initbin

import "embed"

// Name is the embedded file.
const Name = "bin/cvmkit-init-linux-amd64"

//go:embed all:bin
var files embed.FS

// Binary returns the embedded cvmkit-init, if this cvmkit carries one.
func Binary() ([]byte, bool) {
	b, err := files.ReadFile(Name)
	return b, err == nil && len(b) > 0
}
