// Package tree flattens a guest root filesystem from its sources (OCI
// image layers as tar streams, in order, and local folders) into one
// normalised tree, applying OCI whiteouts, and refusing what a hostile or
// broken layer could use to escape or exhaust the build: paths with "..",
// symlinks that leave the root or that later entries would traverse,
// hardlinks to missing or non-regular targets, device nodes, duplicate
// entries, invalid names and size bombs.
//
// Nothing is ever written to the host outside the spool folder the caller
// gives: entries live in memory, layer file contents in spool files, so no
// entry can redirect a write through a symlink. Files of local folders are
// not copied: they are read in place when the image is written, opened
// without following symlinks, and checked unchanged when hashed.
//
// Reference: OCI image spec, image-layout and layer.md ("Whiteouts",
// "Opaque Whiteout").
package tree

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/cvmkit/cvmkit/build/rootfs"
)

// Limits bound what the sources may contain.
type Limits struct {
	MaxFileSize  int64
	MaxTotalSize int64
	MaxEntries   int
	// AllowDevices keeps character and block device nodes (refused by
	// default: a root filesystem for a confidential VM has no use for them,
	// devtmpfs provides /dev).
	AllowDevices bool
}

// entry is one node of the tree; spool is the file holding its contents,
// or host the local file read in place.
type entry struct {
	node  rootfs.Node
	spool string
	host  *hostFile
}

// Tree is the flattened filesystem.
type Tree struct {
	limits  Limits
	spool   string
	log     *slog.Logger
	entries map[string]*entry
	total   int64
	nspool  int
}

// New starts an empty tree whose file contents are spooled under spoolDir.
func New(limits Limits, spoolDir string, log *slog.Logger) *Tree {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tree{limits: limits, spool: spoolDir, log: log, entries: map[string]*entry{}}
}

// SourceError names the source and entry a refusal is about.
type SourceError struct {
	Source, Entry string
	Err           error
}

func (e *SourceError) Error() string { return fmt.Sprintf("%s: %q: %v", e.Source, e.Entry, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// Errors a caller can branch on (wrapped in *SourceError).
var (
	ErrUnsafePath = errors.New("unsafe path")
	ErrLimit      = errors.New("limit exceeded")
	ErrDevice     = errors.New("device node refused")
	ErrDuplicate  = errors.New("duplicate entry")
	ErrLink       = errors.New("bad link")
)

// cleanName checks and normalises an entry name: "./" and a leading "/"
// are dropped (logged), ".." anywhere is refused.
func (t *Tree) cleanName(src, name string) (string, error) {
	orig := name
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: the name is not valid UTF-8 or holds NUL", ErrUnsafePath)
	}
	if len(name) > 4096 {
		return "", fmt.Errorf("%w: the name is longer than 4096 bytes", ErrUnsafePath)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: the name contains \"..\"", ErrUnsafePath)
		}
		if len(c) > 255 {
			return "", fmt.Errorf("%w: a component is longer than 255 bytes", ErrUnsafePath)
		}
	}
	if strings.HasPrefix(name, "/") {
		t.log.Warn("absolute path in a layer made relative", "source", src, "entry", orig)
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return ".", nil
	}
	return name, nil
}

// checkParents refuses an entry whose parent path crosses a symlink or a
// non-folder already in the tree (a later layer writing "etc/passwd"
// through a symlink "etc" → "/tmp").
func (t *Tree) checkParents(name string) error {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if e, ok := t.entries[d]; ok && !e.node.Mode.IsDir() {
			if e.node.Mode&fs.ModeSymlink != 0 {
				return fmt.Errorf("%w: its parent %q is a symlink", ErrUnsafePath, d)
			}
			return fmt.Errorf("%w: its parent %q is not a folder", ErrUnsafePath, d)
		}
	}
	return nil
}

// ensureParents creates missing parent folders (0755, root-owned), as
// container runtimes do for layers that omit them.
func (t *Tree) ensureParents(name string) {
	var missing []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, ok := t.entries[d]; ok {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		t.entries[missing[i]] = &entry{node: rootfs.Node{Path: missing[i], Mode: fs.ModeDir | 0o755}}
	}
}

// remove deletes name and everything under it.
func (t *Tree) remove(name string) {
	delete(t.entries, name)
	prefix := name + "/"
	for p := range t.entries {
		if strings.HasPrefix(p, prefix) {
			delete(t.entries, p)
		}
	}
}

// escapes reports whether a relative symlink target leaves the root when
// resolved from the link's folder.
func escapes(linkPath, target string) bool {
	if strings.HasPrefix(target, "/") {
		return false // resolved against the guest's root
	}
	depth := strings.Count(linkPath, "/")
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		case ".", "":
		default:
			depth++
		}
	}
	return false
}

// tarMode converts a tar header's mode to a Go file mode with the special
// bits.
func tarMode(h *tar.Header) fs.FileMode {
	m := fs.FileMode(h.Mode & 0o777)
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// ApplyTar applies one layer (an uncompressed tar stream) on top of the
// tree, named src in errors and logs.
func (t *Tree) ApplyTar(src string, r io.Reader) error {
	tr := tar.NewReader(r)
	inLayer := map[string]bool{}
	var opaque []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading the layer: %w", src, err)
		}
		if err := t.applyEntry(src, tr, h, inLayer, &opaque); err != nil {
			var se *SourceError
			if errors.As(err, &se) {
				return err
			}
			return &SourceError{Source: src, Entry: h.Name, Err: err}
		}
	}
	return nil
}

func (t *Tree) applyEntry(src string, tr *tar.Reader, h *tar.Header, inLayer map[string]bool, opaque *[]string) error {
	name, err := t.cleanName(src, h.Name)
	if err != nil {
		return err
	}
	base, dir := path.Base(name), path.Dir(name)
	// Whiteouts (OCI layer.md).
	if base == ".wh..wh..opq" {
		// Keep what this layer itself added to dir; drop the lower layers'.
		for p := range t.entries {
			if strings.HasPrefix(p, dir+"/") || dir == "." && p != "." {
				if !inLayer[p] {
					delete(t.entries, p)
				}
			}
		}
		return nil
	}
	if strings.HasPrefix(base, ".wh.") {
		target := path.Join(dir, strings.TrimPrefix(base, ".wh."))
		t.remove(target)
		return nil
	}
	if inLayer[name] {
		return fmt.Errorf("%w: the name appears twice in the layer", ErrDuplicate)
	}
	if err := t.checkParents(name); err != nil {
		return err
	}
	n := rootfs.Node{Path: name, Mode: tarMode(h), UID: uint32(h.Uid), GID: uint32(h.Gid)}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if n.Xattrs == nil {
				n.Xattrs = map[string]string{}
			}
			n.Xattrs[x] = v
		}
	}
	var spool string
	var host *hostFile
	switch h.Typeflag {
	case tar.TypeDir:
		n.Mode |= fs.ModeDir
		if name == "." {
			n.Path = "."
		}
	case tar.TypeReg: // archive/tar reports old "\x00" entries as TypeReg too
		if h.Size < 0 || h.Size > t.limits.MaxFileSize {
			return fmt.Errorf("%w: %d bytes, more than the %d-byte file limit (image.rootfs.limits.maxFileSize)", ErrLimit, h.Size, t.limits.MaxFileSize)
		}
		if t.total+h.Size > t.limits.MaxTotalSize {
			return fmt.Errorf("%w: the tree would exceed %d bytes (image.rootfs.limits.maxTotalSize)", ErrLimit, t.limits.MaxTotalSize)
		}
		if spool, err = t.spoolFile(tr, h.Size); err != nil {
			return err
		}
		t.total += h.Size
		n.Size = h.Size
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.ContainsRune(h.Linkname, 0) {
			return fmt.Errorf("%w: empty symlink target", ErrLink)
		}
		if escapes(name, h.Linkname) {
			return fmt.Errorf("%w: symlink to %q leaves the root filesystem", ErrLink, h.Linkname)
		}
		n.Mode |= fs.ModeSymlink
		n.Target = h.Linkname
	case tar.TypeLink:
		target, err := t.cleanName(src, h.Linkname)
		if err != nil {
			return fmt.Errorf("%w: hardlink target %q: %v", ErrLink, h.Linkname, err)
		}
		te, ok := t.entries[target]
		if !ok || !te.node.Mode.IsRegular() {
			return fmt.Errorf("%w: hardlink to %q, which is not a regular file earlier in the layers", ErrLink, h.Linkname)
		}
		// EROFS has no hardlinks in go-erofs: the link becomes a copy sharing
		// the spooled contents.
		n.Mode, n.UID, n.GID, n.Xattrs = te.node.Mode, te.node.UID, te.node.GID, te.node.Xattrs
		n.Size, spool, host = te.node.Size, te.spool, te.host
		t.total += n.Size
		if t.total > t.limits.MaxTotalSize {
			return fmt.Errorf("%w: the tree would exceed %d bytes (image.rootfs.limits.maxTotalSize)", ErrLimit, t.limits.MaxTotalSize)
		}
	case tar.TypeChar, tar.TypeBlock:
		if !t.limits.AllowDevices {
			return fmt.Errorf("%w: device nodes are not built into the image (devtmpfs provides /dev)", ErrDevice)
		}
		n.Mode |= fs.ModeDevice
		if h.Typeflag == tar.TypeChar {
			n.Mode |= fs.ModeCharDevice
		}
		n.Major, n.Minor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		n.Mode |= fs.ModeNamedPipe
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("%w: unsupported tar entry type %q", ErrUnsafePath, h.Typeflag)
	}
	// An entry replaces what lower layers had at its path; a folder over a
	// folder keeps the children.
	if old, ok := t.entries[name]; ok && !(old.node.Mode.IsDir() && n.Mode.IsDir()) {
		t.remove(name)
	}
	if len(t.entries) >= t.limits.MaxEntries {
		return fmt.Errorf("%w: more than %d entries (image.rootfs.limits.maxEntries)", ErrLimit, t.limits.MaxEntries)
	}
	t.ensureParents(name)
	t.entries[name] = &entry{node: n, spool: spool, host: host}
	inLayer[name] = true
	return nil
}

// spoolFile copies size bytes of contents into a new spool file.
func (t *Tree) spoolFile(r io.Reader, size int64) (string, error) {
	t.nspool++
	p := filepath.Join(t.spool, fmt.Sprintf("%08d", t.nspool))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("the layer ends inside the file (%d of %d bytes)", n, size)
	}
	return p, err
}

// Nodes returns the tree sorted by path, ready for rootfs.WriteEROFS.
func (t *Tree) Nodes() []rootfs.Node {
	out := make([]rootfs.Node, 0, len(t.entries))
	for _, e := range t.entries {
		n := e.node
		switch {
		case e.spool != "":
			p := e.spool
			n.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		case e.host != nil:
			n.Open = e.host.open
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.entries) }

// Owner is the owner an overlay gives its entries.
type Owner struct{ UID, GID uint32 }

// AddDir copies a local folder into the tree (as a layer on top). Owners
// become root and permissions are normalised to 0755 for folders and
// executables and 0644 for other files, so the result does not depend on
// the host's users or umask; symlinks are kept; special files are refused.
func (t *Tree) AddDir(src string) error {
	_, err := t.AddAt(src, ".", Owner{}, 0)
	return err
}

// AddAt adds a local file or folder at dst in the tree (an overlay): like
// AddDir, with the given owner, and with perm (if not 0) as the permission
// bits of every regular file. Missing parents of dst are created; a parent
// that is a symlink or a file is refused.
//
// Local files are not copied: the tree reads them in place when the image
// is written, hashing what it reads, and the returned SourceDigest gives
// the source's tree digest from those bytes (docs/image.md).
func (t *Tree) AddAt(src, dst string, owner Owner, perm fs.FileMode) (*SourceDigest, error) {
	dst, err := t.cleanName(src, dst)
	if err != nil {
		return nil, &SourceError{Source: src, Entry: dst, Err: err}
	}
	sd := &SourceDigest{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		name := path.Join(dst, rel)
		fail := func(err error) error { return &SourceError{Source: src, Entry: name, Err: err} }
		info, err := d.Info()
		if err != nil {
			return fail(err)
		}
		if name == "." {
			if !info.IsDir() {
				return fail(fmt.Errorf("%w: only a folder can become the root", ErrUnsafePath))
			}
			sd.lines = append(sd.lines, digestLine{text: fmt.Sprintf("d 0755 %q\n", rel)})
			return nil
		}
		if err := t.checkParents(name); err != nil {
			return fail(err)
		}
		n := rootfs.Node{Path: name, UID: owner.UID, GID: owner.GID}
		var host *hostFile
		switch {
		case info.IsDir():
			n.Mode = fs.ModeDir | 0o755
			sd.lines = append(sd.lines, digestLine{text: fmt.Sprintf("d 0755 %q\n", rel)})
		case info.Mode().IsRegular():
			n.Mode = 0o644
			if info.Mode()&0o111 != 0 {
				n.Mode = 0o755
			}
			lineMode := n.Mode
			if perm != 0 {
				n.Mode = perm & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
			}
			if info.Size() > t.limits.MaxFileSize || t.total+info.Size() > t.limits.MaxTotalSize {
				return fail(fmt.Errorf("%w: %d bytes (image.rootfs.limits)", ErrLimit, info.Size()))
			}
			t.total += info.Size()
			n.Size = info.Size()
			host = &hostFile{path: p, size: n.Size, stat: stampOf(info)}
			sd.lines = append(sd.lines, digestLine{text: fmt.Sprintf("f %04o %q %d ", lineMode, rel, n.Size), file: host})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fail(err)
			}
			if escapes(name, target) {
				return fail(fmt.Errorf("%w: symlink to %q leaves the root filesystem", ErrLink, target))
			}
			n.Mode, n.Target = fs.ModeSymlink|0o777, target
			sd.lines = append(sd.lines, digestLine{text: fmt.Sprintf("l %q %q\n", rel, target)})
		default:
			return fail(fmt.Errorf("%w: %v is not a file, folder or symlink", ErrDevice, info.Mode().Type()))
		}
		if old, ok := t.entries[name]; ok && !(old.node.Mode.IsDir() && n.Mode.IsDir()) {
			t.remove(name)
		}
		if len(t.entries) >= t.limits.MaxEntries {
			return fail(fmt.Errorf("%w: more than %d entries", ErrLimit, t.limits.MaxEntries))
		}
		t.ensureParents(name)
		t.entries[name] = &entry{node: n, host: host}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sd, nil
}

// hostFile is a local file the tree reads in place. stat is what the walk
// saw; SourceDigest.Sum hashes the file afterwards and refuses one whose
// size, times or inode changed since, so the digest names the bytes the
// image got.
type hostFile struct {
	path string
	size int64
	stat fileStamp
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	size         int64
	mtime, ctime int64
	ino, dev     uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	s.ctime, s.ino, s.dev = sysStamp(fi)
	return s
}

// open opens the file for the image writer. It returns the *os.File
// itself so that the image writer can let the kernel copy the data
// (copy_file_range). O_NOFOLLOW: a file swapped for a symlink since the
// walk is refused, not followed out of the source folder.
func (h *hostFile) open() (io.ReadCloser, error) {
	return os.OpenFile(h.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}

// same refuses fi unless it is the version of the file the walk listed.
func (h *hostFile) same(fi fs.FileInfo) error {
	if stampOf(fi) != h.stat {
		return fmt.Errorf("%s changed while building (size, time or inode differ from when it was listed): build again once nothing writes to it", h.path)
	}
	return nil
}

// hash returns the file's SHA-256, checking that it is the version the
// walk saw, before and after reading it.
func (h *hostFile) hash() ([]byte, error) {
	f, err := os.OpenFile(h.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	changed := func() error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return h.same(fi)
	}
	if err := changed(); err != nil {
		return nil, err
	}
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return nil, err
	}
	if err := changed(); err != nil {
		return nil, err
	}
	return d.Sum(nil), nil
}

// SourceDigest is the tree digest of one local source (AddAt).
type SourceDigest struct {
	lines []digestLine
	// Set by Start: the files' hashes, computed in the background.
	sums [][]byte
	errs []error
	done chan struct{}
}

type digestLine struct {
	text string    // the whole line, or a file line up to its hash
	file *hostFile // for a file line
}

// Start hashes the source's files in the background, on every core, while
// the image is written from them (which reads them with copy_file_range,
// so that their bytes never pass through this process there). Each file
// must be the version the walk listed, before and after it is hashed; Sum
// checks once more after the image is written. Hashing stops early when
// ctx ends.
func (d *SourceDigest) Start(ctx context.Context) {
	if d.done != nil {
		return
	}
	d.sums = make([][]byte, len(d.lines))
	d.errs = make([]error, len(d.lines))
	d.done = make(chan struct{})
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ctx.Err(); err != nil {
					d.errs[i] = err
					continue
				}
				d.sums[i], d.errs[i] = d.lines[i].file.hash()
			}
		}()
	}
	go func() {
		for i, l := range d.lines {
			if l.file != nil {
				next <- i
			}
		}
		close(next)
		wg.Wait()
		close(d.done)
	}()
}

// Sum returns "sha256:<hex>" over the source's lines. Call it after the
// image is written (it starts the hashing if Start was not called): every
// file must still be the version the walk listed (same size, times and
// inode) now that the image holds it, so a file that changed during the
// build is an error, not a wrong digest.
func (d *SourceDigest) Sum() (string, error) {
	d.Start(context.Background())
	<-d.done
	h := sha256.New()
	for i, l := range d.lines {
		if d.errs[i] != nil {
			return "", d.errs[i]
		}
		io.WriteString(h, l.text)
		if l.file != nil {
			fmt.Fprintf(h, "%x\n", d.sums[i])
		}
	}
	if err := d.unchanged(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// unchanged checks, on every core, that each file is still the version the
// walk listed: hashed while the image was written, it must not have changed
// until the image was complete either.
func (d *SourceDigest) unchanged() error {
	var files []*hostFile
	for _, l := range d.lines {
		if l.file != nil {
			files = append(files, l.file)
		}
	}
	w := runtime.GOMAXPROCS(0)
	errs := make([]error, w)
	var wg sync.WaitGroup
	for k := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(files) && errs[k] == nil; i += w {
				fi, err := os.Lstat(files[i].path)
				if err == nil {
					err = files[i].same(fi)
				}
				errs[k] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
