package sbom

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Bounds on what an initrd may declare. They keep a hostile initrd from
// making the SBOM step run or allocate without end: every loop below is
// bounded by them and checks the context.
const (
	// maxInitrdEntries bounds the cpio entries read (a distribution's
	// dracut or initramfs-tools initrd has a few thousand).
	maxInitrdEntries = 1 << 20
	// maxInitrdExpanded bounds the bytes read after decompression.
	maxInitrdExpanded = 8 << 30
	// maxInspect is the largest file inside the initrd that is identified
	// (and the largest a compressed module may expand to); larger files
	// are hashed in passing only.
	maxInspect = 256 << 20
	// maxInMemory is the largest file held in memory to identify it;
	// larger ones go to an unlinked temporary file, so that what one file
	// costs in memory is bounded whatever the initrd holds.
	maxInMemory = 16 << 20
	// maxModinfo is the largest .modinfo section read (a module's holds
	// a few KiB of NUL-separated key=value strings), compressed or not:
	// its declared size is checked before it is read.
	maxModinfo = 1 << 20
	// maxInitrdParts is the most programs and modules listed one by one
	// (a distribution's initrd with every module has a few thousand);
	// beyond it files are counted and the description says so.
	maxInitrdParts = 8192
	// maxCPIOName is the longest entry name accepted (PATH_MAX).
	maxCPIOName = 4096
)

// Magic numbers of what an initrd segment may start with.
var (
	magicNewc    = []byte("070701")
	magicNewcCRC = []byte("070702")
	magicGzip    = []byte{0x1f, 0x8b}
	magicZstd    = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ      = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicELF     = []byte{0x7f, 'E', 'L', 'F'}
	// Compressions Linux can unpack that are not read here.
	otherMagic = map[string][]byte{
		"bzip2": []byte("BZh"), "lz4": {0x02, 0x21, 0x4c, 0x18},
		"lzma": {0x5d, 0x00, 0x00}, "lzo": {0x89, 'L', 'Z', 'O'},
	}
)

// InitrdPart describes an initrd read once from r: its digest and, as
// Parts, the programs (Go programs by their build information, other ELF
// executables and libraries by path) and kernel modules (by .modinfo) it
// holds. The initrd is what Linux unpacks (init/initramfs.c): concatenated
// segments, each an uncompressed newc cpio archive or a gzip, zstd or xz
// stream of them, separated by zero padding. Other files (scripts,
// configuration) are counted in the description; the initrd's digest
// covers them. A compression that is not read here (bzip2, lz4, lzma,
// lzo) leaves the contents unlisted, and the description says so.
func InitrdPart(ctx context.Context, file string, r io.Reader) (Part, error) {
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(r, h)}
	ir := &initrdReader{ctx: ctx}
	err := ir.segments(bufio.NewReaderSize(cr, 64<<10))
	if err != nil {
		return Part{}, fmt.Errorf("initrd %s: %w", file, err)
	}
	// Whatever was not parsed still counts towards the digest.
	if _, err := io.Copy(io.Discard, &ctxReader{ctx: ctx, r: cr}); err != nil {
		return Part{}, fmt.Errorf("initrd %s: %w", file, err)
	}
	p := Part{Kind: Initrd, Name: path.Base(file), File: file, SHA256: hex.EncodeToString(h.Sum(nil)), Size: cr.n, Parts: ir.parts}
	desc := []string{"initial RAM disk"}
	if len(ir.formats) > 0 {
		desc[0] += " (" + strings.Join(ir.formats, ", ") + ")"
	}
	desc = append(desc, fmt.Sprintf("%d programs and kernel modules listed", len(ir.parts)))
	if ir.unlisted > 0 {
		desc = append(desc, fmt.Sprintf("%d more files not inspected: at most %d programs and modules are listed", ir.unlisted, maxInitrdParts))
	}
	if ir.other > 0 {
		desc = append(desc, fmt.Sprintf("%d other files, covered by the initrd's digest", ir.other))
	}
	desc = append(desc, ir.notes...)
	p.Description = strings.Join(desc, "; ")
	return p, nil
}

type initrdReader struct {
	ctx      context.Context
	parts    []Part
	unlisted int
	formats  []string
	notes    []string
	entries  int
	other    int
	expanded int64
}

// segments reads the initrd's segments in order until its end.
func (ir *initrdReader) segments(br *bufio.Reader) error {
	for {
		if err := ir.skipZeros(br); err != nil {
			return err
		}
		head, _ := br.Peek(6)
		switch {
		case len(head) == 0:
			return nil
		case bytes.HasPrefix(head, magicNewc) || bytes.HasPrefix(head, magicNewcCRC):
			ir.addFormat("cpio")
			if err := ir.archive(br, &offsetReader{r: br}); err != nil {
				return err
			}
		case bytes.HasPrefix(head, magicGzip):
			ir.addFormat("gzip")
			zr, err := gzip.NewReader(br)
			if err != nil {
				return fmt.Errorf("gzip segment: %w", err)
			}
			// One member at a time: bufio.Reader is an io.ByteReader, so
			// the gzip reader consumes exactly its member and the next
			// segment is read after it.
			zr.Multistream(false)
			if err := ir.archives(zr); err != nil {
				return fmt.Errorf("gzip segment: %w", err)
			}
		case bytes.HasPrefix(head, magicZstd):
			ir.addFormat("zstd")
			// The segment's frames, passed on exactly (the decoder reads
			// ahead), with their declared windows checked first.
			zr, err := zstd.NewReader(zstdSegment(br), zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(maxInitrdExpanded))
			if err != nil {
				return err
			}
			err = ir.archives(zr)
			zr.Close()
			if err != nil {
				return fmt.Errorf("zstd segment: %w", err)
			}
		case bytes.HasPrefix(head, magicXZ):
			ir.addFormat("xz")
			zr, err := xz.ReaderConfig{SingleStream: true}.NewReader(xzStream(br))
			if err != nil {
				return fmt.Errorf("xz segment: %w", err)
			}
			if err := ir.archives(zr); err != nil {
				return fmt.Errorf("xz segment: %w", err)
			}
		default:
			for name, m := range otherMagic {
				if bytes.HasPrefix(head, m) {
					ir.addFormat(name)
					ir.notes = append(ir.notes, "the "+name+"-compressed segment's contents are not listed (cvmkit reads cpio, gzip, zstd and xz)")
					return nil
				}
			}
			return fmt.Errorf("a segment starts with %x: neither a newc cpio archive nor gzip, zstd, xz, bzip2, lz4, lzma or lzo data", head)
		}
	}
}

func (ir *initrdReader) addFormat(f string) {
	for _, g := range ir.formats {
		if g == f {
			return
		}
	}
	ir.formats = append(ir.formats, f)
}

// skipZeros skips the zero padding Linux allows between segments.
func (ir *initrdReader) skipZeros(br *bufio.Reader) error {
	for {
		if err := ir.ctx.Err(); err != nil {
			return err
		}
		b, err := br.Peek(br.Size())
		if len(b) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		n := 0
		for n < len(b) && b[n] == 0 {
			n++
		}
		br.Discard(n)
		if n < len(b) {
			return nil
		}
	}
}

// archives reads the cpio archives of a decompressed stream, zero padding
// between them allowed.
func (ir *initrdReader) archives(r io.Reader) error {
	cr := &ctxReader{ctx: ir.ctx, r: r, limit: max(1, maxInitrdExpanded-ir.expanded)}
	defer func() { ir.expanded += cr.n }()
	br := bufio.NewReaderSize(cr, 64<<10)
	or := &offsetReader{r: br}
	for {
		if err := ir.skipZerosAt(br, or); err != nil {
			return err
		}
		head, _ := br.Peek(6)
		if len(head) == 0 {
			return nil
		}
		if !bytes.HasPrefix(head, magicNewc) && !bytes.HasPrefix(head, magicNewcCRC) {
			return fmt.Errorf("decompressed data at byte %d is not a newc cpio archive (starts with %x)", or.n, head)
		}
		if err := ir.archive(br, or); err != nil {
			return err
		}
	}
}

// skipZerosAt is skipZeros that keeps an offsetReader's count, since cpio
// alignment counts from the start of the decompressed stream.
func (ir *initrdReader) skipZerosAt(br *bufio.Reader, or *offsetReader) error {
	for {
		b, err := br.Peek(1)
		if len(b) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if b[0] != 0 {
			return nil
		}
		chunk, _ := br.Peek(br.Buffered())
		n := 0
		for n < len(chunk) && chunk[n] == 0 {
			n++
		}
		br.Discard(n)
		or.n += int64(n)
	}
}

// archive reads one newc archive up to its TRAILER!!! entry. The format
// (cpio(5), "New ASCII Format"; Linux init/initramfs.c): a 110-byte header
// of "070701" or "070702" and thirteen 8-digit hex fields, the name with
// its NUL, padding to 4 bytes, the data, padding to 4 bytes.
func (ir *initrdReader) archive(br *bufio.Reader, or *offsetReader) error {
	var hdr [110]byte
	for {
		if err := ir.ctx.Err(); err != nil {
			return err
		}
		if ir.entries++; ir.entries > maxInitrdEntries {
			return fmt.Errorf("more than %d cpio entries", maxInitrdEntries)
		}
		at := or.n
		if _, err := io.ReadFull(or, hdr[:]); err != nil {
			return fmt.Errorf("cpio header at byte %d: %w", at, noEOF(err))
		}
		if !bytes.HasPrefix(hdr[:], magicNewc) && !bytes.HasPrefix(hdr[:], magicNewcCRC) {
			return fmt.Errorf("cpio header at byte %d: bad magic %q", at, hdr[:6])
		}
		var f [13]uint64
		for i := range f {
			v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return fmt.Errorf("cpio header at byte %d: field %d is not 8 hex digits", at, i)
			}
			f[i] = v
		}
		mode, size, nameSize := f[1], f[6], f[11]
		if nameSize == 0 || nameSize > maxCPIOName+1 {
			return fmt.Errorf("cpio header at byte %d: name size %d", at, nameSize)
		}
		name := make([]byte, nameSize)
		if _, err := io.ReadFull(or, name); err != nil {
			return fmt.Errorf("cpio name at byte %d: %w", at, noEOF(err))
		}
		if name[nameSize-1] != 0 {
			return fmt.Errorf("cpio name at byte %d is not NUL-terminated", at)
		}
		n := string(name[:nameSize-1])
		if err := or.align(); err != nil {
			return err
		}
		if n == "TRAILER!!!" {
			return or.discard(size)
		}
		const sIFMT, sIFREG = 0o170000, 0o100000
		if mode&sIFMT != sIFREG || size == 0 {
			if err := or.discard(size); err != nil {
				return err
			}
		} else if err := ir.file("/"+strings.TrimPrefix(path.Clean("/"+n), "/"), size, or); err != nil {
			return err
		}
		if err := or.align(); err != nil {
			return err
		}
	}
}

// file reads one regular file of the archive and lists it if it is a
// program, library or kernel module.
func (ir *initrdReader) file(name string, size uint64, or *offsetReader) error {
	if size > maxInspect {
		ir.other++
		return or.discard(size)
	}
	if len(ir.parts) >= maxInitrdParts {
		ir.unlisted++
		return or.discard(size)
	}
	// Read as the bytes arrive: a header that declares a large size in a
	// short file costs no more than the file holds.
	sp := &spool{}
	defer sp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(sp, h), io.LimitReader(or, int64(size)))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if uint64(n) != size {
		return fmt.Errorf("%s: %w", name, io.ErrUnexpectedEOF)
	}
	p, ok, err := identify(ir.ctx, name, sp, hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return err
	}
	if !ok {
		ir.other++
		return nil
	}
	ir.parts = append(ir.parts, p)
	return nil
}

// identify says what a file inside the initrd is: a kernel module (its
// .modinfo), a Go program (its build information) or another ELF
// executable or library. Modules may be zstd- or xz-compressed (.ko.zst,
// .ko.xz), as Linux's module loader accepts them.
func identify(ctx context.Context, name string, data *spool, sum string) (Part, bool, error) {
	p := Part{File: name, SHA256: sum, Size: data.Len()}
	elfData, compressed, err := decompressModule(name, data)
	if err != nil {
		return Part{}, false, err
	}
	if elfData != data {
		defer elfData.Close()
	}
	var magic [4]byte
	if _, err := elfData.ReadAt(magic[:], 0); err != nil || !bytes.Equal(magic[:], magicELF) {
		return Part{}, false, nil
	}
	ra := io.NewSectionReader(elfData, 0, elfData.Len())
	f, err := elf.NewFile(ra)
	if err != nil {
		// An ELF header that debug/elf cannot read: list it by digest.
		p.Kind, p.Name = Program, path.Base(name)
		p.Description = "ELF file debug/elf cannot read (" + err.Error() + ")"
		return p, true, nil
	}
	defer f.Close()
	if s := f.Section(".modinfo"); s != nil && f.Type == elf.ET_REL {
		return modulePart(p, s, compressed), true, nil
	}
	if bi, err := buildinfo.Read(ra); err == nil {
		p.Kind, p.Name = Program, bi.Path
		if p.Name == "" {
			p.Name = path.Base(name)
		}
		desc := "Go program built with " + bi.GoVersion
		if m := bi.Main; m.Path != "" {
			desc += ", main module " + m.Path
			if m.Version != "" && m.Version != "(devel)" {
				p.Version = m.Version
				p.PURL = "pkg:golang/" + m.Path + "@" + m.Version
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				desc += ", revision " + s.Value
			}
		}
		p.Description = desc
		return p, true, nil
	}
	p.Name = path.Base(name)
	switch {
	case f.Type == elf.ET_EXEC || hasInterp(f):
		p.Kind, p.Description = Program, "ELF executable"
	case f.Type == elf.ET_DYN:
		p.Kind, p.Description = Library, "ELF shared object"
	default:
		p.Kind, p.Description = Program, "ELF file of type "+f.Type.String()
	}
	return p, true, ctx.Err()
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// decompressModule returns a .ko.zst or .ko.xz module's ELF bytes (at
// most maxInspect, in a spool of their own), or data itself.
func decompressModule(name string, data *spool) (*spool, string, error) {
	var magic [6]byte
	data.ReadAt(magic[:], 0)
	src := io.NewSectionReader(data, 0, data.Len())
	var r io.Reader
	var kind string
	switch {
	case strings.HasSuffix(name, ".ko.zst") && bytes.HasPrefix(magic[:], magicZstd):
		d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(maxInspect))
		if err != nil {
			return nil, "", err
		}
		defer d.Close()
		r, kind = d, "zstd"
	case strings.HasSuffix(name, ".ko.xz") && bytes.HasPrefix(magic[:], magicXZ):
		d, err := xz.ReaderConfig{SingleStream: true}.NewReader(xzStream(bufio.NewReader(src)))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		r, kind = d, "xz"
	default:
		return data, "", nil
	}
	out := &spool{}
	n, err := io.Copy(out, io.LimitReader(r, maxInspect+1))
	if err != nil {
		out.Close()
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if n > maxInspect {
		out.Close()
		return nil, "", fmt.Errorf("%s: decompresses to more than %d MiB", name, maxInspect>>20)
	}
	return out, kind, nil
}

// modulePart reads a module's .modinfo: NUL-separated key=value strings
// (include/linux/moduleparam.h __MODULE_INFO; modinfo(8) prints them). The
// section's declared size (its uncompressed size when SHF_COMPRESSED) is
// checked before anything is read or decompressed.
func modulePart(p Part, s *elf.Section, compressed string) Part {
	p.Kind = Module
	p.Name = strings.SplitN(path.Base(p.File), ".ko", 2)[0]
	desc := "Linux kernel module"
	if compressed != "" {
		desc += " (" + compressed + "-compressed)"
	}
	if s.Size > maxModinfo {
		p.Description = fmt.Sprintf("%s whose .modinfo declares %d bytes, more than the %d KiB cvmkit reads: named by its file", desc, s.Size, maxModinfo>>10)
		return p
	}
	info, err := io.ReadAll(io.LimitReader(s.Open(), maxModinfo+1))
	if err != nil || len(info) > maxModinfo {
		p.Description = desc + " whose .modinfo cannot be read: named by its file"
		return p
	}
	kv := map[string]string{}
	for rest := info; len(rest) > 0; {
		f := rest
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			f, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(f, []byte("="))
		if !ok {
			continue
		}
		switch key := string(k); key {
		case "name", "vermagic", "version", "license", "description":
			if _, seen := kv[key]; !seen {
				kv[key] = string(v)
			}
		}
	}
	if kv["name"] != "" {
		p.Name = kv["name"]
	}
	release, _, _ := strings.Cut(kv["vermagic"], " ")
	p.Version = release
	if v := kv["version"]; v != "" {
		p.Version = v
	}
	if release != "" {
		desc += " for kernel " + release
	}
	if l := kv["license"]; l != "" {
		desc += ", MODULE_LICENSE " + strconv.Quote(l)
	}
	if d := kv["description"]; d != "" {
		desc += ": " + d
	}
	p.Description = desc
	return p
}

// spool holds a file's bytes: in memory up to maxInMemory, then in an
// unlinked temporary file (nothing is left behind if the process is
// killed). It is read back with ReadAt.
type spool struct {
	mem []byte
	f   *os.File
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && int64(len(s.mem))+int64(len(p)) <= maxInMemory {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp("", "cvmkit-sbom-inspect-*")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name())
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			return 0, err
		}
		s.f, s.mem = f, nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	if off >= int64(len(s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Len is the number of bytes written.
func (s *spool) Len() int64 { return s.n }

func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.mem = nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// offsetReader counts the bytes read so that cpio padding can be computed.
type offsetReader struct {
	r io.Reader
	n int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.n += int64(n)
	return n, err
}

// align skips to the next multiple of 4.
func (o *offsetReader) align() error {
	return o.discard(uint64((4 - o.n%4) % 4))
}

func (o *offsetReader) discard(n uint64) error {
	if _, err := io.CopyN(io.Discard, o, int64(n)); err != nil {
		return fmt.Errorf("cpio data: %w", noEOF(err))
	}
	return nil
}

// ctxReader stops reading when the context ends or, with a limit, when
// more than limit bytes have been read (a decompression bomb).
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	limit int64
	n     int64
}

var errExpanded = fmt.Errorf("the initrd expands to more than %d GiB", maxInitrdExpanded>>30)

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.limit > 0 && c.n > c.limit {
		return n, errExpanded
	}
	return n, err
}

// countReader counts the bytes of the initrd file.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
