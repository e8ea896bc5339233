package snp

import (
	"crypto/sha256"
	"encoding/binary"
	"io"

	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// GUIDs of QEMU's SEV hashes table (target/i386/sev.c, sev_add_kernel_loader_hashes;
// read by edk2 OvmfPkg/AmdSev/BlobVerifierLibSevHashes).
var (
	hashTableHeaderGUID = ovmf.MustGUID("9438d606-4f22-4cc9-b479-a793d411fd21")
	hashCmdlineGUID     = ovmf.MustGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
	hashInitrdGUID      = ovmf.MustGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
	hashKernelGUID      = ovmf.MustGUID("4de79437-abd2-427f-b835-d5b172d2045b")
)

// KernelHashes are the SHA-256 digests QEMU puts in the hashes table when
// it boots with -kernel, -initrd and -append and kernel-hashes=on.
type KernelHashes struct {
	Kernel  [32]byte
	Initrd  [32]byte
	Cmdline [32]byte
}

// HashKernel computes the table entries: SHA-256 of the kernel file as
// given to -kernel, of the initrd (or of nothing, without one), and of the
// command line with its terminating NUL (an absent -append hashes "\x00").
func HashKernel(kernel, initrd io.Reader, cmdline string) (KernelHashes, error) {
	var k KernelHashes
	h := sha256.New()
	if _, err := io.Copy(h, kernel); err != nil {
		return k, err
	}
	h.Sum(k.Kernel[:0])
	h.Reset()
	if initrd != nil {
		if _, err := io.Copy(h, initrd); err != nil {
			return k, err
		}
	}
	h.Sum(k.Initrd[:0])
	k.Cmdline = sha256.Sum256(append([]byte(cmdline), 0))
	return k, nil
}

// hashTableSize is the packed table (168 bytes) padded to a multiple of 16,
// as QEMU measures it.
const hashTableSize = 176

// Table returns the padded hashes table:
//
//	{guid header; u16 len = 168;
//	 {guid cmdline; u16 len = 50; sha256}; {guid initrd; …}; {guid kernel; …}}
//
// zero-padded to 176 bytes.
func (k *KernelHashes) Table() [hashTableSize]byte {
	var t [hashTableSize]byte
	copy(t[0:], hashTableHeaderGUID[:])
	binary.LittleEndian.PutUint16(t[16:], 168)
	off := 18
	for _, e := range []struct {
		g ovmf.GUID
		h [32]byte
	}{{hashCmdlineGUID, k.Cmdline}, {hashInitrdGUID, k.Initrd}, {hashKernelGUID, k.Kernel}} {
		copy(t[off:], e.g[:])
		binary.LittleEndian.PutUint16(t[off+16:], 50)
		copy(t[off+18:], e.h[:])
		off += 50
	}
	return t
}
