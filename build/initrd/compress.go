package initrd

import (
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compress wraps w in a deterministic compressor the Linux kernel can
// unpack (CONFIG_RD_ZSTD, CONFIG_RD_GZIP): zstd at its best level with a
// content checksum and one encoder goroutine, or gzip at its best level
// with no name and a zero mtime. The caller must Close the writer. The
// output depends on the compressor's version, which go.mod pins.
func Compress(w io.Writer, kind string) (io.WriteCloser, error) {
	switch kind {
	case "zstd":
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	case "gzip":
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	}
	return nil, errUnknownCompression
}
