package build

import (
	"hash"
	"sync"
	"sync/atomic"
)

// fanHash is an io.Writer that feeds every write to several hashes, each
// in its own goroutine, so that hashing an output for the lock runs on the
// other cores while the caller's own pass (dm-verity) continues.
type fanHash struct {
	chs  []chan *fanBuf
	hs   []hash.Hash
	wg   sync.WaitGroup
	pool sync.Pool
	n    int64
}

type fanBuf struct {
	b    []byte
	refs atomic.Int32
}

func newFanHash(hs ...hash.Hash) *fanHash {
	f := &fanHash{hs: hs}
	for _, h := range hs {
		ch := make(chan *fanBuf, 8)
		f.chs = append(f.chs, ch)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for fb := range ch {
				h.Write(fb.b)
				if fb.refs.Add(-1) == 0 {
					f.pool.Put(fb)
				}
			}
		}()
	}
	return f
}

// Write copies p once and hands the copy to every hash.
func (f *fanHash) Write(p []byte) (int, error) {
	fb, _ := f.pool.Get().(*fanBuf)
	if fb == nil {
		fb = &fanBuf{}
	}
	fb.b = append(fb.b[:0], p...)
	fb.refs.Store(int32(len(f.chs)))
	for _, ch := range f.chs {
		ch <- fb
	}
	f.n += int64(len(p))
	return len(p), nil
}

// Close waits for the hashes and returns their sums, in order.
func (f *fanHash) Close() [][]byte {
	for _, ch := range f.chs {
		close(ch)
	}
	f.wg.Wait()
	out := make([][]byte, len(f.hs))
	for i, h := range f.hs {
		out[i] = h.Sum(nil)
	}
	return out
}
