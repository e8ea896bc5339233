// Package initrd writes the guest's initrd deterministically: a newc cpio
// archive (the format the Linux kernel unpacks into its initramfs,
// Documentation/driver-api/early-userspace/buffer-format.rst), compressed
// with zstd or gzip. Entries are sorted by name, inode numbers assigned in
// that order, owners and times fixed, so the same files always give the
// same bytes.
package initrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Entry is one file of the archive.
type Entry struct {
	// Name is the path inside the initrd, without a leading slash.
	Name string
	// Mode holds the permission bits and the type (fs.ModeDir,
	// fs.ModeSymlink, fs.ModeDevice|fs.ModeCharDevice …); 0 type means a
	// regular file.
	Mode fs.FileMode
	// Data is a regular file's contents; Target a symlink's.
	Data   []byte
	Target string
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
	UID, GID     uint32
}

// maxName bounds entry names (PATH_MAX).
const maxName = 4096

// linuxMode converts a Go file mode to st_mode bits.
func linuxMode(m fs.FileMode) (uint32, error) {
	perm := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	switch {
	case m.IsRegular():
		return 0o100000 | perm, nil
	case m.IsDir():
		return 0o040000 | perm, nil
	case m&fs.ModeSymlink != 0:
		return 0o120000 | perm, nil
	case m&fs.ModeCharDevice != 0:
		return 0o020000 | perm, nil
	case m&fs.ModeDevice != 0:
		return 0o060000 | perm, nil
	case m&fs.ModeNamedPipe != 0:
		return 0o010000 | perm, nil
	}
	return 0, fmt.Errorf("unsupported file type %v", m.Type())
}

// Write writes entries as a newc archive with every mtime set to mtime
// (SOURCE_DATE_EPOCH). Every entry's folder must be an entry too; sorting
// by name puts it first, whatever the order given. Inode numbers follow the
// sorted order; folders have two links, everything else one.
func Write(w io.Writer, entries []Entry, mtime int64) error {
	es := append([]Entry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	seen := map[string]bool{}
	var buf bytes.Buffer
	for i, e := range es {
		if e.Name == "" || e.Name == "." || strings.HasPrefix(e.Name, "/") || path.Clean(e.Name) != e.Name || strings.HasPrefix(e.Name, "../") || len(e.Name) > maxName || strings.ContainsRune(e.Name, 0) {
			return fmt.Errorf("initrd entry %q: not a clean relative path", e.Name)
		}
		if seen[e.Name] {
			return fmt.Errorf("initrd entry %q appears twice", e.Name)
		}
		seen[e.Name] = true
		if dir := path.Dir(e.Name); dir != "." && !seen[dir] {
			return fmt.Errorf("initrd entry %q: its folder %q is not in the archive", e.Name, dir)
		}
		mode, err := linuxMode(e.Mode)
		if err != nil {
			return fmt.Errorf("initrd entry %q: %w", e.Name, err)
		}
		var data []byte
		switch {
		case e.Mode.IsRegular():
			data = e.Data
		case e.Mode&fs.ModeSymlink != 0:
			if e.Target == "" {
				return fmt.Errorf("initrd entry %q: symlink without a target", e.Name)
			}
			data = []byte(e.Target)
		}
		nlink := uint32(1)
		if e.Mode.IsDir() {
			nlink = 2
		}
		var rmaj, rmin uint32
		if e.Mode&fs.ModeDevice != 0 {
			rmaj, rmin = e.Major, e.Minor
		}
		buf.Reset()
		header(&buf, uint32(i+1), mode, e.UID, e.GID, nlink, uint32(mtime), uint32(len(data)), rmaj, rmin, e.Name)
		buf.Write(data)
		pad4(&buf)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	buf.Reset()
	header(&buf, 0, 0, 0, 0, 1, 0, 0, 0, 0, "TRAILER!!!")
	_, err := w.Write(buf.Bytes())
	return err
}

// header writes a newc header ("070701", 13 fields of 8 hex digits, check
// 0), the name with its NUL, padded to 4 bytes.
func header(b *bytes.Buffer, ino, mode, uid, gid, nlink, mtime, size, rmaj, rmin uint32, name string) {
	fmt.Fprintf(b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, uid, gid, nlink, mtime, size, 0, 0, rmaj, rmin, len(name)+1, 0)
	b.WriteString(name)
	b.WriteByte(0)
	pad4(b)
}

func pad4(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}

var errUnknownCompression = errors.New("unknown initrd compression; want zstd or gzip")
