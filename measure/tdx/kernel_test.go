package tdx

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// withVersion returns a copy of a bzImage whose kernel_version string is v
// (written over the original, NUL-terminated): a stand-in for another
// kernel release, since only the version string is read.
func withVersion(t *testing.T, kernel []byte, v string) []byte {
	t.Helper()
	k := append([]byte{}, kernel...)
	start := int(binary.LittleEndian.Uint16(k[0x20e:])) + 0x200
	old := strings.IndexByte(string(k[start:]), 0)
	if len(v) > old {
		t.Fatalf("version %q is longer than the original (%d bytes)", v, old)
	}
	copy(k[start:], v)
	k[start+len(v)] = 0
	return k
}

func TestReadKernelInfo(t *testing.T) {
	kernel := readShared(t, testenv.Shared(t), debianKernel)
	info, err := ReadKernelInfo(kernel)
	if err != nil {
		t.Fatal(err)
	}
	// `file vmlinuz-6.1.0-56-amd64` prints the same string.
	const want = "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"
	if info.Version != want || info.Major != 6 || info.Minor != 1 || info.MeasuresCC || info.UKI {
		t.Fatalf("%+v", info)
	}
	if !strings.Contains(info.Reason, "only from 6.9 on") {
		t.Errorf("reason %q", info.Reason)
	}
	for _, tc := range []struct {
		version  string
		measures bool
	}{
		{"6.8.0-51-generic (buildd@lcy02) #52-Ubuntu SMP", false},
		{"6.9.0 (x) #1", true},
		{"6.12.48+deb13-amd64 (debian-kernel@lists.debian.org) #1 SMP", true},
		{"7.0.1", true},
		{"5.15.0-tdx", false},
		{"6.10-rc3", true},
	} {
		info, err := ReadKernelInfo(withVersion(t, kernel, tc.version))
		if err != nil || info.MeasuresCC != tc.measures || info.Version != tc.version {
			t.Errorf("%q: %+v, %v", tc.version, info, err)
		}
	}
	info, err = ReadKernelInfo(withVersion(t, kernel, "custom-build"))
	if err != nil || info.MeasuresCC || !strings.Contains(info.Reason, "unknown") {
		t.Errorf("unparsable version: %+v %v", info, err)
	}

	// A UKI: the version of its .linux section.
	uki := buildUKI(t, withVersion(t, kernel, "6.12.1 (uki) #1"), "console=ttyS0\n", nil)
	info, err = ReadKernelInfo(uki)
	if err != nil || !info.UKI || !info.MeasuresCC || info.Version != "6.12.1 (uki) #1" || !strings.Contains(info.Reason, "UKI's kernel") {
		t.Errorf("UKI: %+v %v", info, err)
	}
}

func TestReadKernelInfoErrors(t *testing.T) {
	kernel := readShared(t, testenv.Shared(t), debianKernel)
	for name, mut := range map[string]func([]byte){
		"no pointer":      func(k []byte) { binary.LittleEndian.PutUint16(k[0x20e:], 0) },
		"pointer outside": func(k []byte) { binary.LittleEndian.PutUint16(k[0x20e:], 0xfff0) },
		"old protocol":    func(k []byte) { binary.LittleEndian.PutUint16(k[0x206:], 0x1ff) },
		"not printable":   func(k []byte) { k[int(binary.LittleEndian.Uint16(k[0x20e:]))+0x200] = 0x01 },
		"no HdrS, no PE":  func(k []byte) { copy(k[0x202:], "XXXX"); copy(k, "XX") },
		"empty version":   func(k []byte) { k[int(binary.LittleEndian.Uint16(k[0x20e:]))+0x200] = 0 },
	} {
		k := append([]byte{}, kernel...)
		mut(k)
		if info, err := ReadKernelInfo(k); err == nil {
			t.Errorf("%s: accepted: %+v", name, info)
		}
	}
	if _, err := ReadKernelInfo(kernel[:0x100]); err == nil {
		t.Error("a truncated kernel was accepted")
	}
}

func FuzzReadKernelInfo(f *testing.F) {
	f.Add(make([]byte, 0x400))
	k := make([]byte, 0x1000)
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x206:], 0x20f)
	binary.LittleEndian.PutUint16(k[0x20e:], 0x100)
	k[0x1f1] = 4
	copy(k[0x300:], "6.9.1 (fuzz)")
	f.Add(k)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadKernelInfo(b)
		if err == nil && (info.Version == "" || info.Reason == "") {
			t.Fatalf("no version or reason: %+v", info)
		}
	})
}
