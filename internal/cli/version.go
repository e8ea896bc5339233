package cli

import (
	"encoding/json"
	"fmt"

	"github.com/cvmkit/cvmkit/internal/version"
	"github.com/spf13/cobra"
)

// VersionInfo is what `cvmkit version --json` prints.
type VersionInfo = version.Info

// Version returns cvmkit's version (see internal/version).
func Version() VersionInfo { return version.Get() }

func versionString() string { return "cvmkit " + Version().String() }

// versionResult adds what the helper programs report: syft's version is
// in cvmkit-sbom, not in cvmkit.
type versionResult struct {
	VersionInfo
	Helpers map[string]*VersionInfo `json:"helpers"`
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cvmkit's version",
		Long: `Print cvmkit's version, the commit it was built from, the Go version and the
platform. Release builds and 'make build' carry the tag (or git describe) and
commit; 'go install github.com/cvmkit/cvmkit/cmd/cvmkit@vX' builds carry the
module version.

--json also lists the versions of the dependencies whose code decides output
bytes (go-erofs, klauspost/compress, go-sev-guest, …) and asks the helper
programs cvmkit-sbom (with syft's version) and cvmkit-sigstore for theirs
(null when not installed): a release made by another combination may differ
byte for byte.`,
		Example: `  cvmkit version
  cvmkit version --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !a.json {
				// One line, no helper started: this is also cvmkit's
				// start-up benchmark (bench/).
				fmt.Fprintln(a.stdout, versionString())
				return nil
			}
			res := versionResult{VersionInfo: Version(), Helpers: map[string]*VersionInfo{}}
			for _, h := range []struct{ name, env string }{{"cvmkit-sbom", "CVMKIT_SBOM"}, {"cvmkit-sigstore", "CVMKIT_SIGSTORE"}} {
				res.Helpers[h.name] = a.helperVersion(cmd, h.name, h.env)
			}
			return a.emit(res, nil)
		},
	}
}

// helperVersion asks a helper program for its version; nil when it is not
// installed or does not answer.
func (a *app) helperVersion(cmd *cobra.Command, name, env string) *VersionInfo {
	p, err := a.helper(name, env)
	if err != nil {
		return nil
	}
	out, err := a.runHelper(cmd.Context(), p, "version")
	if err != nil {
		return nil
	}
	var v VersionInfo
	if json.Unmarshal(out, &v) != nil {
		return nil
	}
	return &v
}
