package build

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/build/rootfs"
	"github.com/cvmkit/cvmkit/build/tree"
	"github.com/cvmkit/cvmkit/build/verity"
	"github.com/cvmkit/cvmkit/config"
)

// BenchmarkEROFSVerity is the EROFS + dm-verity part of `cvmkit build`
// on the folder named by CVMKIT_BENCH_TREE (bench/build-image.sh makes a
// 1 GiB one and times mkfs.erofs + veritysetup format on it in the same
// run): flatten the folder, write the EROFS image, append the hash tree.
// Without the variable it builds a small generated tree.
func BenchmarkEROFSVerity(b *testing.B) {
	src := os.Getenv("CVMKIT_BENCH_TREE")
	if src == "" {
		src = b.TempDir()
		for i := range 64 {
			os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), make([]byte, 256<<10), 0o644)
		}
	}
	var size int64
	filepath.Walk(src, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	b.SetBytes(size)
	out := filepath.Join(b.TempDir(), "rootfs.img")
	for b.Loop() {
		t := tree.New(limitsOf(config.Limits{MaxFileSize: config.DefaultMaxFileSize, MaxTotalSize: config.DefaultMaxTotalSize, MaxEntries: config.DefaultMaxEntries}), b.TempDir(), nil)
		if _, err := t.AddAt(src, ".", tree.Owner{}, 0); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		if err := rootfs.WriteEROFS(f, t.Nodes(), time.Unix(0, 0), b.TempDir()); err != nil {
			b.Fatal(err)
		}
		n, _ := f.Seek(0, io.SeekEnd)
		if _, err := verity.Build(io.NewSectionReader(f, 0, n), n, verity.Params{Salt: verity.DeriveSalt(nil), Superblock: true}, f, n); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
