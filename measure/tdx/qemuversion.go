package tdx

import (
	"fmt"
	"strconv"
	"strings"
)

// QEMUVersion is a QEMU release. Patch is -1 when the version was given
// as major.minor only.
type QEMUVersion struct{ Major, Minor, Patch int }

// ParseQEMUVersion reads "9.2.1", "10.1.0" or "10.1" (patch unknown).
// Development snapshots (a patch of 50 or more, as QEMU numbers its
// development and release-candidate builds) are refused: what they do
// depends on the commit, not the number.
func ParseQEMUVersion(v string) (QEMUVersion, error) {
	parts := strings.Split(v, ".")
	bad := fmt.Errorf("%q: want a QEMU release such as 9.2.1 or 10.1.0", v)
	if len(parts) < 2 || len(parts) > 3 {
		return QEMUVersion{}, bad
	}
	var n [3]int
	n[2] = -1
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 999 || strconv.Itoa(x) != p {
			return QEMUVersion{}, bad
		}
		n[i] = x
	}
	q := QEMUVersion{n[0], n[1], n[2]}
	if q.Major < 6 {
		return QEMUVersion{}, fmt.Errorf("%q: QEMU before 6.0 cannot launch a TD", v)
	}
	if q.Patch >= 50 {
		return QEMUVersion{}, fmt.Errorf("%q is a development snapshot (patch 50 or more): cvmkit cannot tell which of QEMU's kernel-loader changes it has; give the release it was built from", v)
	}
	return q, nil
}

func (q QEMUVersion) String() string {
	if q.Patch < 0 {
		return fmt.Sprintf("%d.%d", q.Major, q.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", q.Major, q.Minor, q.Patch)
}

// atLeast reports whether q is major.minor.patch or later; known is false
// when q has no patch number and the answer depends on it.
func (q QEMUVersion) atLeast(major, minor, patch int) (yes, known bool) {
	switch {
	case q.Major != major:
		return q.Major > major, true
	case q.Minor != minor:
		return q.Minor > minor, true
	case patch == 0:
		return true, true
	case q.Patch < 0:
		return false, false
	}
	return q.Patch >= patch, true
}

// The QEMU commits that change which kernel bytes reach a TD's firmware
// (hw/i386/x86-common.c, x86_load_linux; read at QEMU commit 04ddbb137da1).
const (
	// "x86/loader: Don't update kernel header for CoCo VMs", first in
	// 10.2.0: the setup header is copied into FW_CFG_SETUP_DATA only
	// when the machine has no confidential-guest-support, so a TD's
	// firmware gets the file's bytes on every edk2 release.
	commitCoCoHeader = "a7542a38f399"
	// "x86/loader: only patch linux kernels" (in 10.0.0 and the 9.2.1
	// and 7.2.16 stable releases): the header is written only when the
	// file has the Linux boot protocol's "HdrS" (protocol > 0). Before it,
	// a kernel without one (a UKI) had bytes 0x20–0x23 overwritten (the
	// pre-2.02 command-line magic 0xA33F and offset).
	commitOnlyLinux = "x86/loader: only patch linux kernels"
)

// KernelHandover decides which bytes of a -kernel QEMU q hands to TDX
// firmware of profile p: the file as it is (KernelUnpatched) or with
// QEMU's setup-header patch (KernelPatched). linux says whether the file
// has the Linux boot header ("HdrS"; a UKI has none). The reason names
// the QEMU change that decides it. A version cvmkit cannot place — a
// stable release that may or may not carry a backport, or major.minor
// where the patch release matters — is an error saying what to give.
func KernelHandover(q QEMUVersion, p Profile, linux bool) (KernelBlob, string, error) {
	if ok, _ := q.atLeast(10, 2, 0); ok {
		return KernelUnpatched, fmt.Sprintf("QEMU %s does not patch a confidential guest's kernel header (commit %s, from 10.2.0)", q, commitCoCoHeader), nil
	}
	if ok, _ := q.atLeast(10, 0, 0); ok && p != "" && p != Edk2Stable202408 {
		return KernelUnpatched, fmt.Sprintf("QEMU %s exposes the unpatched kernel as fw_cfg etc/boot/kernel (from 10.0), which edk2 from 202502 (%s) loads", q, p), nil
	}
	if linux {
		return KernelPatched, fmt.Sprintf("QEMU %s patches the Linux setup header it hands the firmware (x86_load_linux; before %s in 10.2.0)", q, commitCoCoHeader), nil
	}
	fixed, known := q.atLeast(10, 0, 0)
	switch {
	case q.Major == 9 && q.Minor == 2:
		fixed, known = q.atLeast(9, 2, 1)
	case q.Major == 7 && q.Minor == 2:
		fixed, known = q.atLeast(7, 2, 16)
	case q.Major == 8 && q.Minor == 2, q.Major == 9 && q.Minor <= 1:
		known = false // stable series that may have taken the backport
	}
	switch {
	case !known && q.Patch < 0:
		return "", "", fmt.Errorf("QEMU %s: whether it patches a kernel without the Linux boot header (a UKI) depends on the patch release (%q); give the exact version, such as %s.1", q, commitOnlyLinux, q)
	case !known:
		return "", "", fmt.Errorf("QEMU %s: cvmkit cannot place whether this stable release has %q (it is in 10.0.0, 9.2.1 and 7.2.16); without it QEMU overwrites bytes 0x20-0x23 of a kernel without the Linux boot header (a UKI), which cvmkit does not model: use a release that has it, or pass a bzImage", q, commitOnlyLinux)
	case !fixed:
		return "", "", fmt.Errorf("QEMU %s predates %q (in 10.0.0, 9.2.1 and 7.2.16): it overwrites bytes 0x20-0x23 of a kernel without the Linux boot header (a UKI), which cvmkit does not model: use a later release, or pass a bzImage", q, commitOnlyLinux)
	}
	return KernelUnpatched, fmt.Sprintf("QEMU %s does not touch a kernel without the Linux boot header (%q)", q, commitOnlyLinux), nil
}
