package cli

import (
	"fmt"
	"os"

	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

func openInput(path, flag string) (*os.File, refvalues.File, error) { return fileio.Open(path, flag) }

func readInput(path, flag string, max int64) ([]byte, refvalues.File, error) {
	return fileio.Read(path, flag, max)
}

// newOutput checks that an output folder does not exist yet: cvmkit builds
// output folders whole and never merges into or replaces one.
func newOutput(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return outcome.UsageError(fmt.Errorf("output %q already exists", path), "choose a new output folder, or remove the old one first")
	}
	return nil
}
