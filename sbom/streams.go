package sbom

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// An initrd is a sequence of segments (Linux init/initramfs.c): each
// compressed segment ends where its decompressor says and the next segment
// starts right after it. The Go decoders read ahead of the end of their
// stream, so the readers here pass exactly one zstd or xz stream's bytes
// through, walking its container format (without decompressing) to find
// where it ends, and check what it declares before a decoder allocates for
// it: a zstd frame's window size, an xz block's LZMA2 dictionary size.

// maxDecoderWindow bounds the history a decoder may hold: a zstd window or
// an LZMA2 dictionary. 128 MiB is the largest zstd window Linux accepts by
// default (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 27) and twice xz -9's dictionary.
const maxDecoderWindow = 128 << 20

// maxStreamParts bounds the frames of one zstd segment and the blocks of
// one xz stream (each at least a few bytes, so the initrd's size bounds
// them too).
const maxStreamParts = 1 << 20

var errStreamParts = fmt.Errorf("more than %d frames or blocks in one compressed segment", maxStreamParts)

// passReader hands on the bytes its walker has decided belong to the
// stream: walk reads headers (through take) and says how many data bytes
// follow (skip), which Read passes on without looking at them.
type passReader struct {
	br   *bufio.Reader
	walk func(p *passReader) (skip int64, done bool, err error)
	// pending is header bytes already read by take, not yet handed on.
	pending []byte
	skip    int64
	done    bool
	err     error
}

func (p *passReader) Read(b []byte) (int, error) {
	for {
		if len(p.pending) > 0 {
			n := copy(b, p.pending)
			p.pending = p.pending[n:]
			return n, nil
		}
		if p.skip > 0 {
			if int64(len(b)) > p.skip {
				b = b[:p.skip]
			}
			n, err := p.br.Read(b)
			p.skip -= int64(n)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if p.err != nil {
			return 0, p.err
		}
		if p.done {
			return 0, io.EOF
		}
		p.skip, p.done, p.err = p.walk(p)
		if p.err != nil {
			// The decoder never sees the header that was refused.
			p.pending, p.skip = nil, 0
		}
	}
}

// take reads n header bytes and queues them to be handed on.
func (p *passReader) take(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return nil, noEOF(err)
	}
	p.pending = append(p.pending, b...)
	return b, nil
}

// zstdSegment passes on the zstd frames (and skippable frames) that start
// at br, up to the first bytes that start neither (RFC 8878 §3.1).
func zstdSegment(br *bufio.Reader) io.Reader {
	frames := 0
	// In a frame: the blocks left to walk.
	inFrame, checksum := false, false
	return &passReader{br: br, walk: func(p *passReader) (int64, bool, error) {
		if inFrame {
			// Block header (RFC 8878 §3.1.1.2): 3 bytes little-endian,
			// bit 0 Last_Block, bits 1–2 Block_Type, bits 3–23 Block_Size.
			h, err := p.take(3)
			if err != nil {
				return 0, false, fmt.Errorf("zstd block header: %w", err)
			}
			v := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			last, typ, size := v&1 == 1, (v>>1)&3, int64(v>>3)
			if size > 128<<10 {
				return 0, false, fmt.Errorf("zstd block of %d bytes: more than the 128 KiB block maximum", size)
			}
			switch typ {
			case 1: // RLE_Block: one byte, repeated Block_Size times.
				size = 1
			case 3:
				return 0, false, errors.New("zstd block of the reserved type")
			}
			if last {
				inFrame = false
				if checksum {
					size += 4 // Content_Checksum
				}
			}
			return size, false, nil
		}
		head, _ := p.br.Peek(4)
		if len(head) < 4 {
			return 0, true, nil
		}
		magic := binary.LittleEndian.Uint32(head)
		if magic&0xfffffff0 != 0x184d2a50 && magic != 0xfd2fb528 {
			return 0, true, nil // the segment ends: other data follows
		}
		if frames++; frames > maxStreamParts {
			return 0, false, errStreamParts
		}
		if magic != 0xfd2fb528 {
			// Skippable frame (§3.1.2): magic, 4-byte size, data.
			h, err := p.take(8)
			if err != nil {
				return 0, false, fmt.Errorf("zstd skippable frame: %w", err)
			}
			return int64(binary.LittleEndian.Uint32(h[4:])), false, nil
		}
		h, err := p.take(5)
		if err != nil {
			return 0, false, fmt.Errorf("zstd frame header: %w", err)
		}
		// Frame_Header_Descriptor (§3.1.1.1.1).
		fhd := h[4]
		if fhd&0x08 != 0 {
			return 0, false, errors.New("zstd frame header: reserved bit set")
		}
		single := fhd&0x20 != 0
		checksum = fhd&0x04 != 0
		dictSize := []int{0, 1, 2, 4}[fhd&3]
		fcsSize := []int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcsSize = 1
		}
		rest := dictSize + fcsSize
		if !single {
			rest++
		}
		b, err := p.take(rest)
		if err != nil {
			return 0, false, fmt.Errorf("zstd frame header: %w", err)
		}
		var window uint64
		if !single {
			// Window_Descriptor (§3.1.1.1.2).
			wd := b[0]
			base := uint64(1) << (10 + wd>>3)
			window = base + base/8*uint64(wd&7)
		} else {
			fcs := b[dictSize:]
			switch fcsSize {
			case 1:
				window = uint64(fcs[0])
			case 2:
				window = uint64(binary.LittleEndian.Uint16(fcs)) + 256
			case 4:
				window = uint64(binary.LittleEndian.Uint32(fcs))
			case 8:
				window = binary.LittleEndian.Uint64(fcs)
			}
		}
		if window > maxDecoderWindow {
			return 0, false, fmt.Errorf("a zstd frame declares a %d MiB window, more than the %d MiB cvmkit decodes with", window>>20, maxDecoderWindow>>20)
		}
		inFrame = true
		return 0, false, nil
	}}
}

// xzCheckSizes is the size of a block's check by the stream's check type
// (xz file format 1.2.0, §2.1.1.2).
var xzCheckSizes = [16]int64{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

// xzStream passes on exactly one xz stream that starts at br (the xz file
// format 1.2.0: stream header, blocks, index, stream footer), walking its
// LZMA2 chunks to find where each block ends, and refusing a block whose
// LZMA2 dictionary is larger than maxDecoderWindow before the decoder
// allocates it.
func xzStream(br *bufio.Reader) io.Reader {
	const (
		header = iota
		block
		lzma2
		blockEnd
		index
		footer
		done
	)
	state, checkSize := header, int64(0)
	var blocks int
	var blockLen int64 // bytes of the current block so far (for its padding)
	return &passReader{br: br, walk: func(p *passReader) (int64, bool, error) {
		switch state {
		case header:
			// Stream Header (§2.1.1): magic, 2 flag bytes, CRC32.
			h, err := p.take(12)
			if err != nil {
				return 0, false, fmt.Errorf("xz stream header: %w", err)
			}
			if !bytes.Equal(h[:6], magicXZ) || h[6] != 0 || h[7]&0xf0 != 0 {
				return 0, false, errors.New("xz stream header: bad magic or flags")
			}
			checkSize = xzCheckSizes[h[7]&0x0f]
			state = block
			return 0, false, nil
		case block:
			// Block Header (§3.1) or the Index Indicator (0x00).
			first, err := p.take(1)
			if err != nil {
				return 0, false, fmt.Errorf("xz block header: %w", err)
			}
			if first[0] == 0 {
				state = index
				return 0, false, nil
			}
			if blocks++; blocks > maxStreamParts {
				return 0, false, errStreamParts
			}
			size := (int(first[0]) + 1) * 4
			h, err := p.take(size - 1)
			if err != nil {
				return 0, false, fmt.Errorf("xz block header: %w", err)
			}
			if err := xzBlockFilters(h[:len(h)-4]); err != nil {
				return 0, false, err
			}
			blockLen = int64(size)
			state = lzma2
			return 0, false, nil
		case lzma2:
			// LZMA2 chunks: a control byte, then sizes, then data.
			c, err := p.take(1)
			if err != nil {
				return 0, false, fmt.Errorf("xz LZMA2 chunk: %w", err)
			}
			blockLen++
			switch ctl := c[0]; {
			case ctl == 0:
				state = blockEnd
				return 0, false, nil
			case ctl == 1 || ctl == 2:
				s, err := p.take(2)
				if err != nil {
					return 0, false, fmt.Errorf("xz LZMA2 chunk: %w", err)
				}
				n := int64(binary.BigEndian.Uint16(s)) + 1
				blockLen += 2 + n
				return n, false, nil
			case ctl >= 0x80:
				hdr := 4
				if (ctl>>5)&3 >= 2 {
					hdr++ // a properties byte follows the sizes
				}
				s, err := p.take(hdr)
				if err != nil {
					return 0, false, fmt.Errorf("xz LZMA2 chunk: %w", err)
				}
				n := int64(binary.BigEndian.Uint16(s[2:])) + 1
				blockLen += int64(hdr) + n
				return n, false, nil
			default:
				return 0, false, fmt.Errorf("xz LZMA2 chunk with the invalid control byte %#x", ctl)
			}
		case blockEnd:
			// Block Padding to a multiple of 4, then the Check.
			state = block
			return (4-blockLen%4)%4 + checkSize, false, nil
		case index:
			// Index (§4): the indicator (read), the number of records and
			// the records as multibyte integers, padding, CRC32.
			n := int64(1)
			records, w, err := xzVarint(p)
			if err != nil {
				return 0, false, err
			}
			n += w
			if records > maxStreamParts {
				return 0, false, errStreamParts
			}
			for i := uint64(0); i < 2*records; i++ {
				_, w, err := xzVarint(p)
				if err != nil {
					return 0, false, err
				}
				n += w
			}
			state = footer
			return (4-n%4)%4 + 4, false, nil
		case footer:
			// Stream Footer (§2.1.2): CRC32, backward size, flags, "YZ".
			f, err := p.take(12)
			if err != nil {
				return 0, false, fmt.Errorf("xz stream footer: %w", err)
			}
			if f[10] != 'Y' || f[11] != 'Z' {
				return 0, false, errors.New("xz stream footer: bad magic")
			}
			state = done
		}
		return 0, true, nil
	}}
}

// xzBlockFilters reads a block header's flags and filter flags (after its
// size byte, without padding and CRC32) and refuses an LZMA2 dictionary
// over maxDecoderWindow.
func xzBlockFilters(h []byte) error {
	r := bytes.NewReader(h)
	flags, err := r.ReadByte()
	if err != nil {
		return errors.New("xz block header: truncated")
	}
	if flags&0x40 != 0 {
		if _, err := binary.ReadUvarint(r); err != nil {
			return errors.New("xz block header: bad compressed size")
		}
	}
	if flags&0x80 != 0 {
		if _, err := binary.ReadUvarint(r); err != nil {
			return errors.New("xz block header: bad uncompressed size")
		}
	}
	for i := 0; i <= int(flags&3); i++ {
		id, err1 := binary.ReadUvarint(r)
		n, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || n > uint64(r.Len()) {
			return errors.New("xz block header: bad filter flags")
		}
		props := make([]byte, n)
		r.Read(props)
		if id == 0x21 { // LZMA2: one byte of dictionary size (§5.3.1)
			if n != 1 || props[0] > 40 {
				return errors.New("xz block header: bad LZMA2 properties")
			}
			bits := uint64(props[0])
			dict := uint64(2|bits&1) << (bits/2 + 11)
			if bits == 40 {
				dict = 1<<32 - 1
			}
			if dict > maxDecoderWindow {
				return fmt.Errorf("an xz block declares a %d MiB LZMA2 dictionary, more than the %d MiB cvmkit decodes with", dict>>20, maxDecoderWindow>>20)
			}
		}
	}
	return nil
}

// xzVarint reads an xz multibyte integer (§1.2: at most 9 bytes) through p,
// returning it and its length.
func xzVarint(p *passReader) (uint64, int64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := p.take(1)
		if err != nil {
			return 0, 0, fmt.Errorf("xz index: %w", err)
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return v, int64(i + 1), nil
		}
	}
	return 0, 0, errors.New("xz index: a multibyte integer longer than 9 bytes")
}
