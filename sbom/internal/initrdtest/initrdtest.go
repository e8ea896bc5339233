// Package initrdtest makes initrds for tests, the hostile ones among them:
// newc cpio archives, compressed segments and minimal ELF kernel modules
// built byte by byte, so that a test needs no tool to make them.
package initrdtest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
)

// Entry is one regular file of an archive.
type Entry struct {
	Name string
	Data []byte
}

// CPIO is a newc archive (cpio(5) "New ASCII Format") of the files, with
// its trailer.
func CPIO(files ...Entry) []byte {
	var b bytes.Buffer
	w := func(name string, mode uint32, data []byte) {
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for _, f := range files {
		w(f.Name, 0o100644, f.Data)
	}
	w("TRAILER!!!", 0, nil)
	return b.Bytes()
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// GzipStream compresses what write writes, for inputs too large to hold.
func GzipStream(write func(w io.Writer)) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	write(zw)
	zw.Close()
	return out.Bytes()
}

// ELF64 constants (System V ABI, ELF-64 Object File Format).
const (
	ehdrSize        = 64
	shdrSize        = 64
	chdrSize        = 24
	shtProgbits     = 1
	shtStrtab       = 3
	shfCompressed   = 0x800
	elfCompressZlib = 1
)

// Module is a relocatable ELF object (ET_REL, x86-64) with a .modinfo
// section holding modinfo, as a kernel module's.
func Module(modinfo []byte) []byte {
	return module(modinfo, 0, 0)
}

// CompressedModule is a module whose .modinfo is SHF_COMPRESSED: an
// Elf64_Chdr declaring declared bytes, then zlibData.
func CompressedModule(zlibData []byte, declared uint64) []byte {
	chdr := make([]byte, chdrSize)
	binary.LittleEndian.PutUint32(chdr[0:], elfCompressZlib)
	binary.LittleEndian.PutUint64(chdr[8:], declared)
	binary.LittleEndian.PutUint64(chdr[16:], 1)
	return module(append(chdr, zlibData...), shfCompressed, 1)
}

func module(section []byte, flags uint64, align uint64) []byte {
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	var b bytes.Buffer
	b.Write(make([]byte, ehdrSize))
	modOff := b.Len()
	b.Write(section)
	strOff := b.Len()
	b.Write(shstr)
	for b.Len()%8 != 0 {
		b.WriteByte(0)
	}
	shOff := b.Len()
	sh := func(name, typ uint32, flags, off, size, align uint64) {
		h := make([]byte, shdrSize)
		binary.LittleEndian.PutUint32(h[0:], name)
		binary.LittleEndian.PutUint32(h[4:], typ)
		binary.LittleEndian.PutUint64(h[8:], flags)
		binary.LittleEndian.PutUint64(h[24:], off)
		binary.LittleEndian.PutUint64(h[32:], size)
		binary.LittleEndian.PutUint64(h[48:], align)
		b.Write(h)
	}
	sh(0, 0, 0, 0, 0, 0)
	sh(1, shtProgbits, flags, uint64(modOff), uint64(len(section)), align)
	sh(10, shtStrtab, 0, uint64(strOff), uint64(len(shstr)), 1)
	out := b.Bytes()
	copy(out, ELFHeader(1))
	binary.LittleEndian.PutUint64(out[0x28:], uint64(shOff))
	binary.LittleEndian.PutUint16(out[0x3a:], shdrSize)
	binary.LittleEndian.PutUint16(out[0x3c:], 3)
	binary.LittleEndian.PutUint16(out[0x3e:], 2)
	return out
}

// ELFHeader is a 64-byte ELF header of type typ (1 relocatable, 2
// executable, 3 shared object) with no sections: the smallest file
// debug/elf reads as ELF.
func ELFHeader(typ uint16) []byte {
	h := make([]byte, ehdrSize)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[0x10:], typ)
	binary.LittleEndian.PutUint16(h[0x12:], 62) // EM_X86_64
	binary.LittleEndian.PutUint32(h[0x14:], 1)
	binary.LittleEndian.PutUint16(h[0x34:], ehdrSize)
	return h
}

// Zlib compresses n zero bytes, streaming.
func ZlibZeros(n int64) []byte {
	var out bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&out, zlib.BestCompression)
	zero := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(zero)))
		zw.Write(zero[:k])
		n -= k
	}
	zw.Close()
	return out.Bytes()
}
