package tdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KernelInfo is what the kernel image says about itself that decides what
// a TD's RTMR2 holds.
type KernelInfo struct {
	// Version is the kernel's version string (the bzImage setup header's
	// kernel_version, as `file` and `uname -r … #1 SMP …` show it), of the
	// kernel the firmware starts: for a UKI, its .linux section.
	Version string
	// Release is the leading "major.minor[.patch…]" of Version.
	Major, Minor int
	// UKI is true when the image is a unified kernel image.
	UKI bool
	// MeasuresCC says whether the kernel's EFI stub measures its
	// LoadOptions (the command line) and initrd through
	// EFI_CC_MEASUREMENT_PROTOCOL into RTMR2 when there is no TPM: Linux
	// 6.9 and later (drivers/firmware/efi/libstub, "efi/libstub: Measure
	// into CC protocol when TCG2 protocol is absent", merged for v6.9).
	MeasuresCC bool
	// Reason explains MeasuresCC in a sentence.
	Reason string
}

// firstCCMeasuringLinux is the first Linux release whose EFI stub measures
// into the CC measurement protocol.
const firstCCMeasuringMajor, firstCCMeasuringMinor = 6, 9

// ReadKernelInfo reads the version of a bzImage (or of a UKI's .linux
// section) from the setup header (Documentation/arch/x86/boot.rst:
// kernel_version at 0x20E is the offset of a NUL-terminated string, minus
// 0x200, inside the setup code) and decides whether its EFI stub measures
// RTMR2. A distribution may backport the measuring stub to an older
// kernel: the caller's explicit setting overrides this reading.
func ReadKernelInfo(kernel []byte) (*KernelInfo, error) {
	info := &KernelInfo{}
	img := kernel
	if !IsBzImage(kernel) {
		pe, err := ParsePE(kernel)
		if err != nil {
			return nil, fmt.Errorf("kernel is neither a bzImage nor a PE image: %w", err)
		}
		linux, ok := pe.Section(kernel, ".linux")
		if !ok {
			return nil, errors.New("kernel is a PE image without a .linux section: not a UKI, and not a bzImage")
		}
		if !IsBzImage(linux) {
			return nil, errors.New("the UKI's .linux section is not a bzImage")
		}
		info.UKI, img = true, linux
	}
	v, err := bzImageVersion(img)
	if err != nil {
		return nil, err
	}
	info.Version = v
	maj, min, ok := parseKernelRelease(v)
	what := "the kernel"
	if info.UKI {
		what = "the UKI's kernel"
	}
	switch {
	case !ok:
		info.Reason = fmt.Sprintf("%s's version %q does not start with major.minor, so whether its EFI stub measures into RTMR2 is unknown", what, v)
	case maj > firstCCMeasuringMajor || maj == firstCCMeasuringMajor && min >= firstCCMeasuringMinor:
		info.Major, info.Minor, info.MeasuresCC = maj, min, true
		info.Reason = fmt.Sprintf("%s is Linux %d.%d: its EFI stub (6.9 and later) measures the command line and initrd into RTMR2", what, maj, min)
	default:
		info.Major, info.Minor = maj, min
		info.Reason = fmt.Sprintf("%s is Linux %d.%d: its EFI stub measures into RTMR2 only from 6.9 on, so RTMR2 stays zero and binds neither the command line nor the initrd", what, maj, min)
	}
	return info, nil
}

// bzImageVersion returns the kernel_version string of a bzImage.
func bzImageVersion(img []byte) (string, error) {
	if !IsBzImage(img) {
		return "", errors.New("not a bzImage (no HdrS setup header)")
	}
	if proto := binary.LittleEndian.Uint16(img[0x206:]); proto < 0x200 {
		return "", fmt.Errorf("boot protocol %#x has no kernel_version field", proto)
	}
	setupSects := int(img[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	setupEnd := min((setupSects+1)*512, len(img))
	ptr := binary.LittleEndian.Uint16(img[0x20e:])
	if ptr == 0 {
		return "", errors.New("the setup header has no kernel_version string")
	}
	start := int(ptr) + 0x200
	if start >= setupEnd {
		return "", fmt.Errorf("kernel_version offset %#x is outside the %d-byte setup code", start, setupEnd)
	}
	end := start
	for end < setupEnd && end-start < 512 && img[end] != 0 {
		if img[end] < 0x20 || img[end] > 0x7e {
			return "", fmt.Errorf("kernel_version at %#x is not printable ASCII", start)
		}
		end++
	}
	if end == setupEnd || end-start >= 512 {
		return "", fmt.Errorf("kernel_version at %#x is not NUL-terminated", start)
	}
	if end == start {
		return "", errors.New("kernel_version is empty")
	}
	return string(img[start:end]), nil
}

// parseKernelRelease reads "6.1.0-56-amd64 (…) #1 …" as 6, 1.
func parseKernelRelease(v string) (major, minor int, ok bool) {
	rel, _, _ := strings.Cut(v, " ")
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	maj, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil || maj < 0 || mi < 0 {
		return 0, 0, false
	}
	return maj, mi, true
}
