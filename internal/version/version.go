// Package version says which cvmkit made an output: the release tag or
// `git describe`, the commit, the Go toolchain and the versions of the
// dependencies whose code decides output bytes. Release builds and
// `make build` set the tag and commit with
//
//	-ldflags "-X github.com/cvmkit/cvmkit/internal/version.version=v1.2.3
//	          -X github.com/cvmkit/cvmkit/internal/version.commit=<sha>"
//
// taken from the commit, never from the clock, so that the binary stays
// reproducible; `go install …@vX` builds carry the module version, and a
// build from a git checkout the revision Go records.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker (see the package comment).
var version, commit string

// Info is what `cvmkit version --json` prints and what releases record.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
	// Deps are the versions of the linked modules whose code decides
	// output bytes (image layout, compression, measurements, encryption,
	// signatures).
	Deps map[string]string `json:"deps,omitempty"`
}

// OutputModules are the dependencies whose version changes what cvmkit
// writes, byte for byte.
var OutputModules = []string{
	"github.com/erofs/go-erofs",
	"github.com/klauspost/compress",
	"github.com/google/go-containerregistry",
	"github.com/google/go-sev-guest",
	"github.com/google/go-tdx-guest",
	"github.com/tink-crypto/tink-go/v2",
	"github.com/sigstore/sigstore-go",
	"github.com/sigstore/cosign/v2",
	"github.com/u-root/u-root",
	"github.com/anchore/syft",
}

// Get returns the version of the running binary.
func Get() Info {
	v := Info{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
		want := map[string]bool{}
		for _, m := range OutputModules {
			want[m] = true
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if want[d.Path] {
				if v.Deps == nil {
					v.Deps = map[string]string{}
				}
				v.Deps[d.Path] = d.Version
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// String is the one-line form: "cvmkit v1.2.3 (commit) go1.26 linux/amd64".
func (v Info) String() string {
	s := v.Version
	if v.Commit != "" {
		s += " (" + v.Commit
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}
