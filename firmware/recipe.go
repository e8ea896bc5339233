// Package firmware builds the OVMF firmware a release needs to bind its
// image, from source pinned by digest with a toolchain pinned by Debian
// package versions, so that anyone can rebuild it bit for bit: edk2's
// AmdSevX64 with the SEV-SNP kernel-hashes table (which no Debian package
// ships), and an OVMF that measures TDX RTMRs.
//
// A Recipe names everything the bytes depend on: the source tarballs (by
// the SHA-256 the signed Debian Sources index gives), the Debian patches
// applied, the edk2 platform and build flags, the toolchain's package
// versions and SOURCE_DATE_EPOCH. Build runs it in a fixed folder with a
// fixed environment (see docs/firmware.md for what made edk2 builds differ
// and how each is pinned) and records the provenance beside the firmware.
package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Source is a source tarball, pinned by its SHA-256 and size as the signed
// Sources index of the Debian release lists them.
type Source struct {
	// File is the tarball's name in the Debian archive.
	File   string `json:"file"`
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Package is a Debian package of the toolchain, at the version the recipe
// was made reproducible with.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Recipe is how one firmware is built.
type Recipe struct {
	// Name is the recipe's name ("amdsev").
	Name string `json:"name"`
	// Description says what the firmware is and what it binds.
	Description string `json:"description"`
	// Upstream names the source release ("edk2 2025.02, Debian 2025.02-8+deb13u1").
	Upstream string `json:"upstream"`
	// Sources are the upstream tarball and Debian's packaging tarball;
	// Debian's patches (debian/patches/series) are applied in order.
	Sources []Source `json:"sources"`
	// EmptyFiles are created empty before the build (AmdSevX64 embeds
	// GRUB only for its encrypted-boot path; kernel hashes need none).
	EmptyFiles []string `json:"empty_files,omitempty"`
	// Platform is the edk2 platform description built.
	Platform string `json:"platform"`
	// Flags are the edk2 build's -D and --pcd arguments.
	Flags []string `json:"flags"`
	// CCFlags are appended to edk2's RELEASE GCC5 X64 compiler flags
	// (Conf/tools_def.txt), for what the build's own flags leave
	// non-deterministic.
	CCFlags []string `json:"cc_flags,omitempty"`
	// Output is the firmware file inside the edk2 tree after the build.
	Output string `json:"output"`
	// Toolchain are the Debian packages the build uses, at the versions
	// that give these bytes.
	Toolchain []Package `json:"toolchain"`
	// SourceDateEpoch is the time the build may embed (the Debian
	// changelog's date of the packaged version).
	SourceDateEpoch int64 `json:"source_date_epoch"`
	// SHA256 is the firmware's expected digest with this recipe (empty
	// when not yet known): a rebuild that gives other bytes fails.
	SHA256 string `json:"sha256,omitempty"`
	// KernelHashes says the firmware has the SEV-SNP kernel-hashes table
	// (QEMU kernel-hashes=on binds the kernel, initrd and command line).
	KernelHashes bool `json:"kernel_hashes"`
	// TDXProfile is the edk2 profile of its TDX RTMR measurements, when it
	// measures them ("edk2-stable202502").
	TDXProfile string `json:"tdx_profile,omitempty"`
}

// Digest is the SHA-256 of the recipe's canonical JSON without its
// expected output digest: the cache key of what it builds.
func (r Recipe) Digest() string {
	r.SHA256 = ""
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Debian trixie's edk2 source package, 2025.02-8+deb13u1: the tarballs and
// their SHA-256 from trixie's signed Sources index (the .dsc itself is
// not needed: the patch series is inside the Debian tarball).
var edk2Trixie = []Source{
	{File: "edk2_2025.02.orig.tar.xz", URL: "http://deb.debian.org/debian/pool/main/e/edk2/edk2_2025.02.orig.tar.xz",
		SHA256: "b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049", Size: 29646336},
	{File: "edk2_2025.02-8+deb13u1.debian.tar.xz", URL: "http://deb.debian.org/debian/pool/main/e/edk2/edk2_2025.02-8+deb13u1.debian.tar.xz",
		SHA256: "e2a7f6fc58640818416a028d6d5e9dfc255697a7cdc60c14566c236df6bd9b08", Size: 53652},
}

// bookwormToolchain is the toolchain of Debian bookworm the recipes are
// pinned to (build-essential's gcc 12, nasm, acpica-tools, uuid-dev,
// python3), the packages scripts/install-deps.sh installs.
var bookwormToolchain = []Package{
	{"acpica-tools", "20200925-8"},
	{"binutils", "2.40-2"},
	{"gcc-12", "12.2.0-14+deb12u1"},
	{"make", "4.3-4.1"},
	{"nasm", "2.16.01-1"},
	{"patch", "2.7.6-7"},
	{"python3", "3.11.2-1+b1"},
	{"uuid-dev", "2.38.1-5+deb12u3"},
}

// debianFlags are debian/rules' COMMON_FLAGS with its PCD_FLAGS, as the
// shell hands them to edk2's build (make's L"…\\0" reaches it as L…\0).
func debianFlags(version, date string) []string {
	return []string{
		"-DCC_MEASUREMENT_ENABLE=TRUE", "-DNETWORK_HTTP_BOOT_ENABLE=TRUE", "-DNETWORK_IP6_ENABLE=TRUE", "-DNETWORK_TLS_ENABLE",
		"--pcd", `PcdFirmwareVendor=LDebian distribution of EDK II\0`,
		"--pcd", `PcdFirmwareVersionString=L` + version + `\0`,
		"--pcd", `PcdFirmwareReleaseDateString=L` + date + `\0`,
	}
}

// Recipes are the firmware cvmkit builds, by name.
var Recipes = map[string]Recipe{
	"amdsev": {
		Name: "amdsev",
		Description: "edk2 OvmfPkg/AmdSev/AmdSevX64 (RELEASE, GCC5) with the SEV-SNP kernel-hashes table: with QEMU's " +
			"kernel-hashes=on the SEV-SNP launch digest binds the kernel, initrd and command line",
		Upstream:   "edk2 2025.02 (edk2-stable202502), Debian trixie 2025.02-8+deb13u1 with its patches",
		Sources:    edk2Trixie,
		EmptyFiles: []string{"OvmfPkg/AmdSev/Grub/grub.efi"},
		Platform:   "OvmfPkg/AmdSev/AmdSevX64.dsc",
		Flags:      append(debianFlags("2025.02-8+deb13u1", "11/08/2025"), "-DTPM2_ENABLE=TRUE"),
		Output:     "Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd",
		Toolchain:  bookwormToolchain,
		// debian/changelog's date for 2025.02-8+deb13u1.
		SourceDateEpoch: 1762625177,
		KernelHashes:    true,
		// Two builds here (other cache and working folders, TZ UTC and
		// Pacific/Kiritimati, umask 022 and 077, locales C and de_DE)
		// gave these bytes in 183 and 172 s.
		SHA256: "6cb8bdd80fcafeb22aa7d5dd1473d39ea54020b9e4e8ff9169b2b2958685140c",
	},
	// tdx is Debian trixie's own OVMF.fd recipe (debian/rules build-ovmf,
	// OVMF_4M_NO_SECBOOT_FLAGS): OvmfPkgX64 with CC_MEASUREMENT_ENABLE,
	// whose TdTcg2Dxe extends RTMR0 and RTMR1 as edk2-stable202502 does.
	"tdx": {
		Name: "tdx",
		Description: "edk2 OvmfPkg/OvmfPkgX64 (RELEASE, GCC5) as Debian builds its OVMF.fd, measuring TDX RTMR0 and RTMR1 " +
			"(profile edk2-stable202502): MRTD binds the firmware, RTMR1 the kernel, RTMR2 (the guest's EFI stub) the initrd and command line",
		Upstream: "edk2 2025.02 (edk2-stable202502), Debian trixie 2025.02-8+deb13u1 with its patches",
		Sources:  edk2Trixie,
		Platform: "OvmfPkg/OvmfPkgX64.dsc",
		// debian/rules: OVMF_4M_NO_SECBOOT_FLAGS = OVMF_COMMON_FLAGS
		// (COMMON_FLAGS, -DTPM2_ENABLE=TRUE) + NO_STRICTNX_COMMON_FLAGS.
		Flags: append(debianFlags("2025.02-8+deb13u1", "11/08/2025"), "-DTPM2_ENABLE=TRUE", "--pcd", "PcdUninstallMemAttrProtocol=TRUE"),
		// Without it GCC seeds each LTO object with a random number (the
		// time and process ID) and two builds differed in one byte of
		// IScsiDxe (the padding after a merged string, 0x66 or 0x00): 2
		// of 6 builds gave other bytes. Make expands $@ to the object (or
		// module) being built, a fixed path here, so each file's seed is
		// its own and the same on every build.
		CCFlags:         []string{"-frandom-seed=$@"},
		Output:          "Build/OvmfX64/RELEASE_GCC5/FV/OVMF.fd",
		Toolchain:       bookwormToolchain,
		SourceDateEpoch: 1762625177,
		TDXProfile:      "edk2-stable202502",
		// Two builds with the seed (other cache and working folders, root
		// and nobody, TZ UTC and Pacific/Kiritimati, umask 022 and 077)
		// gave these bytes in 366 and 341 s; so did four of the six
		// builds without it.
		SHA256: "9ce450bc7c8fa1831bc4ca0494da62a801c0cd1e063c9831451c17b03a693f17",
	},
}

// Names lists the recipes in name order.
func Names() []string {
	var n []string
	for k := range Recipes {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Lookup returns the recipe called name.
func Lookup(name string) (Recipe, error) {
	r, ok := Recipes[name]
	if !ok {
		return Recipe{}, fmt.Errorf("no firmware recipe %q (there are: %s)", name, strings.Join(Names(), ", "))
	}
	return r, nil
}
