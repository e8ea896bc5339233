package verity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if need := int(off) + len(p); need > len(m.b) {
		m.b = append(m.b, make([]byte, need-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestMatchesVeritysetup: for data of 1, 2, 127, 128, 129 and 16385 blocks
// (0, 1, 1, 1, 2 and 3 levels), the tree and the root hash equal
// veritysetup format's, with and without a superblock, and veritysetup
// verify accepts them and rejects a changed data byte.
func TestMatchesVeritysetup(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup", "apt-get install cryptsetup-bin")
	dir := t.TempDir()
	salt := DeriveSalt([]byte("test"))
	uuid := DeriveUUID([]byte("test"))
	for _, n := range []int{1, 2, 127, 128, 129, 16385} {
		data := make([]byte, n*BlockSize)
		rand.Read(data)
		dataPath := filepath.Join(dir, fmt.Sprintf("data-%d", n))
		os.WriteFile(dataPath, data, 0o644)
		for _, sb := range []bool{false, true} {
			name := fmt.Sprintf("%d blocks, superblock %v", n, sb)
			var got memWriterAt
			res, err := Build(bytes.NewReader(data), int64(len(data)), Params{Salt: salt, UUID: uuid, Superblock: sb}, &got, 0)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			hashPath := filepath.Join(dir, fmt.Sprintf("hash-%d-%v", n, sb))
			os.WriteFile(hashPath, nil, 0o644)
			args := []string{"format", "--data-block-size=4096", "--hash-block-size=4096", "--hash=sha256", "--salt=" + hex.EncodeToString(salt)}
			if sb {
				args = append(args, "--uuid="+uuidString(uuid))
			} else {
				args = append(args, "--no-superblock")
			}
			out, err := exec.Command(vs, append(args, dataPath, hashPath)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: veritysetup format: %v\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "Root hash:") || !strings.Contains(string(out), hex.EncodeToString(res.RootHash[:])) {
				t.Fatalf("%s: root hash %x, veritysetup says\n%s", name, res.RootHash, out)
			}
			want, _ := os.ReadFile(hashPath)
			if n == 1 && !sb {
				want = nil // no tree
			}
			if !bytes.Equal(got.b, want) || int64(len(got.b)) != res.HashSize {
				t.Fatalf("%s: hash area differs from veritysetup's (%d vs %d bytes)", name, len(got.b), len(want))
			}
			vargs := []string{"verify"}
			if !sb {
				vargs = append(vargs, "--no-superblock", "--salt="+hex.EncodeToString(salt))
			}
			if out, err := exec.Command(vs, append(vargs, dataPath, hashPath, hex.EncodeToString(res.RootHash[:]))...).CombinedOutput(); err != nil {
				t.Fatalf("%s: veritysetup verify: %v\n%s", name, err, out)
			}
			if sb && n > 1 {
				bad := bytes.Clone(data)
				bad[len(bad)/2] ^= 1
				badPath := dataPath + ".bad"
				os.WriteFile(badPath, bad, 0o644)
				if _, err := exec.Command(vs, "verify", badPath, hashPath, hex.EncodeToString(res.RootHash[:])).CombinedOutput(); err == nil {
					t.Fatalf("%s: veritysetup verify accepted changed data", name)
				}
			}
		}
	}
}

// TestAppended: data ‖ superblock ‖ tree in one file equals veritysetup's
// --hash-offset layout.
func TestAppended(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup", "apt-get install cryptsetup-bin")
	dir := t.TempDir()
	data := make([]byte, 300*BlockSize)
	rand.Read(data)
	salt, uuid := DeriveSalt([]byte("a")), DeriveUUID([]byte("a"))
	img := &memWriterAt{b: bytes.Clone(data)}
	res, err := Build(bytes.NewReader(data), int64(len(data)), Params{Salt: salt, UUID: uuid, Superblock: true}, img, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "combined")
	os.WriteFile(p, data, 0o644)
	out, err := exec.Command(vs, "format", "--salt="+hex.EncodeToString(salt), "--uuid="+uuidString(uuid), "--data-blocks=300",
		fmt.Sprintf("--hash-offset=%d", len(data)), p, p).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want, _ := os.ReadFile(p)
	if !bytes.Equal(img.b, want) {
		t.Fatal("appended image differs from veritysetup's")
	}
	if res.HashStartBlock != 1 || res.DataBlocks != 300 {
		t.Errorf("result %+v", res)
	}
}

func TestErrors(t *testing.T) {
	if _, err := Build(bytes.NewReader(nil), 100, Params{}, &memWriterAt{}, 0); err == nil {
		t.Error("size not a multiple of 4096 accepted")
	}
	if _, err := Build(bytes.NewReader(make([]byte, 4096)), 8192, Params{}, &memWriterAt{}, 0); err == nil {
		t.Error("short data accepted")
	}
	if _, err := Build(bytes.NewReader(make([]byte, 4096)), 4096, Params{Salt: make([]byte, 300)}, &memWriterAt{}, 0); err == nil {
		t.Error("300-byte salt accepted")
	}
	u := DeriveUUID([]byte("x"))
	if u[6]>>4 != 8 || u[8]>>6 != 2 {
		t.Errorf("UUID %x is not version 8", u)
	}
}

func BenchmarkBuild(b *testing.B) {
	data := make([]byte, 256<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Build(bytes.NewReader(data), int64(len(data)), Params{Salt: DeriveSalt(nil)}, &memWriterAt{}, 0)
	}
}
