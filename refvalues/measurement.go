package refvalues

// File names an input or output by path, size and digests.
type File struct {
	Path   string `json:"path"` // empty for an input not given (an empty initrd)
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	SHA384 string `json:"sha384,omitempty"`
}

// SNP is a SEV-SNP (or SEV-ES, SEV) measurement document, what
// `cvmkit measure snp --json` prints and measurements/snp-NAME.json holds:
// the digests and every assumption they rest on (docs/measure-snp.md).
type SNP struct {
	Mode          string  `json:"mode"`
	Profile       string  `json:"profile"`
	GuestFeatures string  `json:"guest_features,omitempty"`
	Policy        string  `json:"policy,omitempty"`
	HostData      string  `json:"host_data,omitempty"`
	Firmware      File    `json:"firmware"`
	OVMFHash      string  `json:"snp_ovmf_hash,omitempty"`
	KernelHashes  bool    `json:"firmware_has_kernel_hashes"`
	Kernel        *File   `json:"kernel,omitempty"`
	Initrd        *File   `json:"initrd,omitempty"`
	Cmdline       *SNPCmd `json:"cmdline,omitempty"`
	SVSM          *File   `json:"svsm,omitempty"`
	VarsSize      uint64  `json:"vars_size,omitempty"`
	// MinimumTCB is the oldest firmware key authorities accept (the
	// release config's minimumTCB); absent means any.
	MinimumTCB   *TCB       `json:"minimum_tcb,omitempty"`
	Measurements []SNPEntry `json:"measurements"`
}

// TCB is an SEV-SNP TCB version: the security version numbers of the
// firmware components an attestation report carries (SEV-SNP ABI
// specification, TCB_VERSION).
type TCB struct {
	Bootloader uint8 `json:"bootloader"`
	TEE        uint8 `json:"tee"`
	SNP        uint8 `json:"snp"`
	Microcode  uint8 `json:"microcode"`
}

// SNPCmd is the kernel command line the SEV hashes table binds.
type SNPCmd struct {
	Value  string `json:"value"`
	SHA256 string `json:"sha256"`
}

// SNPEntry is one launch digest of a matrix (VMM × vCPU type × count).
type SNPEntry struct {
	Name     string    `json:"name"`
	VMM      string    `json:"vmm"`
	VCPUType string    `json:"vcpu_type,omitempty"`
	VCPUSig  string    `json:"vcpu_sig,omitempty"`
	VCPUs    int       `json:"vcpus,omitempty"`
	Digest   string    `json:"digest"`
	Steps    []SNPStep `json:"steps,omitempty"`
	// With an ID key: the ID block and ID auth block (base64, as QEMU's
	// sev-snp-guest object takes them) and the key digests a report carries.
	IDBlock         string   `json:"id_block,omitempty"`
	IDAuth          string   `json:"id_auth,omitempty"`
	IDKeyDigest     string   `json:"id_key_digest,omitempty"`
	AuthorKeyDigest string   `json:"author_key_digest,omitempty"`
	QEMUObject      string   `json:"qemu_sev_snp_guest,omitempty"`
	Files           []string `json:"files,omitempty"`
}

// SNPStep is one page update of an explained digest (--explain).
type SNPStep struct {
	What     string `json:"what"`
	GPA      string `json:"gpa,omitempty"`
	Type     string `json:"page_type,omitempty"`
	Contents string `json:"contents,omitempty"`
	Digest   string `json:"digest"`
}

// TDX is a TDX measurement document, what `cvmkit measure tdx --json`
// prints and measurements/tdx-NAME.json holds (docs/measure-tdx.md).
type TDX struct {
	Firmware        File             `json:"firmware"`
	MRTD            []MRTD           `json:"mrtd"`
	PageOrderSource string           `json:"page_order_source"`
	RTMR            [4]*string       `json:"rtmr"`
	NotComputed     []TDXNotComputed `json:"not_computed"`
	Events          []TDXEvent       `json:"events"`
	Profile         string           `json:"edk2_profile,omitempty"`
	QEMUVersion     string           `json:"qemu_version,omitempty"`
	Memory          int64            `json:"memory,omitempty"`
	VCPUs           int              `json:"vcpus,omitempty"`
	KernelBlob      string           `json:"kernel_blob,omitempty"`
	// KernelBlobSource says why: the QEMU change that decides it, or
	// that it was given.
	KernelBlobSource string `json:"kernel_blob_source,omitempty"`
	SecureBoot       string `json:"secure_boot"`
	// GuestCC says whether the guest kernel's EFI stub measures the command
	// line and initrd into RTMR2; GuestCCSource says how that was decided
	// (the kernel's version, or --guest-measures-rtmr2 / the config).
	GuestCC       *bool  `json:"guest_measures_rtmr2,omitempty"`
	GuestCCGiven  bool   `json:"guest_measures_rtmr2_given,omitempty"`
	GuestCCSource string `json:"guest_measures_rtmr2_source,omitempty"`
	// XFAM is the TD's XFAM the key authorities expect (--xfam).
	XFAM          string        `json:"xfam,omitempty"`
	KernelVersion string        `json:"kernel_version,omitempty"`
	Kernel        *File         `json:"kernel,omitempty"`
	UKI           bool          `json:"uki,omitempty"`
	Initrd        *File         `json:"initrd,omitempty"`
	Cmdline       *TDXCmd       `json:"cmdline,omitempty"`
	ACPITables    *File         `json:"acpi_tables,omitempty"`
	Sections      []TDVFSection `json:"tdvf_sections"`
	Files         []string      `json:"files,omitempty"`
}

// PageOrderFlag is the PageOrderSource of a page order given explicitly
// (--page-order, or platforms.tdx pageOrder): only then is it an input to
// take over when the document is recomputed.
const PageOrderFlag = "--page-order"

// MRTD is one MRTD candidate, for the page order the host adds pages in.
type MRTD struct {
	PageOrder string `json:"page_order"`
	Value     string `json:"value"`
}

// TDXNotComputed says why an RTMR is not computed.
type TDXNotComputed struct {
	RTMR   int    `json:"rtmr"`
	Reason string `json:"reason"`
}

// TDXEvent is one predicted event-log entry.
type TDXEvent struct {
	RTMR        int    `json:"rtmr"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Digest      string `json:"digest"`
}

// TDXCmd is the command line QEMU passes and the LoadOptions edk2 makes
// of it.
type TDXCmd struct {
	Value       string `json:"value"`
	LoadOptions string `json:"load_options"`
}

// TDVFSection is one TDVF_SECTION descriptor of the firmware's TDX metadata
// (Intel TDX Virtual Firmware Design Guide, table 11-2), as recorded.
type TDVFSection struct {
	DataOffset     uint32 `json:"data_offset"`
	RawDataSize    uint32 `json:"raw_data_size"`
	MemoryAddress  uint64 `json:"memory_address"`
	MemoryDataSize uint64 `json:"memory_data_size"`
	Type           string `json:"type"` // BFV, CFV, TD_HOB, TEMP_MEM, …
	Attributes     uint32 `json:"attributes"`
}
