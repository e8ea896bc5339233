// Package verity computes a dm-verity hash tree (format version 1, "hash
// type 1", SHA-256, 4 KiB data and hash blocks) exactly as veritysetup
// format writes it, so that the kernel's verity target accepts the tree and
// the root hash on the kernel command line binds every byte of the root
// filesystem.
//
// References: Linux Documentation/admin-guide/device-mapper/verity.rst
// (hash type 1, on-disk format); cryptsetup lib/verity/verity_hash.c and
// verity.c (superblock, level layout: the top level first, the leaves last).
package verity

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
)

// BlockSize is the data and hash block size.
const BlockSize = 4096

// hashesPerBlock is how many SHA-256 digests fit in one hash block.
const hashesPerBlock = BlockSize / sha256.Size

// Params choose the salt, the UUID and whether a superblock precedes the
// tree. cvmkit derives salt and UUID from the content (DeriveSalt) so that
// rebuilding gives the same bytes; veritysetup draws them at random unless
// told.
type Params struct {
	Salt       []byte
	UUID       [16]byte
	Superblock bool
}

// Result describes a computed tree.
type Result struct {
	RootHash   [sha256.Size]byte
	DataBlocks uint64
	// HashSize is the size of the hash area: superblock block (if any) and tree.
	HashSize int64
	// HashStartBlock is where the tree starts in the hash area, in blocks: 1
	// with a superblock, 0 without (dm-verity's hash_start for a tree in its
	// own device; add the data blocks for an appended tree).
	HashStartBlock uint64
	Levels         int
}

// levels returns the number of hash blocks of each level, leaves first.
// N = 1 has no level: the root hash is the hash of the only data block.
func levels(n uint64) []uint64 {
	if n == 1 {
		return nil
	}
	var ls []uint64
	for blocks := n; blocks > 1 || len(ls) == 0; {
		blocks = (blocks + hashesPerBlock - 1) / hashesPerBlock
		ls = append(ls, blocks)
	}
	return ls
}

// Build reads size bytes of data (a multiple of BlockSize) from data and
// writes the hash area to w at offset base: the superblock (when
// p.Superblock) padded to one block, then the tree's levels from the top one
// down to the leaves. Memory stays at one block per level plus a 4 MiB
// chunk of data, whose blocks are hashed on every core.
func Build(data io.Reader, size int64, p Params, w io.WriterAt, base int64) (Result, error) {
	var res Result
	if size <= 0 || size%BlockSize != 0 {
		return res, fmt.Errorf("data is %d bytes, not a positive multiple of %d", size, BlockSize)
	}
	if len(p.Salt) > 256 {
		return res, errors.New("a dm-verity salt has at most 256 bytes")
	}
	n := uint64(size / BlockSize)
	ls := levels(n)
	res.DataBlocks, res.Levels = n, len(ls)
	if p.Superblock {
		res.HashStartBlock = 1
	}
	// Level i starts after the superblock and every level above it.
	start := make([]int64, len(ls))
	off := int64(res.HashStartBlock) * BlockSize
	for i := len(ls) - 1; i >= 0; i-- {
		start[i] = off
		off += int64(ls[i]) * BlockSize
	}
	res.HashSize = off

	if p.Superblock {
		if _, err := w.WriteAt(superblock(p, n), base); err != nil {
			return res, err
		}
	}
	t := &tree{salt: p.Salt, w: w, base: base, start: start, h: sha256.New(),
		cur: make([][]byte, len(ls)), fill: make([]int, len(ls)), written: make([]int64, len(ls))}
	for i := range t.cur {
		t.cur[i] = make([]byte, BlockSize)
	}
	if len(ls) == 0 { // one data block: no tree, its hash is the root
		block := make([]byte, BlockSize)
		if _, err := io.ReadFull(data, block); err != nil {
			return res, fmt.Errorf("reading data block 0: %w", err)
		}
		res.RootHash = t.digest(block)
		return res, nil
	}
	// The leaves are nearly all the work: hash each chunk's blocks on every
	// core, then push the digests in order (the result does not depend on
	// the number of workers).
	workers := runtime.GOMAXPROCS(0)
	hs := make([]hash.Hash, workers)
	for i := range hs {
		hs[i] = sha256.New()
	}
	chunk := make([]byte, chunkBlocks*BlockSize)
	digests := make([][sha256.Size]byte, chunkBlocks)
	for b := uint64(0); b < n; {
		k := min(uint64(chunkBlocks), n-b)
		if _, err := io.ReadFull(data, chunk[:k*BlockSize]); err != nil {
			return res, fmt.Errorf("reading data blocks %d to %d: %w", b, b+k-1, err)
		}
		hashBlocks(hs, p.Salt, chunk[:k*BlockSize], digests[:k])
		for _, d := range digests[:k] {
			if err := t.push(0, d); err != nil {
				return res, err
			}
		}
		b += k
	}
	// Flush the partial blocks, lowest level first; each flush pushes a
	// digest into the level above, and the top level's flush sets the root.
	for i := range ls {
		if t.fill[i] > 0 {
			if err := t.flush(i); err != nil {
				return res, err
			}
		}
	}
	res.RootHash = t.root
	return res, nil
}

// chunkBlocks is how many data blocks are read and hashed at once.
const chunkBlocks = 1024

// hashBlocks sets out[i] to H(salt ‖ block i of data), splitting the
// blocks among the hashes in hs, one goroutine each.
func hashBlocks(hs []hash.Hash, salt, data []byte, out [][sha256.Size]byte) {
	per := (len(out) + len(hs) - 1) / len(hs)
	var wg sync.WaitGroup
	for w := 0; w*per < len(out); w++ {
		lo, hi := w*per, min((w+1)*per, len(out))
		wg.Add(1)
		go func(h hash.Hash) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				h.Reset()
				h.Write(salt)
				h.Write(data[i*BlockSize : (i+1)*BlockSize])
				h.Sum(out[i][:0])
			}
		}(hs[w])
	}
	wg.Wait()
}

// tree builds the levels as a stream: one block per level in memory,
// written to its place when full.
type tree struct {
	salt    []byte
	w       io.WriterAt
	base    int64
	start   []int64  // offset of each level in the hash area
	cur     [][]byte // the block being filled at each level
	fill    []int    // digests in cur[i]
	written []int64  // blocks written at each level
	h       hash.Hash
	root    [sha256.Size]byte
}

// digest is H(salt ‖ block) (hash type 1: the salt first).
func (t *tree) digest(block []byte) [sha256.Size]byte {
	var d [sha256.Size]byte
	t.h.Reset()
	t.h.Write(t.salt)
	t.h.Write(block)
	t.h.Sum(d[:0])
	return d
}

func (t *tree) push(i int, d [sha256.Size]byte) error {
	copy(t.cur[i][t.fill[i]*sha256.Size:], d[:])
	t.fill[i]++
	if t.fill[i] < hashesPerBlock {
		return nil
	}
	return t.flush(i)
}

// flush writes level i's block (zero-padded) and pushes its digest one
// level up, or makes it the root for the top level's only block.
func (t *tree) flush(i int) error {
	if _, err := t.w.WriteAt(t.cur[i], t.base+t.start[i]+t.written[i]*BlockSize); err != nil {
		return err
	}
	t.written[i]++
	d := t.digest(t.cur[i])
	t.fill[i] = 0
	clear(t.cur[i])
	if i+1 < len(t.cur) {
		return t.push(i+1, d)
	}
	t.root = d
	return nil
}

// superblock is the 512-byte veritysetup superblock padded to a block.
func superblock(p Params, n uint64) []byte {
	b := make([]byte, BlockSize)
	copy(b, "verity\x00\x00")
	binary.LittleEndian.PutUint32(b[8:], 1)  // version
	binary.LittleEndian.PutUint32(b[12:], 1) // hash type
	copy(b[16:], p.UUID[:])
	copy(b[32:], "sha256")
	binary.LittleEndian.PutUint32(b[64:], BlockSize)
	binary.LittleEndian.PutUint32(b[68:], BlockSize)
	binary.LittleEndian.PutUint64(b[72:], n)
	binary.LittleEndian.PutUint16(b[80:], uint16(len(p.Salt)))
	copy(b[88:], p.Salt)
	return b
}

// DeriveSalt and DeriveUUID make the salt and UUID from a digest of the
// image's inputs, so that the same inputs give the same tree while images
// built from other inputs get other salts.
func DeriveSalt(contentDigest []byte) []byte {
	s := sha256.Sum256(append([]byte("cvmkit dm-verity salt v1\x00"), contentDigest...))
	return s[:]
}

// DeriveUUID is an RFC 9562 version-8 (custom) UUID from the same digest.
func DeriveUUID(contentDigest []byte) [16]byte {
	s := sha256.Sum256(append([]byte("cvmkit dm-verity uuid v1\x00"), contentDigest...))
	var u [16]byte
	copy(u[:], s[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}
