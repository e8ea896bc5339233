// Package launch writes launch recipes: for each measured configuration of
// a release, how to start a VM whose launch measurement is the one the
// release publishes (docs/launch.md). A recipe names the inputs by digest
// and, for QEMU, gives the argument list whose every measured part (CPU
// model, vCPU count, guest policy, kernel hashes, memory for TDX, firmware,
// kernel, initrd, command line) is the one the measurement was computed for.
//
// The package is pure: it turns the facts of a configuration into a recipe
// document and never reads files or runs QEMU.
package launch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Schema identifies the recipe format.
const Schema = "https://cvmkit.dev/launch/v1"

// File is an input of a launch: where the release or the config has it and
// its digest.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Origin is where a firmware file comes from: built by cvmkit from a
// recipe (Recipe, RecipeDigest, Upstream, Build) or taken from a Debian
// package (Package, Version, File, Suite).
type Origin struct {
	Recipe       string `json:"recipe,omitempty"`
	RecipeDigest string `json:"recipe_digest,omitempty"`
	Upstream     string `json:"upstream,omitempty"`
	Build        string `json:"build,omitempty"`
	Package      string `json:"package,omitempty"`
	Version      string `json:"version,omitempty"`
	File         string `json:"file,omitempty"`
	Suite        string `json:"suite,omitempty"`
}

// Image is the guest image of the release.
type Image struct {
	Kernel, Initrd, RootFS File
	// HashTree is the separate dm-verity hash tree, when the image has one.
	HashTree *File
	Cmdline  string
}

// SNP is one measured SEV-SNP launch.
type SNP struct {
	// Configuration names the measured entry (measurements/DOC.json#entry).
	Configuration string
	Document      string
	Measurement   string
	VMM           string // qemu, ec2, gce
	Mode          string // snp, snp:svsm, seves, sev
	VCPUType      string
	VCPUs         int
	Policy        uint64
	GuestFeatures uint64
	KernelHashes  bool
	HostData      []byte
	IDBlock       string // base64, as QEMU's id-block takes it
	IDAuth        string
	AuthorKey     bool
	Firmware      File
	Origin        *Origin
}

// TDX is one measured TDX launch.
type TDX struct {
	Configuration string
	Document      string
	MRTD          string
	RTMR          [4]*string
	QEMUVersion   string
	Memory        int64
	VCPUs         int
	Firmware      File
	Origin        *Origin
	ACPITables    *File
	// KernelMeasuresRTMR2 says whether the guest kernel measures its
	// command line and initrd (recorded so the operator knows RTMR2).
	KernelMeasuresRTMR2 bool
}

// Recipe is launch/NAME.json.
type Recipe struct {
	Schema        string `json:"schema"`
	Release       string `json:"release"`
	Configuration string `json:"configuration"`
	Platform      string `json:"platform"`
	// Document is the measurement document the values come from.
	Document string `json:"measurements"`
	// Expect is what the launched VM's attestation must report.
	Expect map[string]string `json:"expect"`
	Files  map[string]File   `json:"files"`
	// Firmware says where the firmware file comes from, so that the
	// operator gets the same bytes: a recipe anyone can rebuild, or a
	// distribution package (absent when the config does not say).
	Firmware *Origin `json:"firmware_origin,omitempty"`
	// Host is what the host must provide to start this VM.
	Host []string `json:"host,omitempty"`
	// QEMU is the qemu-system-x86_64 command, when the VMM is QEMU: Args
	// exactly as measured, with paths relative to the release folder
	// (the firmware under its file name beside it).
	QEMU *QEMU `json:"qemu,omitempty"`
	// Notes say what the operator chooses freely, what must not change,
	// and what the values do not bind.
	Notes []string `json:"notes"`
}

// QEMU is a QEMU command line.
type QEMU struct {
	MinVersion string   `json:"min_version"`
	Binary     string   `json:"binary"`
	Args       []string `json:"args"`
}

// The oldest upstream QEMU releases whose objects the recipes use:
// sev-snp-guest arrived in QEMU 9.1 (with KVM_SEV_INIT2), tdx-guest in
// QEMU 10.1. docs/launch.md's table is generated from these.
const (
	SNPMinQEMU = "9.1"
	TDXMinQEMU = "10.1"
)

// SNPHost and TDXHost are what a host must provide to start the VMs the
// recipes describe (docs/launch.md lists them).
var (
	SNPHost = []string{
		"an AMD EPYC host (Milan, Genoa or Turin) with SEV-SNP enabled in the BIOS and SNP firmware loaded",
		"a host kernel with KVM SEV-SNP support (Linux 6.11 or later upstream; kvm_amd loaded with sev_snp=1, the default when the firmware supports it)",
		"QEMU " + SNPMinQEMU + " or later with KVM (the sev-snp-guest object), and read-write access to /dev/sev for the user running it",
	}
	TDXHost = []string{
		"an Intel Xeon host with TDX (4th generation, Sapphire Rapids, or later) enabled in the BIOS, with the TDX module loaded",
		"a host kernel with KVM TDX support (Linux 6.16 or later upstream, or a distribution's TDX host kernel; kvm_intel loaded with tdx=1)",
		"QEMU " + TDXMinQEMU + " or later upstream with KVM (the tdx-guest object), or a distribution build with the TDX patches",
	}
)

// defaultSNPMemory is the memory a recipe gives an SEV-SNP guest: it does
// not enter the launch digest, so the operator may change it.
const defaultSNPMemory = "2G"

// firmwareName is where a recipe expects the firmware: its file name,
// beside the release folder's image/.
func firmwareName(f File) string {
	if i := strings.LastIndexAny(f.Path, `/\`); i >= 0 {
		return f.Path[i+1:]
	}
	return f.Path
}

func imageFiles(img Image, fw File) map[string]File {
	files := map[string]File{"firmware": fw, "kernel": img.Kernel, "initrd": img.Initrd, "rootfs": img.RootFS}
	if img.HashTree != nil {
		files["hash_tree"] = *img.HashTree
	}
	return files
}

// commonTail is the kernel, initrd, command line and disks of a direct
// kernel boot, the same on both platforms.
func commonTail(img Image) []string {
	args := []string{
		"-kernel", img.Kernel.Path, "-initrd", img.Initrd.Path, "-append", img.Cmdline,
		"-drive", "if=none,id=root,file=" + img.RootFS.Path + ",format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=root",
	}
	if img.HashTree != nil {
		args = append(args, "-drive", "if=none,id=hashtree,file="+img.HashTree.Path+",format=raw,readonly=on",
			"-device", "virtio-blk-pci,drive=hashtree")
	}
	return args
}

// ForSNP returns the recipe of an SEV-SNP launch. The QEMU arguments follow
// QEMU's sev-snp-guest object (QEMU 9.1 and later, KVM_SEV_INIT2): the
// guest policy, kernel-hashes, host-data and ID block go to the object, the
// vCPU type to -cpu and the count to -smp, which are what the VMSAs the
// digest covers depend on.
func ForSNP(release string, img Image, s SNP) (*Recipe, error) {
	r := &Recipe{Schema: Schema, Release: release, Configuration: s.Configuration, Platform: "snp", Document: s.Document,
		Expect: map[string]string{"measurement": s.Measurement, "policy": fmt.Sprintf("%#x", s.Policy)},
		Files:  imageFiles(img, s.Firmware), Firmware: s.Origin}
	if len(s.HostData) > 0 {
		r.Expect["host_data"] = fmt.Sprintf("%x", s.HostData)
	}
	if !s.KernelHashes {
		r.Notes = append(r.Notes, "the firmware has no SNP kernel-hashes section: the launch digest binds the firmware only, not the kernel, initrd or command line")
	}
	switch {
	case s.VMM != "qemu" && s.VMM != "":
		r.Notes = append(r.Notes, fmt.Sprintf("VMM %s: launch an instance with %d vCPUs of the measured type through the provider; cvmkit gives no command line for it", s.VMM, s.VCPUs))
		return r, nil
	case s.Mode != "snp" && s.Mode != "":
		r.Notes = append(r.Notes, fmt.Sprintf("mode %s: no QEMU recipe (cvmkit writes them for mode snp)", s.Mode))
		return r, nil
	case s.VCPUType == "" || s.VCPUs < 1:
		return nil, fmt.Errorf("snp %s: no vCPU type or count", s.Configuration)
	}
	if s.GuestFeatures != 0x1 {
		r.Notes = append(r.Notes, fmt.Sprintf("SEV_FEATURES %#x: QEMU's sev-snp-guest object sets only SNPActive (0x1) by default; make sure the host's QEMU and KVM give the VMSAs exactly these features", s.GuestFeatures))
	}
	obj := []string{"sev-snp-guest", "id=sev0", "cbitpos=51", "reduced-phys-bits=1", fmt.Sprintf("policy=%#x", s.Policy)}
	if s.KernelHashes {
		obj = append(obj, "kernel-hashes=on")
	}
	if len(s.HostData) > 0 {
		obj = append(obj, "host-data="+base64.StdEncoding.EncodeToString(s.HostData))
	}
	if s.IDBlock != "" {
		obj = append(obj, "id-block="+s.IDBlock, "id-auth="+s.IDAuth)
		if s.AuthorKey {
			obj = append(obj, "author-key-enabled=on")
		}
	}
	args := []string{
		"-enable-kvm", "-nodefaults", "-nographic", "-serial", "stdio",
		"-machine", "q35,confidential-guest-support=sev0,memory-backend=ram0",
		"-object", "memory-backend-memfd,id=ram0,size=" + defaultSNPMemory + ",share=true,prealloc=false",
		"-object", strings.Join(obj, ","),
		"-cpu", s.VCPUType, "-smp", strconv.Itoa(s.VCPUs), "-m", defaultSNPMemory,
		"-bios", firmwareName(s.Firmware),
	}
	args = append(args, commonTail(img)...)
	r.QEMU = &QEMU{MinVersion: SNPMinQEMU, Binary: "qemu-system-x86_64", Args: args}
	r.Host = SNPHost
	r.Notes = append(r.Notes,
		"free to change: the memory size (-m and the memory backend's size, equal), -serial and other devices that add no firmware or VMSA state; the digest does not cover them",
		"must not change: -cpu, -smp, the sev-snp-guest object's policy, kernel-hashes, host-data and id-block, -bios, -kernel, -initrd, -append",
		"cbitpos=51 and reduced-phys-bits=1 are those of EPYC Milan, Genoa and Turin hosts (CPUID 0x8000001F); QEMU refuses values the host does not have",
		"-bios expects the firmware file beside the release folder (files.firmware gives its sha256)")
	return r, nil
}

// ForTDX returns the recipe of a TDX launch: QEMU's tdx-guest object
// (QEMU 10.1 and later upstream; distribution builds with the TDX patches
// before it), -smp and -m as measured (the TD HOB and ACPI tables depend on
// them), the firmware, kernel, initrd and command line.
func ForTDX(release string, img Image, t TDX) (*Recipe, error) {
	if t.VCPUs < 1 || t.Memory <= 0 {
		return nil, errors.New("tdx " + t.Configuration + ": no vCPU count or memory size")
	}
	r := &Recipe{Schema: Schema, Release: release, Configuration: t.Configuration, Platform: "tdx", Document: t.Document,
		Expect: map[string]string{"mr_td": t.MRTD}, Files: imageFiles(img, t.Firmware), Firmware: t.Origin, Host: TDXHost}
	for i, v := range t.RTMR {
		if v != nil {
			r.Expect[fmt.Sprintf("rtmr%d", i)] = *v
		}
	}
	if t.ACPITables != nil {
		r.Files["acpi_tables"] = *t.ACPITables
	}
	mem := strconv.FormatInt(t.Memory>>20, 10) + "M"
	args := []string{
		"-accel", "kvm", "-nodefaults", "-nographic", "-serial", "stdio",
		"-object", "tdx-guest,id=tdx0",
		"-machine", "q35,kernel-irqchip=split,confidential-guest-support=tdx0,hpet=off",
		"-cpu", "host", "-smp", strconv.Itoa(t.VCPUs), "-m", mem,
		"-bios", firmwareName(t.Firmware),
	}
	args = append(args, commonTail(img)...)
	r.QEMU = &QEMU{MinVersion: TDXMinQEMU, Binary: "qemu-system-x86_64", Args: args}
	if t.QEMUVersion != "" {
		r.QEMU.MinVersion = t.QEMUVersion
		r.Notes = append(r.Notes, "measured for QEMU "+t.QEMUVersion+": MRTD's page order and the kernel QEMU hands to the firmware depend on the QEMU version")
		if versionBefore(t.QEMUVersion, TDXMinQEMU) {
			r.Notes = append(r.Notes, "upstream QEMU "+t.QEMUVersion+" has no TDX (upstream has it from "+TDXMinQEMU+"): this assumes a distribution build of that version with the TDX patches")
		}
	}
	r.Notes = append(r.Notes,
		"must not change: -smp and -m (the TD HOB and ACPI tables in RTMR0 depend on them), -bios, -kernel, -initrd, -append, the machine type and the devices (they shape the ACPI tables)")
	if t.ACPITables == nil {
		r.Notes = append(r.Notes, "RTMR0 is not computed: it covers QEMU's ACPI tables for this exact command line; boot a Linux TD with these arguments and copy /sys/firmware/qemu_fw_cfg/by_name/etc/acpi/tables/raw (qemu_fw_cfg module) into platforms.tdx acpiTables (docs/launch.md)")
	}
	if !t.KernelMeasuresRTMR2 {
		r.Notes = append(r.Notes, "the guest kernel does not measure its command line and initrd into RTMR2 (Linux 6.9 and later do): RTMR2 stays zero and binds neither")
	}
	return r, nil
}

// versionBefore reports whether the dotted version a is older than b,
// comparing the numbers that both give.
func versionBefore(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		if errx != nil || erry != nil || x != y {
			return errx == nil && erry == nil && x < y
		}
	}
	return false
}

// ShellCommand renders a QEMU command as one shell line, each argument
// quoted where it needs it, for docs and the summary.
func (q *QEMU) ShellCommand() string {
	parts := []string{q.Binary}
	for _, a := range q.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=,./:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// NonConfidential returns the arguments of the same launch without the
// confidential-computing parts (no sev-snp-guest or tdx-guest object, no
// confidential-guest-support, -cpu max, TCG), for a machine without SEV-SNP
// or TDX: it shows that the recipe's firmware, kernel, initrd and command
// line boot and reach the guest. Its measurements mean nothing.
func NonConfidential(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch {
		case a == "-enable-kvm":
			continue
		case a == "-accel":
			i++
			continue
		case a == "-object" && (strings.HasPrefix(next, "sev-snp-guest,") || strings.HasPrefix(next, "tdx-guest,")):
			i++
			continue
		case a == "-machine":
			var keep []string
			for _, p := range strings.Split(next, ",") {
				if !strings.HasPrefix(p, "confidential-guest-support=") && !strings.HasPrefix(p, "kernel-irqchip=") {
					keep = append(keep, p)
				}
			}
			out = append(out, a, strings.Join(keep, ","))
			i++
			continue
		case a == "-cpu":
			out = append(out, a, "max")
			i++
			continue
		}
		out = append(out, a)
	}
	return append([]string{"-accel", "tcg"}, out...)
}
