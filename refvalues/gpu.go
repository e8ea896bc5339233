package refvalues

// GPU is the GPU reference values document (gpu/gpu-reference.json,
// docs/gpu.md) cvmkit publishes: the verified
// golden measurements of every RIM given, with their provenance, and the
// version strings in the forms the key authorities compare.
type GPU struct {
	Format   string      `json:"format"`
	Roots    GPURoots    `json:"roots"`
	Versions GPUVersions `json:"versions"`
	RIMs     []RIMRef    `json:"rims"`
}

// GPURoots are the fingerprints of the pinned roots the values were
// verified against.
type GPURoots struct {
	RIM    string `json:"rim_sha256"`
	Device string `json:"device_sha256"`
}

// GPUVersions are allow-lists of versions, sorted and without duplicates.
type GPUVersions struct {
	// VBIOS in NVIDIA's uppercase form: NRAS and Intel Trust Authority
	// "x-nvidia-gpu-vbios-version", Trustee's remote-verifier policy
	// "allowed_vbios_versions".
	VBIOS []string `json:"vbios"`
	// VBIOSLowercase as Trustee's local verifier reports
	// "config.vbios_version".
	VBIOSLowercase []string `json:"vbios_lowercase"`
	// Driver as "x-nvidia-gpu-driver-version" and Trustee's
	// "allowed_driver_versions".
	Driver     []string `json:"driver"`
	SwitchBIOS []string `json:"switch_bios,omitempty"`
}

// RIMRef is one verified RIM.
type RIMRef struct {
	File           string           `json:"file,omitempty"`
	SHA256         string           `json:"sha256"`
	TagID          string           `json:"tag_id"`
	Kind           RIMKind          `json:"kind"`
	Product        string           `json:"product"`
	Edition        string           `json:"edition,omitempty"`
	Revision       string           `json:"revision,omitempty"`
	ManufacturerID string           `json:"manufacturer_id,omitempty"`
	Version        string           `json:"version"`
	VersionForms   RIMVersionForms  `json:"version_forms"`
	Measurements   []RIMMeasurement `json:"measurements"`
	Signer         RIMSigner        `json:"signer"`
}

// RIMVersionForms is a RIM's version in the string forms consumers compare.
type RIMVersionForms struct {
	NVIDIA  string `json:"nvidia"`
	Trustee string `json:"trustee_local"`
}

// RIMMeasurement is one active golden register.
type RIMMeasurement struct {
	RIMIndex     int      `json:"rim_index"`
	SPDMIndex    int      `json:"spdm_index"`
	Name         string   `json:"name"`
	Size         int      `json:"size"`
	Alternatives []string `json:"alternatives"`
	Condition    string   `json:"condition,omitempty"`
}

// RIMSigner is the provenance of a RIM's signature.
type RIMSigner struct {
	Chain      []CertificateRef `json:"chain"`
	Status     string           `json:"status"`
	VerifiedAt string           `json:"verified_at"`
	Revocation string           `json:"revocation"`
	OCSP       []string         `json:"ocsp,omitempty"`
}

// CertificateRef identifies one certificate of a chain.
type CertificateRef struct {
	Subject   string `json:"subject"`
	SHA256    string `json:"sha256"`
	NotBefore string `json:"not_before"`
	NotAfter  string `json:"not_after"`
}

// RIMKind is what a RIM describes: "vbios", "driver" or "switch_bios".
type RIMKind string
