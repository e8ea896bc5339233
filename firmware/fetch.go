package firmware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/outcome"
)

// AptFetch downloads a source tarball with apt's own downloader, which
// uses apt's configured archive, proxy and authentication, and checks the
// SHA-256 as it goes. It is the Fetch of Options for Debian hosts.
func AptFetch(ctx context.Context, s Source, dst string) error {
	helper := "/usr/lib/apt/apt-helper"
	if _, err := os.Stat(helper); err != nil {
		return outcome.InputError(errors.New("apt-helper is not installed: firmware sources are fetched with apt (Debian's apt package)"),
			"download "+s.URL+" into the cache folder yourself")
	}
	c := exec.CommandContext(ctx, helper, "download-file", s.URL, dst, "SHA256:"+s.SHA256)
	b, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// DefaultCache is where built firmware and sources are kept when no cache
// folder is given: $XDG_CACHE_HOME/cvmkit/firmware, else
// ~/.cache/cvmkit/firmware. getenv is os.LookupEnv or a stand-in.
func DefaultCache(getenv func(string) (string, bool)) string {
	if d, ok := getenv("XDG_CACHE_HOME"); ok && d != "" {
		return filepath.Join(d, "cvmkit", "firmware")
	}
	if h, ok := getenv("HOME"); ok && h != "" {
		return filepath.Join(h, ".cache", "cvmkit", "firmware")
	}
	return filepath.Join(os.TempDir(), "cvmkit-firmware-cache")
}
