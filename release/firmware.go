package release

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/firmware"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
)

// Firmware a config builds from a recipe (firmware[].build): release makes
// it when the file is missing, verify --rebuild makes it again.

// FirmwareOptions say how firmware the config builds is made.
type FirmwareOptions struct {
	// Rebuild builds from source even when the file is there and the
	// cache has it (verify --rebuild), and checks the bytes.
	Rebuild bool
	// Getenv finds the default cache folder; nil is os.LookupEnv.
	Getenv   func(string) (string, bool)
	Progress io.Writer
	// Build and Fetch are firmware.Build and firmware.AptFetch when nil.
	Build func(context.Context, firmware.Recipe, firmware.Options) (*firmware.Result, error)
	Fetch func(context.Context, firmware.Source, string) error
}

// orDefaults fills the progress stream and environment the caller's own
// options use, where o leaves them unset.
func (o FirmwareOptions) orDefaults(progress io.Writer, getenv func(string) (string, bool)) FirmwareOptions {
	if o.Progress == nil {
		o.Progress = progress
	}
	if o.Getenv == nil {
		o.Getenv = getenv
	}
	return o
}

// PreparedFirmware says how one built firmware was obtained.
type PreparedFirmware struct {
	Name   string `json:"name"`
	Recipe string `json:"recipe"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// How: "present" (the file was there with its digest), "cached"
	// (copied from the firmware cache), "built" (built from source now).
	How     string  `json:"how"`
	Seconds float64 `json:"seconds"`
}

// FirmwareRecipe is the recipe of a firmware entry that names one, checked
// against the entry: the config's digest must be the recipe's firmware.
func FirmwareRecipe(f config.Firmware) (firmware.Recipe, error) {
	if f.Build == nil {
		return firmware.Recipe{}, fmt.Errorf("firmware %q is not built from a recipe", f.Name)
	}
	r, err := firmware.Lookup(f.Build.Recipe)
	if err != nil {
		return r, err
	}
	if r.SHA256 != "" && string(f.Digest) != "sha256:"+r.SHA256 {
		return r, fmt.Errorf("firmware %q pins %s, but recipe %s builds sha256:%s", f.Name, f.Digest, r.Name, r.SHA256)
	}
	return r, nil
}

// PrepareFirmware makes each firmware of c that names a recipe: a file
// already at its path with the pinned digest is used as it is (unless
// o.Rebuild); otherwise the recipe is built, or taken from the firmware
// cache by its digest, and copied to the path with its provenance beside it.
// A build whose bytes differ from the pinned digest is an error.
func PrepareFirmware(ctx context.Context, c *config.Config, o FirmwareOptions) ([]PreparedFirmware, error) {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Build == nil {
		o.Build = firmware.Build
	}
	if o.Fetch == nil {
		o.Fetch = firmware.AptFetch
	}
	var out []PreparedFirmware
	for i, f := range c.Firmware {
		if f.Build == nil {
			continue
		}
		key := fmt.Sprintf("firmware[%d]", i)
		r, err := FirmwareRecipe(f)
		if err != nil {
			return nil, outcome.InputError(fmt.Errorf("%s: %w", key, err), "run 'cvmkit firmware list'; pin the digest the recipe builds")
		}
		path := c.Resolve(f.Path)
		p := PreparedFirmware{Name: f.Name, Recipe: r.Name, Path: string(f.Path), SHA256: strings.TrimPrefix(string(f.Digest), "sha256:")}
		if !o.Rebuild {
			if got, err := config.FileDigest(path); err == nil && got == f.Digest {
				p.How = "present"
				out = append(out, p)
				continue
			}
		}
		cache := firmware.DefaultCache(o.Getenv)
		if f.Build.Cache != "" {
			cache = c.Resolve(f.Build.Cache)
		}
		res, err := o.Build(ctx, r, firmware.Options{CacheDir: cache, Rebuild: o.Rebuild, Progress: o.Progress, Fetch: o.Fetch})
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", key, f.Name, err)
		}
		if want := p.SHA256; res.Provenance.SHA256 != want {
			return nil, outcome.InputError(fmt.Errorf("%s (%s): recipe %s built sha256:%s, the config pins sha256:%s", key, f.Name, r.Name, res.Provenance.SHA256, want),
				"the build is not reproduced here (docs/firmware.md); compare the toolchain with the recipe's")
		}
		p.How, p.Seconds = "built", res.Seconds
		if res.Cached {
			p.How = "cached"
		}
		if got, err := config.FileDigest(path); err != nil || got != f.Digest {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if err := atomicfile.Copy(path, res.Path, 0o644); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if err := atomicfile.Copy(path+".provenance.json", res.Path+".provenance.json", 0o644); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		fmt.Fprintf(o.Progress, "cvmkit: firmware %s: %s from recipe %s (sha256 %s)\n", f.Name, p.How, r.Name, p.SHA256)
		out = append(out, p)
	}
	return out, nil
}
