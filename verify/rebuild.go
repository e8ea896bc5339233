package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
)

// Compared is one rebuilt artifact compared with the released one.
type Compared struct {
	Path   string `json:"path"`
	Status string `json:"status"` // ok, differs, missing, extra, skipped
	Detail string `json:"detail,omitempty"`
}

// RebuildOptions says how to rebuild a release from its config.
type RebuildOptions struct {
	Config     *config.Config
	Epoch      time.Time
	InitBinary []byte
	Version    string
	// Extra recomputes further artifacts from the rebuilt image folder and
	// returns them by release path (the CLI adds SBOMs and GPU references
	// here). Nil entries mean "cannot be recomputed": skipped, with Why.
	Extra func(ctx context.Context, imageDir string) (map[string][]byte, map[string]string, error)
	// Values recomputes values (measurements) rather than files, and
	// returns one comparison per value.
	Values func(ctx context.Context, imageDir string) ([]Compared, error)
}

// Rebuild rebuilds the image of a verified release in a temporary folder
// and compares every file bit for bit, then every extra artifact. It
// appends to rep and returns a Mismatch error naming the first difference.
func Rebuild(ctx context.Context, rep *Report, o RebuildOptions) error {
	tmp, err := os.MkdirTemp("", "cvmkit-rebuild-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	imageDir := filepath.Join(tmp, "image")
	if _, err := build.Build(ctx, o.Config, build.Options{OutDir: imageDir, Epoch: o.Epoch, InitBinary: o.InitBinary, Version: o.Version}); err != nil {
		rep.add("rebuild image", Failed, err.Error())
		return err
	}
	// Rebuilt image files are compared from disk, streamed (an image can
	// be gigabytes); the artifacts Extra derives are small and in memory.
	rebuilt := map[string]artifact{}
	entries, err := os.ReadDir(imageDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		rebuilt["image/"+e.Name()] = artifact{path: filepath.Join(imageDir, e.Name())}
	}
	// The released image folder must hold the same files.
	released, err := os.ReadDir(filepath.Join(rep.Dir, "image"))
	if err != nil {
		return err
	}
	for _, e := range released {
		if _, ok := rebuilt["image/"+e.Name()]; !ok {
			rep.Rebuild = append(rep.Rebuild, Compared{Path: "image/" + e.Name(), Status: "extra", Detail: "the rebuild does not produce it"})
		}
	}
	skipped := map[string]string{}
	if o.Extra != nil {
		more, why, err := o.Extra(ctx, imageDir)
		if err != nil {
			rep.add("rebuild", Failed, err.Error())
			return err
		}
		for k, v := range more {
			rebuilt[k] = artifact{data: v}
		}
		skipped = why
	}
	paths := make([]string, 0, len(rebuilt))
	for p := range rebuilt {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		size, diff, err := rebuilt[p].compare(ctx, filepath.Join(rep.Dir, filepath.FromSlash(p)))
		switch {
		case os.IsNotExist(err):
			rep.Rebuild = append(rep.Rebuild, Compared{Path: p, Status: "missing", Detail: "rebuilt, but not in the release"})
		case err != nil:
			return err
		case diff < 0:
			rep.Rebuild = append(rep.Rebuild, Compared{Path: p, Status: OK, Detail: fmt.Sprintf("%d bytes identical", size)})
		default:
			rep.Rebuild = append(rep.Rebuild, Compared{Path: p, Status: "differs", Detail: fmt.Sprintf("first difference at byte %d", diff)})
		}
	}
	var skippedPaths []string
	for p := range skipped {
		skippedPaths = append(skippedPaths, p)
	}
	sort.Strings(skippedPaths)
	for _, p := range skippedPaths {
		rep.Rebuild = append(rep.Rebuild, Compared{Path: p, Status: Skipped, Detail: skipped[p]})
	}
	values := 0
	valueRows := len(rep.Rebuild) // rows from here on are recomputed values
	if o.Values != nil {
		rows, err := o.Values(ctx, imageDir)
		if err != nil {
			rep.add("rebuild", Failed, err.Error())
			return err
		}
		rep.Rebuild = append(rep.Rebuild, rows...)
		for _, r := range rows {
			if r.Status == Skipped {
				skippedPaths = append(skippedPaths, r.Path)
			} else {
				values++
			}
		}
	}
	// The headline names the root cause: a rebuilt image file first (an
	// input changed), then a recomputed measurement, and only then the
	// files derived from them (policies, launch recipes, SBOMs), which
	// differ because of it.
	var first *Compared
	rank := func(c *Compared, i int) int {
		switch {
		case c.Path == "image/"+build.LockName:
			return 1 // the lock records the others' digests
		case strings.HasPrefix(c.Path, "image/"):
			return 0
		case i >= valueRows:
			return 2
		}
		return 3
	}
	best := 4
	for i := range rep.Rebuild {
		c := &rep.Rebuild[i]
		if c.Status == OK || c.Status == Skipped {
			continue
		}
		if r := rank(c, i); r < best {
			first, best = c, r
		}
	}
	if first != nil {
		rep.add("rebuild", Failed, first.Path+" "+first.Status+": "+first.Detail)
		return &outcome.MismatchError{Subject: filepath.Join(rep.Dir, first.Path), Register: "rebuilt bytes", Want: "the rebuilt artifact", Got: first.Status + " (" + first.Detail + ")"}
	}
	rep.add("rebuild", OK, fmt.Sprintf("%d artifacts rebuilt and identical, %d measurements recomputed and equal, %d skipped", len(paths), values, len(skippedPaths)))
	return nil
}

// artifact is a rebuilt file: on disk (path) or in memory (data).
type artifact struct {
	path string
	data []byte
}

// compare streams the released file at released against the artifact and
// returns the released size and the first differing byte (-1: identical;
// a length difference differs at the shorter length).
func (a artifact) compare(ctx context.Context, released string) (int64, int64, error) {
	f, err := os.Open(released)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var rebuilt io.Reader = bytes.NewReader(a.data)
	if a.path != "" {
		rf, err := os.Open(a.path)
		if err != nil {
			return 0, 0, err
		}
		defer rf.Close()
		rebuilt = rf
	}
	const chunk = 1 << 20
	x, y := make([]byte, chunk), make([]byte, chunk)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n, errx := io.ReadFull(f, x)
		m, erry := io.ReadFull(rebuilt, y)
		for i := range min(n, m) {
			if x[i] != y[i] {
				return 0, off + int64(i), nil
			}
		}
		if n != m {
			return 0, off + int64(min(n, m)), nil
		}
		off += int64(n)
		endx := errx == io.EOF || errx == io.ErrUnexpectedEOF
		endy := erry == io.EOF || erry == io.ErrUnexpectedEOF
		switch {
		case errx != nil && !endx:
			return 0, 0, errx
		case erry != nil && !endy:
			return 0, 0, erry
		case endx && endy:
			return off, -1, nil
		case endx || endy:
			return 0, off, nil
		}
	}
}

func jsonStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
