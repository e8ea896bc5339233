package snp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// FuzzDigest: any image the parser accepts must give a digest or an error
// in every mode, never a panic (the metadata drives page counts, offsets
// into the hashes page and the VMSA reset vector).
func FuzzDigest(f *testing.F) {
	seeds := 0
	for _, rel := range []string{"fixtures/snp/ovmf_AmdSev_suffix.bin", "fixtures/snp/ovmf_OvmfX64_suffix.bin"} {
		if b, err := os.ReadFile(filepath.Join(testenv.SharedDir(f), rel)); err == nil {
			f.Add(b, uint8(2))
			seeds++
		}
	}
	if seeds == 0 {
		testenv.Shared(f)
	}
	k, _ := HashKernel(strings.NewReader("k"), nil, "")
	f.Fuzz(func(t *testing.T, img []byte, vcpus uint8) {
		fw, err := ovmf.Parse(img)
		if err != nil || len(img)%pageSize != 0 {
			return
		}
		// Bound the work: sections may describe up to 4 GiB of pages, and
		// the fuzzer minimises each new input with thousands of runs, so
		// keep one run to a few hundred KiB of hashing.
		var pages uint64
		for _, s := range fw.Sections {
			pages += uint64(s.Size) / pageSize
		}
		if pages > 64 {
			return
		}
		n := int(vcpus%8) + 1
		for _, mode := range []Mode{ModeSNP, ModeSEVES, ModeSEV} {
			for _, kh := range []*KernelHashes{nil, &k} {
				l := Launch{Mode: mode, VMM: GCE, VCPUs: n, VCPUSig: 0x800f12, GuestFeatures: 1, Firmware: fw, Image: img, Kernel: kh}
				if d, err := l.Digest(); err == nil && len(d) == 0 {
					t.Fatal("empty digest without an error")
				}
			}
		}
	})
}
