package encrypt

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// The streaming AEAD parameters of Tink's AES256_GCM_HKDF_1MB key template
// (Tink "Streaming AEAD" wire format, AesGcmHkdfStreaming): 32-byte derived
// keys from HKDF-SHA256, 1 MiB ciphertext segments, 7-byte nonce prefixes,
// 16-byte GCM tags, and a header of {u8 header length, salt[32], nonce
// prefix[7]} in front of the first segment.
const (
	SegmentSize     = 1 << 20
	keySize         = 32
	noncePrefixSize = 7
	tagSize         = 16
	HeaderSize      = 1 + keySize + noncePrefixSize // 40
	// firstPlainSize and plainSize are the plaintext bytes per segment.
	firstPlainSize = SegmentSize - HeaderSize - tagSize
	plainSize      = SegmentSize - tagSize
	// maxSegments: the segment number is a 32-bit counter in the nonce.
	maxSegments = 1<<32 - 1
)

// ErrAuth is wrapped by every error that means the ciphertext is not what
// was encrypted under this key and associated data: a flipped bit, a
// truncation, appended or reordered segments, another file's ciphertext,
// a wrong key.
var ErrAuth = errors.New("authentication failed: wrong key, wrong file, or tampered ciphertext")

// segmentKey derives the AES-256 key of one file: HKDF-SHA256(ikm = the
// data key, salt = the header's salt, info = associated data).
func segmentKey(ikm, salt, ad []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, ikm, salt, string(ad), keySize)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// nonce is prefix ‖ BE32(segment) ‖ u8 last.
func nonce(prefix []byte, seg uint32, last bool) [12]byte {
	var n [12]byte
	copy(n[:], prefix)
	binary.BigEndian.PutUint32(n[noncePrefixSize:], seg)
	if last {
		n[11] = 1
	}
	return n
}

// CiphertextSize returns the ciphertext size for a plaintext of n bytes.
func CiphertextSize(n int64) int64 {
	if n <= firstPlainSize {
		return HeaderSize + n + tagSize
	}
	rest := n - firstPlainSize
	segs := (rest + plainSize - 1) / plainSize
	return SegmentSize + rest + segs*tagSize
}

// PlaintextSize returns the plaintext size of a ciphertext of n bytes, or
// an error when no plaintext encrypts to that size (a truncated or extended
// file).
func PlaintextSize(n int64) (int64, error) {
	if n < HeaderSize+tagSize {
		return 0, fmt.Errorf("%w: ciphertext of %d bytes is shorter than a header and one tag", ErrAuth, n)
	}
	if n <= SegmentSize {
		return n - HeaderSize - tagSize, nil
	}
	rest := n - SegmentSize
	segs := (rest + SegmentSize - 1) / SegmentSize
	last := rest - (segs-1)*SegmentSize
	if last < tagSize {
		return 0, fmt.Errorf("%w: ciphertext of %d bytes ends inside a segment tag (truncated or extended)", ErrAuth, n)
	}
	return firstPlainSize + rest - segs*tagSize, nil
}

// Stats describes one encrypted or decrypted stream.
type Stats struct {
	PlainSize    int64
	CipherSize   int64
	PlainSHA256  [32]byte
	CipherSHA256 [32]byte
}

// Options tune the parallel engine. The zero value uses every CPU.
type Options struct {
	// Workers is how many segments are sealed or opened at once; 0 means
	// GOMAXPROCS.
	Workers int
	// Progress, when set, is called with the number of plaintext bytes
	// done, from one goroutine at a time.
	Progress func(n int64)
	// Rand is the source of the salt and nonce prefix; nil means
	// crypto/rand. Tests set it for fixed vectors.
	Rand io.Reader
	// Deterministic derives each file's salt and nonce prefix from the data
	// key, the associated data (release and path) and the plaintext's
	// SHA-256 instead of drawing them (EncryptModel reads each file twice).
	// The same weights, release and key then give the same bytes, which a
	// reproducible release needs; the cost is that equal plaintexts under the
	// same key, release and path are recognisable as equal.
	Deterministic bool
	// PlainSHA256, when set, is the plaintext's SHA-256 already computed
	// (EncryptModel's deterministic pre-pass): Encrypt reports it instead of
	// hashing the plaintext a second time. The caller checks that the input
	// did not change in between.
	PlainSHA256 *[32]byte
}

// DeterministicHeader is the salt and nonce prefix of a deterministic
// encryption: HKDF-SHA256 (RFC 5869) with the data key as input key
// material, no salt, and info "cvmkit deterministic header v1" || u32be
// len(ad) || ad || SHA-256(plaintext), 39 bytes.
func DeterministicHeader(ikm, ad []byte, plainSHA256 [32]byte) ([]byte, error) {
	info := []byte("cvmkit deterministic header v1")
	info = binary.BigEndian.AppendUint32(info, uint32(len(ad)))
	info = append(info, ad...)
	info = append(info, plainSHA256[:]...)
	return hkdf.Key(sha256.New, ikm, nil, string(info), HeaderSize-1)
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// job is one segment in flight. Its plaintext buffer is used by the worker
// that seals it and by the plaintext hash lane, its ciphertext buffer by the
// writer and the ciphertext hash lane: each returns to the pool when the
// last of its users is done with it.
type job struct {
	seg     uint32
	last    bool
	n       int // plaintext bytes
	in      []byte
	out     []byte
	done    chan struct{}
	inRefs  atomic.Int32
	outRefs atomic.Int32
}

// Encrypt reads plaintext from src and writes it to dst in Tink's
// AES-GCM-HKDF streaming format under the data key ikm (32 bytes) and
// associated data ad. Segments are sealed by opts.Workers goroutines while
// one goroutine reads and another writes in order; the plaintext and the
// ciphertext are each hashed on a goroutine of their own (hash lanes), so
// that neither SHA-256 stream holds up reading or writing: on two cores the
// two digests run side by side and AES-GCM and the I/O fill the gaps.
// Memory stays at a few segments per worker whatever the size of the input.
func Encrypt(ctx context.Context, dst io.Writer, src io.Reader, ikm, ad []byte, opts Options) (Stats, error) {
	var st Stats
	if len(ikm) != keySize {
		return st, fmt.Errorf("data key has %d bytes, want %d", len(ikm), keySize)
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	header := make([]byte, HeaderSize)
	header[0] = HeaderSize
	if _, err := io.ReadFull(rnd, header[1:]); err != nil {
		return st, fmt.Errorf("drawing the salt and nonce prefix: %w", err)
	}
	aead, err := segmentKey(ikm, header[1:1+keySize], ad)
	if err != nil {
		return st, err
	}
	prefix := header[1+keySize:]

	if _, err := dst.Write(header); err != nil {
		return st, err
	}
	st.CipherSize = HeaderSize

	w := opts.workers()
	// A fixed set of segment buffers, reused for the whole stream: memory is
	// bounded by the pipeline's depth, and no page is faulted in twice.
	pool := newBufPool(4*w+6, SegmentSize)
	releaseIn := func(j *job) { pool.release(&j.inRefs, j.in) }
	releaseOut := func(j *job) { pool.release(&j.outRefs, j.out) }
	var plain *hashLane
	if opts.PlainSHA256 == nil {
		plain = newHashLane(2 * w)
	}
	cipherLane := newHashLane(2 * w)
	cipherLane.add(header, nil)
	order := make(chan *job, 2*w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs, wait := startWorkers(w, func(j *job) {
		n := nonce(prefix, j.seg, j.last)
		j.out = aead.Seal(j.out[:0], n[:], j.in, nil)
		close(j.done)
		releaseIn(j)
	})
	// Reader: one segment of lookahead decides which segment is the last.
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		var pending *job
		dispatch := func(j *job) {
			jobs <- j
			order <- j
		}
		for seg := uint64(0); ; seg++ {
			if ctx.Err() != nil {
				readErr <- ctx.Err()
				return
			}
			size := plainSize
			if seg == 0 {
				size = firstPlainSize
			}
			buf := pool.get()[:size]
			n, err := io.ReadFull(src, buf)
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				pool.put(buf)
				readErr <- fmt.Errorf("reading plaintext: %w", err)
				return
			}
			if pending != nil {
				pending.last = n == 0
				dispatch(pending)
				if n == 0 {
					pool.put(buf)
					readErr <- nil
					return
				}
			}
			if seg >= maxSegments {
				pool.put(buf)
				readErr <- errors.New("plaintext is too large for the streaming format (2^32 segments)")
				return
			}
			j := &job{seg: uint32(seg), n: n, in: buf[:n], out: pool.get()[:0], done: make(chan struct{})}
			j.inRefs.Store(1)
			if plain != nil {
				j.inRefs.Add(1)
				plain.add(j.in, func() { releaseIn(j) })
			}
			pending = j
			if n < size { // short read: this is the last segment (also for an empty input)
				pending.last = true
				dispatch(pending)
				readErr <- nil
				return
			}
		}
	}()
	var werr error
	for j := range order {
		<-j.done
		if werr != nil {
			pool.put(j.out)
			continue
		}
		j.outRefs.Store(2)
		cipherLane.add(j.out, func() { releaseOut(j) })
		if _, err := dst.Write(j.out); err != nil {
			werr = err
			cancel()
		} else {
			st.CipherSize += int64(len(j.out))
			st.PlainSize += int64(j.n)
			if opts.Progress != nil {
				opts.Progress(int64(j.n))
			}
		}
		releaseOut(j)
	}
	wait()
	if plain != nil {
		plain.sum(st.PlainSHA256[:0])
	}
	cipherLane.sum(st.CipherSHA256[:0])
	if err := <-readErr; err != nil {
		return st, err
	}
	if werr != nil {
		return st, fmt.Errorf("writing ciphertext: %w", werr)
	}
	if opts.PlainSHA256 != nil {
		st.PlainSHA256 = *opts.PlainSHA256
	}
	return st, nil
}

// hashLane hashes byte slices on a goroutine of its own, in the order they
// are added, and calls each one's release function once it is hashed: a
// stream's SHA-256 (about 0.6 s per GiB) then runs beside the goroutine that
// reads or writes the stream instead of inside it.
type hashLane struct {
	h    hash.Hash
	q    chan laneItem
	done chan struct{}
}

type laneItem struct {
	b       []byte
	release func()
}

func newHashLane(depth int) *hashLane {
	l := &hashLane{h: sha256.New(), q: make(chan laneItem, depth), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for it := range l.q {
			l.h.Write(it.b)
			if it.release != nil {
				it.release()
			}
		}
	}()
	return l
}

func (l *hashLane) add(b []byte, release func()) { l.q <- laneItem{b, release} }

// sum waits for everything added and appends the digest to b.
func (l *hashLane) sum(b []byte) []byte {
	close(l.q)
	<-l.done
	return l.h.Sum(b)
}

// Reader decrypts a ciphertext with random access: ReadAt decrypts only the
// segments it touches. It is safe for concurrent use.
type Reader struct {
	src      io.ReaderAt
	size     int64 // plaintext size
	ctSize   int64
	segments int64
	aead     cipher.AEAD
	prefix   []byte

	mu     sync.Mutex
	cached int64 // segment number in buf, -1 for none
	buf    []byte
}

// NewReader checks the header of the ciphertext (ctSize bytes readable from
// src) and derives its key from the data key ikm and the associated data.
func NewReader(src io.ReaderAt, ctSize int64, ikm, ad []byte) (*Reader, error) {
	if len(ikm) != keySize {
		return nil, fmt.Errorf("data key has %d bytes, want %d", len(ikm), keySize)
	}
	size, err := PlaintextSize(ctSize)
	if err != nil {
		return nil, err
	}
	var header [HeaderSize]byte
	if _, err := src.ReadAt(header[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	if header[0] != HeaderSize {
		return nil, fmt.Errorf("%w: header length byte is %d, want %d (not an AES256_GCM_HKDF ciphertext?)", ErrAuth, header[0], HeaderSize)
	}
	aead, err := segmentKey(ikm, header[1:1+keySize], ad)
	if err != nil {
		return nil, err
	}
	r := &Reader{src: src, size: size, ctSize: ctSize, aead: aead, prefix: append([]byte(nil), header[1+keySize:]...), cached: -1}
	r.segments = 1
	if ctSize > SegmentSize {
		r.segments = 1 + (ctSize-SegmentSize+SegmentSize-1)/SegmentSize
	}
	return r, nil
}

// Size is the plaintext size.
func (r *Reader) Size() int64 { return r.size }

// Segments is the number of segments.
func (r *Reader) Segments() int64 { return r.segments }

// segmentRange returns where segment i's ciphertext lies.
func (r *Reader) segmentRange(i int64) (off, n int64) {
	if i == 0 {
		return HeaderSize, min(SegmentSize, r.ctSize) - HeaderSize
	}
	off = i * SegmentSize
	return off, min(SegmentSize, r.ctSize-off)
}

// plainOffset is where segment i's plaintext starts.
func plainOffset(i int64) int64 {
	if i == 0 {
		return 0
	}
	return firstPlainSize + (i-1)*plainSize
}

// decryptSegment opens segment i into dst (which must hold SegmentSize
// bytes of capacity) using ct as scratch for the ciphertext.
func (r *Reader) decryptSegment(i int64, ct, dst []byte) ([]byte, error) {
	off, n := r.segmentRange(i)
	ct = ct[:n]
	if _, err := r.src.ReadAt(ct, off); err != nil && !(err == io.EOF && off+n == r.ctSize) {
		return nil, fmt.Errorf("reading segment %d: %w", i, err)
	}
	nc := nonce(r.prefix, uint32(i), i == r.segments-1)
	pt, err := r.aead.Open(dst[:0], nc[:], ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w (segment %d of %d)", ErrAuth, i, r.segments)
	}
	return pt, nil
}

// ReadAt decrypts len(p) plaintext bytes at off.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		seg := int64(0)
		if pos >= firstPlainSize {
			seg = 1 + (pos-firstPlainSize)/plainSize
		}
		r.mu.Lock()
		if r.cached != seg {
			if r.buf == nil {
				r.buf = make([]byte, 2*SegmentSize)
			}
			pt, err := r.decryptSegment(seg, r.buf[SegmentSize:], r.buf[:SegmentSize])
			if err != nil {
				r.cached = -1
				r.mu.Unlock()
				return n, err
			}
			r.buf = r.buf[:SegmentSize+len(pt)] // remember the plaintext length
			r.cached = seg
		}
		pt := r.buf[:len(r.buf)-SegmentSize]
		n += copy(p[n:], pt[pos-plainOffset(seg):])
		r.mu.Unlock()
	}
	return n, nil
}

// DecryptTo decrypts the whole ciphertext into dst, opening segments on
// opts.Workers goroutines and writing them in order, and returns the
// plaintext digest. Nothing after the first segment that fails to
// authenticate is written.
func (r *Reader) DecryptTo(ctx context.Context, dst io.Writer, opts Options) (Stats, error) {
	st := Stats{CipherSize: r.ctSize}
	w := opts.workers()
	type djob struct {
		seg  int64
		pt   []byte
		err  error
		done chan struct{}
		buf  []byte
		refs atomic.Int32 // the writer and the hash lane
	}
	pool := newBufPool(4*w+4, 2*SegmentSize)
	release := func(j *djob) { pool.release(&j.refs, j.buf) }
	order := make(chan *djob, 2*w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs, wait := startWorkers(w, func(j *djob) {
		j.pt, j.err = r.decryptSegment(j.seg, j.buf[SegmentSize:], j.buf[:SegmentSize])
		close(j.done)
	})
	go func() {
		defer close(order)
		defer close(jobs)
		for i := int64(0); i < r.segments; i++ {
			if ctx.Err() != nil {
				return
			}
			j := &djob{seg: i, done: make(chan struct{}), buf: pool.get()}
			jobs <- j
			order <- j
		}
	}()
	// The plaintext is hashed on its own goroutine while the writer writes.
	plain := newHashLane(2 * w)
	var err error
	for j := range order {
		<-j.done
		if err != nil || j.err != nil {
			if err == nil {
				err = j.err
				cancel()
			}
			pool.put(j.buf)
			continue
		}
		j.refs.Store(2)
		plain.add(j.pt, func() { release(j) })
		if _, werr := dst.Write(j.pt); werr != nil {
			err = fmt.Errorf("writing plaintext: %w", werr)
			cancel()
		} else {
			st.PlainSize += int64(len(j.pt))
			if opts.Progress != nil {
				opts.Progress(int64(len(j.pt)))
			}
		}
		release(j)
	}
	wait()
	plain.sum(st.PlainSHA256[:0])
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return st, err
	}
	return st, nil
}

// bufPool hands out at most n buffers of size bytes, allocating them on
// first use and blocking when all are in use. Unlike sync.Pool it is not
// emptied by the garbage collector, so a long stream reuses the same memory.
type bufPool struct {
	free chan []byte
	made chan struct{}
	size int
}

func newBufPool(n, size int) *bufPool {
	return &bufPool{free: make(chan []byte, n), made: make(chan struct{}, n), size: size}
}

func (p *bufPool) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	select {
	case b := <-p.free:
		return b
	case p.made <- struct{}{}:
		return make([]byte, p.size)
	}
}

func (p *bufPool) put(b []byte) { p.free <- b[:cap(b)] }

// release drops one of b's users (counted in refs); the last one returns b
// to the pool.
func (p *bufPool) release(refs *atomic.Int32, b []byte) {
	if refs.Add(-1) == 0 {
		p.put(b)
	}
}

// startWorkers runs work on w goroutines for every job sent on jobs; after
// jobs is closed, wait returns when they have all finished. Callers keep a
// second channel of the same jobs in submission order to write results in
// order.
func startWorkers[J any](w int, work func(J)) (jobs chan J, wait func()) {
	jobs = make(chan J, w)
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				work(j)
			}
		}()
	}
	return jobs, wg.Wait
}
