// Package sbom makes the SBOMs of a guest image's root filesystem with syft
// (as a library) in SPDX 2.3 JSON and CycloneDX 1.6 JSON, normalised so that
// the same root filesystem always gives the same bytes.
//
// syft stamps each document with the current time, a random namespace or
// serial number and, for CycloneDX, a digest of the scanned path. Those are
// replaced: the time by SOURCE_DATE_EPOCH, the namespace and serial by
// values derived from the document's own content, the path by a constant.
// The document is then re-encoded with sorted keys. The content remains a
// function of the syft version, which go.mod pins.
package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/erofs/go-erofs"
	"github.com/google/uuid"

	// syft's RPM cataloger needs a SQL driver for newer RPM databases.
	_ "modernc.org/sqlite"
)

// Namespace is the base of the SPDX document namespace cvmkit writes.
const Namespace = "https://cvmkit.dev/spdx/"

// Options says how to describe the root filesystem.
type Options struct {
	// Name and Version name the scanned system in the documents (the
	// release name and version).
	Name, Version string
	// Epoch is the documents' creation time (SOURCE_DATE_EPOCH).
	Epoch time.Time
	// Tool is the creating tool's version, recorded in the documents.
	Tool string
	// Licenses, when set, is the licence scanner started by
	// [StartLicenseScanner]; otherwise syft builds one when cataloguing.
	Licenses *LicenseScanner
	// Parts are the boot chain's pieces outside the root filesystem (kernel,
	// initrd and its contents, firmware), listed beside its packages.
	Parts []Part
}

// Documents are the two SBOMs of one root filesystem.
type Documents struct {
	SPDX      []byte
	CycloneDX []byte
	// Packages is the number of packages the SPDX document lists: those
	// catalogued in the root filesystem and the image's boot parts.
	Packages int
}

// LicenseScanner is syft's licence scanner built on another goroutine.
// Building it (google/licensecheck compiles its licence texts into one
// matcher) is about a CPU-second whatever the image, most of an SBOM's cost
// on a small root filesystem, so callers start it first and let it overlap
// with reading the image and the boot chain.
type LicenseScanner struct {
	done chan struct{}
	ctx  context.Context
	err  error
}

// StartLicenseScanner starts building the scanner with syft's default
// licence settings (the ones [FromDir] catalogues with). ctx must be the
// context later given to FromDir or FromEROFS, or one it derives from.
func StartLicenseScanner(ctx context.Context) *LicenseScanner {
	l := &LicenseScanner{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.ctx, l.err = syft.SetContextLicenseScanner(ctx, syft.DefaultCreateSBOMConfig().Licenses)
	}()
	return l
}

// wait returns ctx carrying the scanner, once it is built; syft's
// CreateSBOM then uses it instead of building its own.
func (l *LicenseScanner) wait(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, fmt.Errorf("licence scanner: %w", l.err)
	}
	return l.ctx, nil
}

// FromDir catalogues the root filesystem in dir.
func FromDir(ctx context.Context, dir string, o Options) (*Documents, error) {
	if o.Name == "" {
		return nil, errors.New("a name for the root filesystem is required")
	}
	if o.Licenses != nil {
		var err error
		if ctx, err = o.Licenses.wait(ctx); err != nil {
			return nil, err
		}
	}
	src, err := directorysource.New(directorysource.Config{Path: dir, Base: dir, Alias: source.Alias{Name: o.Name, Version: o.Version}})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	defer src.Close()
	cfg := syft.DefaultCreateSBOMConfig().WithTool("cvmkit", o.Tool)
	s, err := syft.CreateSBOM(ctx, src, cfg)
	if err != nil {
		return nil, fmt.Errorf("cataloguing %s: %w", dir, err)
	}
	spdxEnc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.EncoderConfig{Version: "2.3"})
	if err != nil {
		return nil, err
	}
	cdxEnc, err := cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.EncoderConfig{Version: "1.6"})
	if err != nil {
		return nil, err
	}
	rawSPDX, err := format.Encode(*s, spdxEnc)
	if err != nil {
		return nil, err
	}
	rawCDX, err := format.Encode(*s, cdxEnc)
	if err != nil {
		return nil, err
	}
	d := &Documents{}
	if d.SPDX, err = normaliseSPDX(rawSPDX, o); err != nil {
		return nil, err
	}
	// The count the summary prints is the document's, not the
	// catalogue's (which leaves out the boot parts beside it).
	var doc struct {
		Packages []json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(d.SPDX, &doc); err != nil {
		return nil, err
	}
	d.Packages = len(doc.Packages)
	if d.CycloneDX, err = normaliseCycloneDX(rawCDX, o); err != nil {
		return nil, err
	}
	return d, nil
}

// FromEROFS extracts an EROFS root filesystem image (rootfs.img, with or
// without an appended dm-verity tree) into a temporary folder and
// catalogues it.
func FromEROFS(ctx context.Context, image io.ReaderAt, o Options) (*Documents, error) {
	fsys, err := erofs.Open(image)
	if err != nil {
		return nil, fmt.Errorf("not an EROFS image: %w", err)
	}
	// A locked private folder: one left by a killed run is removed by the
	// next one.
	tmp, err := atomicfile.NewTempDir("cvmkit-sbom-")
	if err != nil {
		return nil, err
	}
	defer tmp.Remove()
	root := filepath.Join(tmp.Path, "rootfs")
	if err := extract(ctx, fsys, root); err != nil {
		return nil, err
	}
	return FromDir(ctx, root, o)
}

// extract copies directories, regular files and symbolic links (the things
// syft reads) out of fsys. Devices, FIFOs and sockets are left out; modes
// are kept but made readable, since only cataloguing reads the copy.
func extract(ctx context.Context, fsys fs.FS, dst string) error {
	rl, _ := fsys.(interface {
		ReadLink(string) (string, error)
	})
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		switch t := d.Type(); {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case t&fs.ModeSymlink != 0:
			if rl == nil {
				return nil
			}
			link, err := rl.ReadLink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case t.IsRegular():
			in, err := fsys.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			fi, err := d.Info()
			if err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm()|0o400)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return fmt.Errorf("extracting %s: %w", path.Clean(p), err)
			}
			return out.Close()
		}
		return nil
	})
}

// toolVersion is cvmkit's version as the documents record it.
func toolVersion(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

// syftVersion is the version of syft linked in (go.mod pins it), from the
// binary's build information ("unknown" in a test binary, which records no
// dependencies; the cvmkit-sbom scripts check the real one).
func syftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anchore/syft" {
				return strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return "unknown"
}

// decode reads JSON into a generic tree; numbers stay exact.
func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// encode writes JSON with sorted keys (encoding/json sorts map keys),
// indented, without HTML escaping.
func encode(m map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func contentHash(m map[string]any) (string, error) {
	b, err := encode(m)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// normaliseSPDX pins creationInfo.created and derives documentNamespace from
// the rest of the document (SPDX 2.3 §6.5 requires it unique per document;
// a content hash is).
func normaliseSPDX(raw []byte, o Options) ([]byte, error) {
	m, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("syft's SPDX output: %w", err)
	}
	ci, ok := m["creationInfo"].(map[string]any)
	if !ok {
		return nil, errors.New("syft's SPDX document has no creationInfo")
	}
	ci["created"] = o.Epoch.UTC().Format(time.RFC3339)
	// SPDX 2.3 §6.8: the creators are the tools that made the document
	// (syft's default also names its vendor as an organisation, which did
	// not create this document).
	ci["creators"] = []any{"Tool: cvmkit-" + toolVersion(o.Tool), "Tool: syft-" + syftVersion()}
	addSPDXParts(m, o.Parts)
	delete(m, "documentNamespace")
	h, err := contentHash(m)
	if err != nil {
		return nil, err
	}
	m["documentNamespace"] = Namespace + o.Name + "-" + h[:16]
	return encode(m)
}

// normaliseCycloneDX pins metadata.timestamp, replaces the path-derived
// bom-ref of the scanned component and derives serialNumber (a UUID URN,
// CycloneDX 1.6) from the rest of the document.
func normaliseCycloneDX(raw []byte, o Options) ([]byte, error) {
	m, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("syft's CycloneDX output: %w", err)
	}
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		return nil, errors.New("syft's CycloneDX document has no metadata")
	}
	md["timestamp"] = o.Epoch.UTC().Format(time.RFC3339)
	if c, ok := md["component"].(map[string]any); ok {
		c["bom-ref"] = "rootfs"
	}
	md["tools"] = map[string]any{"components": []any{
		map[string]any{"type": "application", "name": "cvmkit", "version": toolVersion(o.Tool)},
		map[string]any{"type": "application", "author": "anchore", "name": "syft", "version": syftVersion()},
	}}
	addCycloneDXParts(m, o.Parts)
	delete(m, "serialNumber")
	h, err := contentHash(m)
	if err != nil {
		return nil, err
	}
	m["serialNumber"] = uuid.NewSHA1(uuid.NameSpaceURL, []byte(Namespace+o.Name+"/"+h)).URN()
	return encode(m)
}
