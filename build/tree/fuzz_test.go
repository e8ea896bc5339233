package tree

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

// FuzzApplyTar: no layer may panic the flattener or put an unsafe path or
// an escaping symlink into the tree.
func FuzzApplyTar(f *testing.F) {
	f.Add(layer(tf{name: "etc/a", data: "a"}, tf{name: "etc/.wh.a"}, tf{name: "l", typ: tar.TypeSymlink, link: "etc"}))
	f.Add(layer(tf{name: "a", data: "x"}, tf{name: "b", typ: tar.TypeLink, link: "a"}, tf{name: "d/.wh..wh..opq"}))
	f.Add(layer(tf{name: "../x", data: "x"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := New(Limits{MaxFileSize: 1 << 16, MaxTotalSize: 1 << 18, MaxEntries: 256}, t.TempDir(), nil)
		tr.ApplyTar("fuzz", bytes.NewReader(b))
		for _, n := range tr.Nodes() {
			if n.Path != "." && (strings.HasPrefix(n.Path, "/") || strings.Contains("/"+n.Path+"/", "/../")) {
				t.Fatalf("unsafe path %q in the tree", n.Path)
			}
			if n.Target != "" && escapes(n.Path, n.Target) {
				t.Fatalf("escaping symlink %q -> %q", n.Path, n.Target)
			}
		}
	})
}
