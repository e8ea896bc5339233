// Package rootfs writes the guest's root filesystem: an uncompressed EROFS
// image with 4 KiB blocks (github.com/erofs/go-erofs) from a normalised
// tree, so that the same tree always gives the same bytes whatever the
// host's owners, times or umask.
package rootfs

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	erofs "github.com/erofs/go-erofs"
)

// Node is one entry of the tree.
type Node struct {
	// Path is the entry's path in the image, clean and relative ("etc/hosts").
	Path string
	// Mode holds the type, permission and setuid/setgid/sticky bits.
	Mode     fs.FileMode
	UID, GID uint32
	// Open returns a regular file's contents; Size is their length.
	Open func() (io.ReadCloser, error)
	Size int64
	// Target is a symlink's target.
	Target string
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
	// Xattrs are extended attributes (user.*, security.*, trusted.*).
	Xattrs map[string]string
}

// linuxType is the st_mode type bits of m.
func linuxType(m fs.FileMode) (uint16, bool) {
	switch {
	case m&fs.ModeCharDevice != 0:
		return 0o020000, true
	case m&fs.ModeDevice != 0:
		return 0o060000, true
	case m&fs.ModeNamedPipe != 0:
		return 0o010000, true
	}
	return 0, false
}

// encodeDev is Linux's new_encode_dev, the rdev EROFS stores.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// WriteEROFS writes the nodes as an EROFS image to out, every inode's times
// set to mtime (SOURCE_DATE_EPOCH). Folders are created before their
// contents whatever the order given; the root folder's metadata may be
// given with Path ".".
func WriteEROFS(out io.WriteSeeker, nodes []Node, mtime time.Time, tempDir string) error {
	ns := append([]Node(nil), nodes...)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Path < ns[j].Path })
	w := erofs.Create(out, erofs.WithBlockSize(4096), erofs.WithBuildTime(uint64(mtime.Unix()), 0), erofs.WithTempDir(tempDir))
	seen := map[string]bool{"/": true}
	root := Node{Path: ".", Mode: fs.ModeDir | 0o755}
	for _, n := range ns {
		if n.Path == "." {
			root = n
			continue
		}
		if err := checkPath(n.Path); err != nil {
			return err
		}
		name := "/" + n.Path
		if seen[name] {
			return fmt.Errorf("rootfs entry %q appears twice", n.Path)
		}
		if !seen[path.Dir(name)] {
			return fmt.Errorf("rootfs entry %q: its folder is not in the tree", n.Path)
		}
		seen[name] = true
		if err := add(w, name, n); err != nil {
			return fmt.Errorf("rootfs entry %q: %w", n.Path, err)
		}
		if err := meta(w, name, n, mtime); err != nil {
			return fmt.Errorf("rootfs entry %q: %w", n.Path, err)
		}
	}
	if err := meta(w, "/", root, mtime); err != nil {
		return fmt.Errorf("rootfs root: %w", err)
	}
	return w.Close()
}

func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("rootfs entry %q: not a clean relative path", p)
	}
	return nil
}

func add(w *erofs.Writer, name string, n Node) error {
	switch {
	case n.Mode.IsDir():
		return w.Mkdir(name, n.Mode.Perm())
	case n.Mode.IsRegular():
		f, err := w.Create(name)
		if err != nil {
			return err
		}
		if n.Open != nil {
			r, err := n.Open()
			if err != nil {
				f.Close()
				return err
			}
			m, err := f.ReadFrom(r)
			r.Close()
			if err != nil {
				f.Close()
				return err
			}
			if m != n.Size {
				f.Close()
				return fmt.Errorf("read %d bytes, expected %d (the file changed while building?)", m, n.Size)
			}
		}
		return f.Close()
	case n.Mode&fs.ModeSymlink != 0:
		return w.Symlink(n.Target, name)
	}
	if t, ok := linuxType(n.Mode); ok {
		return w.Mknod(name, t|uint16(n.Mode.Perm()), encodeDev(n.Major, n.Minor))
	}
	return fmt.Errorf("unsupported file type %v", n.Mode.Type())
}

// meta sets mode (keeping setuid, setgid, sticky), owner, times and xattrs.
func meta(w *erofs.Writer, name string, n Node, mtime time.Time) error {
	if n.Mode&fs.ModeSymlink == 0 {
		if err := w.Chmod(name, n.Mode); err != nil {
			return err
		}
	}
	if err := w.Chown(name, int(n.UID), int(n.GID)); err != nil {
		return err
	}
	if err := w.Chtimes(name, mtime, mtime); err != nil {
		return err
	}
	keys := make([]string, 0, len(n.Xattrs))
	for k := range n.Xattrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := w.Setxattr(name, k, n.Xattrs[k]); err != nil {
			return err
		}
	}
	return nil
}
