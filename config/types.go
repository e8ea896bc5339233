// Package config defines cvmkit.yaml, the release config: every input of the
// pipeline (image, firmware, platform matrices, GPU RIMs, model weights,
// signing, SBOM, key-authority targets), each pinned by digest.
//
// Loading is strict: an unknown key, a wrong type, a malformed digest, a
// missing input or a file whose digest differs from its pin is an error that
// names file:line:column and says how to fix it. The format is specified in
// docs/config.md; the JSON Schema in docs/cvmkit.schema.json is generated
// from these types by [Schema].
//
// Struct tags: `yaml` names the key, `required:"true"` marks a key that must
// be present, `doc` is the description published in the schema.
package config

// APIVersion and Kind identify a release config.
const (
	APIVersion = "cvmkit.dev/v1alpha1"
	Kind       = "Release"
)

// Release is the root of cvmkit.yaml.
type Release struct {
	APIVersion string   `yaml:"apiVersion" required:"true" doc:"Config format version; must be cvmkit.dev/v1alpha1."`
	Kind       string   `yaml:"kind" required:"true" doc:"Must be Release."`
	Metadata   Metadata `yaml:"metadata" required:"true" doc:"What is being released."`
	// SourceDateEpoch is used when the SOURCE_DATE_EPOCH variable is unset.
	SourceDateEpoch *int64         `yaml:"sourceDateEpoch" doc:"Seconds since 1970-01-01 UTC for every timestamp in the outputs, used when SOURCE_DATE_EPOCH is unset. Default 0."`
	Output          Path           `yaml:"output" output:"true" doc:"Output folder, relative to this file. Default dist."`
	Secrets         Path           `yaml:"secrets" output:"true" doc:"Folder for key-authority secrets (the cleartext data keyset of a Trustee KBS resource), never part of the published release: created with mode 0700, files 0600, refused if it exists. Relative to this file. Default: the output folder's name with .secrets added, beside it (dist.secrets)."`
	Image           Image          `yaml:"image" required:"true" doc:"The guest image: root filesystem, kernel, initrd, command line."`
	Firmware        []Firmware     `yaml:"firmware" doc:"Firmware builds the platforms launch with, each pinned by sha256."`
	Platforms       Platforms      `yaml:"platforms" doc:"The launch configurations to compute measurements for."`
	GPU             *GPU           `yaml:"gpu" doc:"NVIDIA GPU reference values from signed RIMs."`
	Model           *Model         `yaml:"model" doc:"Model weights to encrypt and the recipients of their data key."`
	Signing         *Signing       `yaml:"signing" doc:"How the reference values and provenance are signed."`
	SBOM            *SBOM          `yaml:"sbom" doc:"Which SBOM formats to write. Default: both."`
	KeyAuthorities  KeyAuthorities `yaml:"keyAuthorities" doc:"Key-release authority policies to write."`
}

// Metadata names the release.
type Metadata struct {
	Name        string `yaml:"name" required:"true" doc:"Release name: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit."`
	Version     string `yaml:"version" required:"true" doc:"Release version, for example 1.4.0."`
	Description string `yaml:"description" doc:"Free text."`
}

// Image describes the guest image.
type Image struct {
	Base     []Base    `yaml:"base" doc:"Root filesystem sources, applied bottom first: OCI images pinned by digest, OCI layout folders, local folders."`
	Overlays []Overlay `yaml:"overlays" doc:"Files and folders copied over the root filesystem after the base."`
	Kernel   Kernel    `yaml:"kernel" required:"true" doc:"The kernel image (bzImage or UKI)."`
	Initrd   Initrd    `yaml:"initrd" doc:"The initrd: cvmkit's own init (default) or a file of yours."`
	Cmdline  string    `yaml:"cmdline" required:"true" doc:"Kernel command line template (Go text/template); the dm-verity parameters are filled in by the build."`
	RootFS   RootFS    `yaml:"rootfs" doc:"Root filesystem image settings."`
}

// Base is one root filesystem source. Exactly one of OCI, Layout, Dir is set.
type Base struct {
	OCI      string `yaml:"oci" doc:"OCI image reference pinned by digest: registry/repo@sha256:<64 hex>."`
	Layout   Path   `yaml:"layout" dir:"true" doc:"OCI image layout folder."`
	Dir      Path   `yaml:"dir" dir:"true" doc:"Local folder taken as a layer."`
	Digest   Digest `yaml:"digest" doc:"With layout: the manifest or index digest to use (required). With dir: an optional pin of the folder's tree digest."`
	Platform string `yaml:"platform" doc:"Platform to pick from a multi-platform image. Default linux/amd64."`
}

// Overlay copies a host file or folder into the root filesystem.
type Overlay struct {
	Src  Path     `yaml:"src" required:"true" doc:"Host file or folder, relative to this file."`
	Dst  string   `yaml:"dst" required:"true" doc:"Absolute destination path in the image."`
	Mode FileMode `yaml:"mode" doc:"Octal permission bits for files, for example \"0644\". Default: kept from the source, masked to 0755/0644."`
	UID  int      `yaml:"uid" doc:"Owner uid. Default 0."`
	GID  int      `yaml:"gid" doc:"Owner gid. Default 0."`
}

// File is a host file pinned by digest.
type File struct {
	Path   Path   `yaml:"path" required:"true" doc:"File path, relative to this file."`
	Digest Digest `yaml:"digest" required:"true" doc:"sha256:<64 lowercase hex> of the file's contents."`
	// Origin says where the file comes from, recorded in the release's
	// inputs manifest (and, for firmware, in the launch recipes).
	Origin *Origin `yaml:"origin" doc:"Where the file comes from (a Debian package), recorded in the release's inputs manifest so that an auditor can get the same file; for firmware also in the launch recipes."`
}

// Kernel is the kernel image, from a file or from an OCI artifact.
// Exactly one of File and OCI is set.
type Kernel struct {
	Path   Path    `yaml:"path" doc:"Kernel file, relative to this file."`
	Digest Digest  `yaml:"digest" doc:"With path: sha256:<64 lowercase hex> of the file."`
	OCI    string  `yaml:"oci" doc:"Instead of path: an OCI artifact pinned by digest (registry/repo@sha256:…) holding the kernel."`
	In     string  `yaml:"in" doc:"With oci: the kernel's path inside the artifact."`
	Origin *Origin `yaml:"origin" doc:"With path: where the file comes from (a Debian package), recorded in the release's inputs manifest."`
}

// Initrd is the initrd: cvmkit's init (Init) or a user-supplied File.
type Initrd struct {
	File *File `yaml:"file" doc:"Use this initrd instead of building one. The root filesystem is then yours to mount."`
	Init Init  `yaml:"init" doc:"Settings of cvmkit's own init (when file is not set)."`
}

// Init configures cvmkit's guest init.
type Init struct {
	Target      string      `yaml:"target" doc:"The program run after switching to the verified root. Default /sbin/init."`
	Compression Compression `yaml:"compression" doc:"Initrd compression. Default zstd."`
	Modules     []File      `yaml:"modules" doc:"Kernel modules the init loads, in order, before setting up dm-verity (.ko, .ko.xz or .ko.zst)."`
}

// RootFS configures the EROFS root filesystem and its dm-verity tree.
type RootFS struct {
	Verity     VerityPlacement `yaml:"verity" doc:"Where the dm-verity hash tree goes: appended to the image or in a separate file. Default appended."`
	Device     string          `yaml:"device" doc:"Guest device the root image is attached as, passed to cvmkit's init. Default /dev/vda."`
	HashDevice string          `yaml:"hashDevice" doc:"With verity: separate, the guest device of the hash tree file. Default /dev/vdb."`
	Limits     Limits          `yaml:"limits" doc:"Limits that stop hostile or broken layers."`
}

// Limits bound what layers may contain.
type Limits struct {
	MaxFileSize  Size `yaml:"maxFileSize" doc:"Largest single file. Default 16GiB."`
	MaxTotalSize Size `yaml:"maxTotalSize" doc:"Largest unpacked root filesystem. Default 64GiB."`
	MaxEntries   int  `yaml:"maxEntries" doc:"Most entries in the root filesystem. Default 1000000."`
}

// Firmware is a named firmware build.
type Firmware struct {
	Name string `yaml:"name" required:"true" doc:"Name the platforms refer to."`
	File `yaml:",inline"`
	Vars *File `yaml:"vars" doc:"Variable store template (OVMF_VARS), when it is a separate file."`
	// Build names the recipe that makes the file: release builds it when
	// the file is missing, verify --rebuild builds it again.
	Build *FirmwareBuild `yaml:"build" doc:"Build the file from pinned source with a firmware recipe (cvmkit firmware list, docs/firmware.md): cvmkit release builds it into path when path is missing (cached by the recipe's digest), cvmkit verify --rebuild builds it again and compares the bytes. The digest must be the recipe's."`
}

// FirmwareBuild is a firmware built from a recipe of package firmware.
type FirmwareBuild struct {
	Recipe string `yaml:"recipe" required:"true" doc:"Firmware recipe: amdsev (SEV-SNP kernel hashes) or tdx (TDX RTMRs)."`
	Cache  Path   `yaml:"cache" output:"true" doc:"Folder for the fetched sources and built firmware, by recipe digest. Default $XDG_CACHE_HOME/cvmkit/firmware."`
}

// Origin is where an input file comes from: a file inside a Debian
// package of a given version.
type Origin struct {
	Package string `yaml:"package" json:"package" required:"true" doc:"Debian package name, for example ovmf."`
	Version string `yaml:"version" json:"version" required:"true" doc:"The package's version, for example 2025.02-8+deb13u1."`
	File    string `yaml:"file" json:"file" required:"true" doc:"The file's path inside the package, for example usr/share/ovmf/OVMF.fd."`
	Suite   string `yaml:"suite" json:"suite,omitempty" doc:"The Debian release that ships it, for example trixie."`
}

// String says how to get the file: "Debian package ovmf 2025.02-8+deb13u1
// (trixie), file usr/share/ovmf/OVMF.fd".
func (o *Origin) String() string {
	s := "Debian package " + o.Package + " " + o.Version
	if o.Suite != "" {
		s += " (" + o.Suite + ")"
	}
	return s + ", file " + o.File
}

// Platforms lists the launch configurations.
type Platforms struct {
	SNP []SNP `yaml:"snp" doc:"AMD SEV-SNP (and SEV-ES, SEV) launch configurations."`
	TDX []TDX `yaml:"tdx" doc:"Intel TDX launch configurations."`
}

// SNP is a matrix of AMD SEV launch configurations: every combination of
// VCPUs and VCPUTypes gets its own launch digest.
type SNP struct {
	Name          string    `yaml:"name" required:"true" doc:"Name of this configuration."`
	Firmware      string    `yaml:"firmware" required:"true" doc:"Name of an entry in firmware."`
	Mode          SNPMode   `yaml:"mode" doc:"snp, seves, sev or snp:svsm. Default snp."`
	VMM           VMM       `yaml:"vmm" doc:"qemu, ec2 or gce. Default qemu."`
	VCPUs         []int     `yaml:"vcpus" required:"true" doc:"vCPU counts, for example [1, 2, 4, 8]."`
	VCPUTypes     []string  `yaml:"vcpuTypes" doc:"vCPU type names as QEMU's -cpu spells them (EPYC-v4, EPYC-Milan, EPYC-Genoa …). Required for qemu."`
	GuestFeatures *Uint64   `yaml:"guestFeatures" doc:"SEV_FEATURES of the VMSA, for example 0x1. Default 0x1."`
	Policy        *Uint64   `yaml:"policy" doc:"SNP guest policy, for example 0x30000. Default 0x30000."`
	KernelHashes  bool      `yaml:"kernelHashes" doc:"QEMU's kernel-hashes=on: the firmware's SNP_KERNEL_HASHES page binds kernel, initrd and command line."`
	Profile       string    `yaml:"profile" doc:"VMSA profile for older host stacks (see docs/measure-snp.md). Default: current."`
	SVSM          *File     `yaml:"svsm" doc:"With mode snp:svsm: the Coconut SVSM binary."`
	VarsSize      Size      `yaml:"varsSize" doc:"With mode snp:svsm: size of the OVMF variable store."`
	IDBlock       *IDBlock  `yaml:"idBlock" doc:"Generate an ID block and ID auth block for this configuration."`
	HostData      *HexBytes `yaml:"hostData" doc:"HOST_DATA the host sets at launch (32 bytes hex), to put in policies."`
	MinimumTCB    *SNPTCB   `yaml:"minimumTCB" doc:"Oldest AMD firmware a key authority accepts, as the report's REPORTED_TCB security version numbers (Trustee's EAR policy checks snp_bootloader, snp_tee_svn, snp_snp_svn, snp_microcode). Default 0 for each: any firmware, which key-authority/*/bindings.json says (snp_minimum_tcb)."`
}

// SNPTCB is a minimum TCB: each security version number (0-255) the
// platform's reported TCB must reach.
type SNPTCB struct {
	Bootloader uint32 `yaml:"bootloader" doc:"Minimum BOOT_LOADER SVN (0-255)."`
	TEE        uint32 `yaml:"tee" doc:"Minimum TEE SVN (0-255)."`
	SNP        uint32 `yaml:"snp" doc:"Minimum SNP firmware SVN (0-255)."`
	Microcode  uint32 `yaml:"microcode" doc:"Minimum microcode SVN (0-255)."`
}

// IDBlock configures the SNP ID block and ID auth block.
type IDBlock struct {
	FamilyID  HexBytes `yaml:"familyID" doc:"16 bytes, hex."`
	ImageID   HexBytes `yaml:"imageID" doc:"16 bytes, hex."`
	GuestSVN  uint32   `yaml:"guestSVN" doc:"Guest security version number."`
	IDKey     Path     `yaml:"idKey" required:"true" doc:"ID key, PEM P-384 private key."`
	AuthorKey Path     `yaml:"authorKey" doc:"Author key, PEM P-384 private key (optional)."`
}

// TDX is a matrix of Intel TDX launch configurations.
type TDX struct {
	Name        string    `yaml:"name" required:"true" doc:"Name of this configuration."`
	Firmware    string    `yaml:"firmware" required:"true" doc:"Name of an entry in firmware."`
	PageOrder   PageOrder `yaml:"pageOrder" doc:"single-pass (QEMU 9 and later) or two-pass (QEMU 8.x). Default: derived from qemuVersion, else both are reported."`
	QEMUVersion string    `yaml:"qemuVersion" doc:"QEMU version of the host, for example 9.2.0; selects the page order and kernel loading."`
	Memory      Size      `yaml:"memory" required:"true" doc:"Guest memory, for example 2G."`
	VCPUs       []int     `yaml:"vcpus" required:"true" doc:"vCPU counts."`
	ACPITables  *File     `yaml:"acpiTables" doc:"QEMU's etc/acpi/tables blob for this machine shape; without it RTMR0 is reported as not computable."`
	EDK2Profile string    `yaml:"edk2Profile" doc:"edk2 release of the firmware, which selects the events it logs (docs/measure-tdx.md): edk2-stable202408.01, edk2-stable202502, edk2-stable202505, edk2-stable202508. Without it only MRTD is computed."`
	// GuestMeasuresRTMR2 overrides what the kernel's version says.
	GuestMeasuresRTMR2 *bool   `yaml:"guestMeasuresRTMR2" doc:"Whether the guest kernel's EFI stub measures its command line and initrd into RTMR2. Default: read from the kernel's version (Linux 6.9 and later do); set it for a kernel with a backported or missing stub."`
	XFAM               *Uint64 `yaml:"xfam" doc:"The TD's XFAM (the extended CPU state it may use), which Trustee's EAR policy checks as its configuration claim. Default 0x642e7 (x87, SSE, AVX, AVX-512, PKRU, UINTR, AMX: QEMU -cpu host on Sapphire and Emerald Rapids)."`
}

// GPU lists the NVIDIA RIMs whose golden values the release publishes.
type GPU struct {
	RIMs               []File `yaml:"rims" required:"true" doc:"VBIOS and driver RIM files."`
	VerifyAt           Time   `yaml:"verifyAt" doc:"Verify signatures at this RFC 3339 time instead of now."`
	AllowExpiredSigner bool   `yaml:"allowExpiredSigner" doc:"Accept a RIM whose signer certificate has expired at verifyAt."`
}

// Model configures the encryption of the model weights.
type Model struct {
	Source     Path        `yaml:"source" required:"true" doc:"Folder or file of weights (safetensors, GGUF, configs, tokenizers)."`
	ReleaseID  string      `yaml:"releaseID" doc:"Bound into every file's associated data. Default <metadata.name>@<metadata.version>."`
	Recipients []Recipient `yaml:"recipients" required:"true" doc:"Who receives the wrapped data key."`
	OCI        *ModelOCI   `yaml:"oci" doc:"Also package the encrypted weights as an OCI artifact."`
	Keyset     string      `yaml:"keyset" doc:"Cleartext Tink keyset file of the data key (relative to this file; cvmkit release creates it, mode 0600, when missing). With it, cvmkit release encrypts deterministically: the same weights, release and key give the same bytes. Keep it secret; without it each release draws a new key."`
}

// Recipient receives the data key. Exactly one of its kinds is set.
type Recipient struct {
	HPKE    Path         `yaml:"hpke" doc:"HPKE public key file written by cvmkit keygen (X25519 or ML-KEM-768+X25519)."`
	KMS     string       `yaml:"kms" doc:"Key-encryption key URI, for example gcp-kms://projects/…/cryptoKeys/kek."`
	Trustee *TrusteePath `yaml:"trustee" doc:"Write the keyset as a Trustee KBS resource at repository/type/tag."`
	Azure   *AzureImport `yaml:"azure" doc:"Azure Key Vault import: the key wrapped with RSA-OAEP-256 to this RSA public key."`
}

// TrusteePath is a KBS resource path.
type TrusteePath struct {
	Repository string `yaml:"repository" doc:"Default: default."`
	Type       string `yaml:"type" required:"true" doc:"Resource type."`
	Tag        string `yaml:"tag" required:"true" doc:"Resource tag."`
}

// AzureImport wraps the data key for Azure Key Vault (BYOK).
type AzureImport struct {
	PublicKey Path   `yaml:"publicKey" required:"true" doc:"PEM RSA public key of the Key Vault key-exchange key."`
	KeyName   string `yaml:"keyName" required:"true" doc:"Name of the key to create in the vault."`
}

// ModelOCI says where the encrypted weights are packaged.
type ModelOCI struct {
	Layout Path   `yaml:"layout" output:"true" doc:"Write an OCI image layout here (cvmkit release and cvmkit encrypt -f)."`
	Ref    string `yaml:"ref" doc:"Push to this registry reference (registry/repo:tag), with the Docker config's credentials: cvmkit release pushes before signing and records the pushed digest in model/oci.json, which cvmkit verify recomputes from model/."`
}

// Signing selects a key or keyless signing. At most one is set; none means
// the statements are written unsigned.
type Signing struct {
	Key     string   `yaml:"key" doc:"cosign private key file (relative to this file), or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://). The password comes from COSIGN_PASSWORD."`
	Keyless *Keyless `yaml:"keyless" doc:"Sign with a Fulcio certificate for the CI's OIDC identity and log to Rekor."`
}

// Keyless configures Fulcio/Rekor signing.
type Keyless struct {
	FulcioURL  string `yaml:"fulcioURL" doc:"Default https://fulcio.sigstore.dev."`
	RekorURL   string `yaml:"rekorURL" doc:"Default https://rekor.sigstore.dev."`
	OIDCIssuer string `yaml:"oidcIssuer" doc:"Expected issuer of the CI's token."`
}

// SBOM selects SBOM formats.
type SBOM struct {
	Formats []SBOMFormat `yaml:"formats" doc:"spdx-json and/or cyclonedx-json."`
}

// KeyAuthorities selects the policies to write.
type KeyAuthorities struct {
	Targets      []Authority `yaml:"targets" doc:"trustee, azure-skr, sev-check, tdx-check, ita."`
	AllowUnbound bool        `yaml:"allowUnbound" doc:"Write policies even for a configuration whose values leave the kernel, initrd, command line or root filesystem unbound; the bundle records it."`
}
