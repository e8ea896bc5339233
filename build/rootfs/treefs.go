package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	erofs "github.com/erofs/go-erofs"
)

// treeFS presents the nodes as an fs.FS for erofs.Writer.CopyFrom, which
// keeps a reference to each file's reader and copies its data straight
// into the image when it is written, instead of spooling every file first.
// Metadata travels in FileInfo.Sys() as an *erofs.Stat.
type treeFS struct {
	nodes    map[string]*Node
	children map[string][]string // sorted base names
	mtime    uint64
	eager    int // large files opened as *os.File so far
}

// Large local files are handed to the writer as *os.File, which lets the
// kernel copy them (copy_file_range) without passing through this process;
// at most maxEager of them, so a huge tree never holds too many open
// descriptors. The rest are opened lazily, when the writer reads them.
const (
	eagerMinSize = 64 << 10
	maxEager     = 512
)

func newTreeFS(root Node, ns []Node, mtime time.Time) (*treeFS, error) {
	t := &treeFS{nodes: map[string]*Node{".": &root}, children: map[string][]string{}, mtime: uint64(mtime.Unix())}
	ns = append([]Node(nil), ns...)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Path < ns[j].Path })
	for i := range ns {
		n := &ns[i]
		if n.Path == "." {
			continue
		}
		if err := checkPath(n.Path); err != nil {
			return nil, err
		}
		if _, dup := t.nodes[n.Path]; dup {
			return nil, fmt.Errorf("rootfs entry %q appears twice", n.Path)
		}
		parent := path.Dir(n.Path)
		if p, ok := t.nodes[parent]; !ok || !p.Mode.IsDir() {
			return nil, fmt.Errorf("rootfs entry %q: its folder is not in the tree", n.Path)
		}
		if _, ok := linuxType(n.Mode); !ok && !n.Mode.IsDir() && !n.Mode.IsRegular() && n.Mode&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("rootfs entry %q: unsupported file type %v", n.Path, n.Mode.Type())
		}
		t.nodes[n.Path] = n
		t.children[parent] = append(t.children[parent], path.Base(n.Path))
	}
	for _, c := range t.children {
		sort.Strings(c)
	}
	return t, nil
}

func (t *treeFS) node(name string) (*Node, error) {
	n, ok := t.nodes[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

func (t *treeFS) info(name string, n *Node) *nodeInfo {
	nlink := 1
	if n.Mode.IsDir() {
		nlink = 2
		for _, c := range t.children[name] {
			if t.nodes[path.Join(name, c)].Mode.IsDir() {
				nlink++
			}
		}
	}
	st := &erofs.Stat{Mode: n.Mode, Size: n.Size, UID: n.UID, GID: n.GID, Mtime: t.mtime, Nlink: nlink, Xattrs: n.Xattrs}
	if _, ok := linuxType(n.Mode); ok {
		st.Rdev = encodeDev(n.Major, n.Minor)
	}
	if n.Mode&fs.ModeSymlink != 0 {
		st.Size = int64(len(n.Target))
	}
	return &nodeInfo{name: path.Base(name), st: st}
}

// Open implements fs.FS. Regular files open their contents lazily, on the
// first Read, so that a tree of a million files never holds a million
// descriptors.
func (t *treeFS) Open(name string) (fs.File, error) {
	n, err := t.node(name)
	if err != nil {
		return nil, err
	}
	if n.Mode.IsRegular() && n.Open != nil && n.Size >= eagerMinSize && t.eager < maxEager {
		rc, err := n.Open()
		if err != nil {
			return nil, fmt.Errorf("rootfs entry %q: %w", name, err)
		}
		if f, ok := rc.(*os.File); ok {
			t.eager++
			return f, nil
		}
		return &nodeFile{fsys: t, name: name, n: n, info: t.info(name, n), rc: rc}, nil
	}
	return &nodeFile{fsys: t, name: name, n: n, info: t.info(name, n)}, nil
}

// ReadDir implements fs.ReadDirFS, in name order.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if _, err := t.node(name); err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, c := range t.children[name] {
		p := path.Join(name, c)
		out = append(out, fs.FileInfoToDirEntry(t.info(p, t.nodes[p])))
	}
	return out, nil
}

// ReadLink gives a symlink's target (go-erofs looks for this method).
func (t *treeFS) ReadLink(name string) (string, error) {
	n, err := t.node(name)
	if err != nil {
		return "", err
	}
	return n.Target, nil
}

type nodeInfo struct {
	name string
	st   *erofs.Stat
}

func (i *nodeInfo) Name() string       { return i.name }
func (i *nodeInfo) Size() int64        { return i.st.Size }
func (i *nodeInfo) Mode() fs.FileMode  { return i.st.Mode }
func (i *nodeInfo) ModTime() time.Time { return time.Unix(int64(i.st.Mtime), 0) }
func (i *nodeInfo) IsDir() bool        { return i.st.Mode.IsDir() }
func (i *nodeInfo) Sys() any           { return i.st }

// nodeFile is an open node. Reads check that the file has exactly the
// size the tree recorded: a file that changed since is an error, never a
// silently different image.
type nodeFile struct {
	fsys *treeFS
	name string
	n    *Node
	info *nodeInfo
	rc   io.ReadCloser
	read int64
}

func (f *nodeFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *nodeFile) Read(p []byte) (int, error) {
	if !f.n.Mode.IsRegular() {
		return 0, fmt.Errorf("rootfs entry %q: not a regular file", f.name)
	}
	if f.rc == nil {
		if f.n.Open == nil {
			return 0, io.EOF
		}
		rc, err := f.n.Open()
		if err != nil {
			return 0, fmt.Errorf("rootfs entry %q: %w", f.name, err)
		}
		f.rc = rc
	}
	if rest := f.n.Size - f.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	if len(p) == 0 {
		f.close()
		return 0, io.EOF
	}
	k, err := f.rc.Read(p)
	f.read += int64(k)
	if errors.Is(err, io.EOF) {
		if f.read != f.n.Size {
			return k, fmt.Errorf("rootfs entry %q: read %d bytes, expected %d (the file changed while building?)", f.name, f.read, f.n.Size)
		}
		f.close()
	}
	return k, err
}

func (f *nodeFile) close() {
	if f.rc != nil {
		f.rc.Close()
		f.rc = nil
	}
}

func (f *nodeFile) Close() error { f.close(); return nil }
