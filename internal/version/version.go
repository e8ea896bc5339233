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
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
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

// Stamp is what outputs record as the cvmkit that made them (the image
// lock, the SBOMs' creator), the same for every way one commit is built —
// make build (git describe), goreleaser and the container image (a
// snapshot version), go install (a pseudo-version) — so that a rebuild by
// any of them gives the same bytes: the release tag (v1.2.3) for a tagged
// release, else "commit-" and the commit's first 12 hex digits; "-dirty"
// when the tree had changes; "devel" when neither is known.
func (v Info) Stamp() string {
	if semverTag.MatchString(v.Version) {
		return "v" + strings.TrimPrefix(v.Version, "v")
	}
	c := v.Commit
	if c == "" {
		// go install …@commit: v0.0.0-20261207044806-35c4bd2a1b2c.
		if m := pseudoVersion.FindStringSubmatch(v.Version); m != nil {
			c = m[1]
		}
	}
	if !commitHex.MatchString(c) {
		return "devel"
	}
	s := "commit-" + c[:12]
	if v.Modified || strings.HasSuffix(v.Version, "-dirty") {
		s += "-dirty"
	}
	return s
}

var (
	semverTag     = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)
	pseudoVersion = regexp.MustCompile(`-(?:0\.)?[0-9]{14}-([0-9a-f]{12})(?:\+incompatible)?$`)
	commitHex     = regexp.MustCompile(`^[0-9a-f]{12,40}$`)
)
