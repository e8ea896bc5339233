package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at release time with
// -ldflags "-X github.com/cvmkit/cvmkit/internal/cli.version=v1.2.3".
var version = ""

// VersionInfo is what `cvmkit version --json` prints.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// Version returns cvmkit's version: the release tag set by the linker, or
// the module version `go install …@vX` records, or "devel".
func Version() VersionInfo {
	v := VersionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

func versionString() string {
	v := Version()
	s := "cvmkit " + v.Version
	if v.Commit != "" {
		s += " (" + v.Commit
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cvmkit's version",
		Long: `Print cvmkit's version, the commit it was built from (when the build recorded
it), the Go version and the platform. Release builds carry their tag; 'go
install github.com/cvmkit/cvmkit/cmd/cvmkit@vX' builds carry the module version.`,
		Example: `  cvmkit version
  cvmkit version --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.emit(Version(), func(w io.Writer) { fmt.Fprintln(w, versionString()) })
		},
	}
}
