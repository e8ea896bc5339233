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
// set to mtime (SOURCE_DATE_EPOCH). File contents are read once, straight
// into the image (see treeFS). Folders are created before their
// contents whatever the order given; the root folder's metadata may be
// given with Path ".".
func WriteEROFS(out io.WriteSeeker, nodes []Node, mtime time.Time, tempDir string) error {
	root := Node{Path: ".", Mode: fs.ModeDir | 0o755}
	for _, n := range nodes {
		if n.Path == "." {
			root = n
		}
	}
	t, err := newTreeFS(root, nodes, mtime)
	if err != nil {
		return err
	}
	w := erofs.Create(out, erofs.WithBlockSize(4096), erofs.WithBuildTime(uint64(mtime.Unix()), 0), erofs.WithTempDir(tempDir))
	if err := w.CopyFrom(t); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return w.Close()
}

func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("rootfs entry %q: not a clean relative path", p)
	}
	return nil
}
