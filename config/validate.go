package config

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

var (
	pinnedRE   = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)
	platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)
	qemuVerRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
)

// validName is ^[a-z0-9][a-z0-9._-]{0,127}$ written out: as a regular
// expression the bounded repetition compiles into 128 states at every
// cvmkit start (~2 ms of package initialisation).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// kmsSchemes are the key URI prefixes Tink's KMS clients understand.
var kmsSchemes = []string{"gcp-kms://", "aws-kms://", "hcvault://", "fake-kms://"}

// validate checks what the types alone cannot: required combinations,
// references between sections, value ranges. Positions come from the
// decoder's node map.
func (c *Config) validate() {
	r, d := &c.Release, c.d
	if r.APIVersion != APIVersion {
		d.failAt("apiVersion", fmt.Sprintf("unsupported apiVersion %q", r.APIVersion), "this cvmkit reads apiVersion: "+APIVersion)
	}
	if r.Kind != Kind {
		d.failAt("kind", fmt.Sprintf("unsupported kind %q", r.Kind), "set kind: "+Kind)
	}
	if !validName(r.Metadata.Name) {
		d.failAt("metadata.name", fmt.Sprintf("bad release name %q", r.Metadata.Name), "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	if strings.TrimSpace(r.Metadata.Version) == "" || strings.ContainsAny(r.Metadata.Version, " \t\n/@") {
		d.failAt("metadata.version", fmt.Sprintf("bad release version %q", r.Metadata.Version), "use a version without spaces, '/' or '@', for example 1.4.0")
	}
	c.validateImage()

	fw := map[string]bool{}
	var fwNames []string
	for i, f := range r.Firmware {
		p := fmt.Sprintf("firmware[%d].name", i)
		if fw[f.Name] {
			d.failAt(p, fmt.Sprintf("firmware name %q is used twice", f.Name), "give each firmware entry its own name")
		}
		fw[f.Name] = true
		fwNames = append(fwNames, f.Name)
	}
	refFirmware := func(p, name string) {
		if !fw[name] {
			hint := "add it under firmware: with this name"
			if len(fwNames) > 0 {
				hint = didYouMean(name, fwNames)
				if hint == "" {
					hint = "firmware names: " + strings.Join(fwNames, ", ")
				}
			}
			d.failAt(p, fmt.Sprintf("no firmware named %q", name), hint)
		}
	}
	names := map[string]bool{}
	uniqueName := func(p, kind, name string) {
		if names[kind+"/"+name] {
			d.failAt(p, fmt.Sprintf("%s configuration name %q is used twice", kind, name), "give each configuration its own name")
		}
		names[kind+"/"+name] = true
		if !validName(name) {
			d.failAt(p, fmt.Sprintf("bad configuration name %q", name), "use lowercase letters, digits, '.', '_' and '-'")
		}
	}
	for i, s := range r.Platforms.SNP {
		p := fmt.Sprintf("platforms.snp[%d]", i)
		uniqueName(p+".name", "snp", s.Name)
		refFirmware(p+".firmware", s.Firmware)
		c.checkVCPUs(p+".vcpus", s.VCPUs)
		mode := s.Mode
		if mode == "" {
			mode = "snp"
		}
		if mode != "sev" && len(s.VCPUTypes) == 0 {
			d.failAt(p, fmt.Sprintf("missing vcpuTypes: mode %s puts the vCPU signature in each VMSA", mode), "add vcpuTypes: [EPYC-v4] (QEMU's -cpu name)")
		}
		if mode == "snp:svsm" && (s.SVSM == nil || s.VarsSize == 0) {
			d.failAt(p, "mode snp:svsm needs svsm and varsSize", "add svsm: {path, digest} and varsSize: the OVMF_VARS size")
		}
		if mode != "snp:svsm" && (s.SVSM != nil || s.VarsSize != 0) {
			d.failAt(p+".svsm", "svsm and varsSize are only used with mode snp:svsm", "remove them or set mode: snp:svsm")
		}
		if b := s.IDBlock; b != nil {
			if b.FamilyID != nil && len(b.FamilyID) != 16 {
				d.failAt(p+".idBlock.familyID", fmt.Sprintf("familyID has %d bytes, want 16", len(b.FamilyID)), "write 32 hex digits")
			}
			if b.ImageID != nil && len(b.ImageID) != 16 {
				d.failAt(p+".idBlock.imageID", fmt.Sprintf("imageID has %d bytes, want 16", len(b.ImageID)), "write 32 hex digits")
			}
			if mode != "snp" && mode != "snp:svsm" {
				d.failAt(p+".idBlock", "ID blocks exist only for SEV-SNP", "remove idBlock or set mode: snp")
			}
		}
		if t := s.MinimumTCB; t != nil {
			for k, v := range map[string]uint32{"bootloader": t.Bootloader, "tee": t.TEE, "snp": t.SNP, "microcode": t.Microcode} {
				if v > 255 {
					d.failAt(p+".minimumTCB."+k, fmt.Sprintf("%s SVN %d is more than 255", k, v), "an SVN is one byte of the reported TCB")
				}
			}
		}
		if s.HostData != nil && len(*s.HostData) != 32 {
			d.failAt(p+".hostData", fmt.Sprintf("hostData has %d bytes, want 32", len(*s.HostData)), "write 64 hex digits")
		}
	}
	for i, t := range r.Platforms.TDX {
		p := fmt.Sprintf("platforms.tdx[%d]", i)
		uniqueName(p+".name", "tdx", t.Name)
		refFirmware(p+".firmware", t.Firmware)
		c.checkVCPUs(p+".vcpus", t.VCPUs)
		if t.Memory < 32<<20 {
			d.failAt(p+".memory", fmt.Sprintf("memory %d bytes is too small for a TD", t.Memory), "write it with a unit, for example memory: 2G")
		}
		if t.QEMUVersion != "" && !qemuVerRE.MatchString(t.QEMUVersion) {
			d.failAt(p+".qemuVersion", fmt.Sprintf("bad QEMU version %q", t.QEMUVersion), "write it as major.minor[.patch], for example 9.2.0")
		}
	}
	if g := r.GPU; g != nil && len(g.RIMs) == 0 {
		d.failAt("gpu.rims", "gpu needs at least one RIM", "list the VBIOS and driver RIM files under gpu.rims, or remove gpu")
	}
	if m := r.Model; m != nil {
		if len(m.Recipients) == 0 {
			d.failAt("model.recipients", "the data key needs at least one recipient", "add an hpke, kms, trustee or azure recipient")
		}
		for i, rc := range m.Recipients {
			p := fmt.Sprintf("model.recipients[%d]", i)
			if n := count(rc.HPKE != "", rc.KMS != "", rc.Trustee != nil, rc.Azure != nil); n != 1 {
				d.failAt(p, fmt.Sprintf("a recipient must have exactly one of hpke, kms, trustee, azure (it has %d)", n), "split it into one list entry per recipient")
			}
			if rc.KMS != "" && !hasAnyPrefix(rc.KMS, kmsSchemes) {
				d.failAt(p+".kms", fmt.Sprintf("unsupported KMS key URI %q", rc.KMS), "use one of "+strings.Join(kmsSchemes, ", "))
			}
		}
		if o := m.OCI; o != nil && count(o.Layout != "", o.Ref != "") != 1 {
			d.failAt("model.oci", "model.oci needs exactly one of layout and ref", "")
		}
	}
	c.validateTargets()
	out := string(r.Output)
	if out == "" {
		out = DefaultOutput
	}
	if m := r.Model; m != nil && m.Keyset != "" {
		// The data key in the clear: never inside what is published, nor
		// inside the secrets folder (built whole by every release).
		if Overlaps(string(m.Keyset), out) {
			d.failAt("model.keyset", fmt.Sprintf("the data key %q is inside the release folder %q: it would be published", m.Keyset, out),
				"keep it beside the release, for example model.keyset: "+path.Clean(out)+"-data-key.keyset")
		}
		if r.Secrets != "" && Overlaps(string(m.Keyset), string(r.Secrets)) {
			d.failAt("model.keyset", fmt.Sprintf("the data key %q is inside the secrets folder %q, which every release builds anew", m.Keyset, r.Secrets),
				"keep it in its own place, for example model.keyset: keys/data-key.keyset")
		}
	}
	if r.Secrets != "" {
		if Overlaps(string(r.Secrets), out) {
			d.failAt("secrets", fmt.Sprintf("the secrets folder %q and the release folder %q overlap: the data key would be published", r.Secrets, out),
				"put the secrets folder beside the release, for example secrets: "+path.Clean(out)+".secrets")
		}
	}
	if s := r.Signing; s != nil && s.Key != "" && s.Keyless != nil {
		d.failAt("signing", "signing has both key and keyless", "choose one: key for a cosign key or KMS URI, keyless for Fulcio/Rekor")
	}
	if s := r.SBOM; s != nil {
		checkUnique(d, "sbom.formats", s.Formats)
	}
	checkUnique(d, "keyAuthorities.targets", r.KeyAuthorities.Targets)
}

func (c *Config) validateImage() {
	im, d := &c.Release.Image, c.d
	for i, b := range im.Base {
		p := fmt.Sprintf("image.base[%d]", i)
		switch count(b.OCI != "", b.Layout != "", b.Dir != "") {
		case 0:
			d.failAt(p, "a base entry needs one of oci, layout, dir", "")
		case 1:
		default:
			d.failAt(p, "a base entry must have exactly one of oci, layout, dir", "split it into one list entry per source")
		}
		if b.OCI != "" && !pinnedRE.MatchString(b.OCI) {
			d.failAt(p+".oci", fmt.Sprintf("OCI reference %q is not pinned by digest", b.OCI), "pin it: append @sha256:<digest> (crane digest "+b.OCI+" prints it)")
		}
		if b.Layout != "" && b.Digest == "" {
			d.failAt(p+".layout", "an OCI layout needs digest: the manifest or index to use", "add digest: sha256:… (see the layout's index.json)")
		}
		if b.OCI != "" && b.Digest != "" {
			d.failAt(p+".digest", "digest is for layout and dir; an oci reference carries its digest after @", "remove digest")
		}
		if b.Platform != "" && !platformRE.MatchString(b.Platform) {
			d.failAt(p+".platform", fmt.Sprintf("bad platform %q", b.Platform), "write os/arch[/variant], for example linux/amd64")
		}
	}
	for i, o := range im.Overlays {
		p := fmt.Sprintf("image.overlays[%d].dst", i)
		if !strings.HasPrefix(o.Dst, "/") || path.Clean(o.Dst) != o.Dst || strings.Contains(o.Dst, "..") {
			d.failAt(p, fmt.Sprintf("overlay destination %q must be a clean absolute path", o.Dst), "write it like /etc/app/config.yaml, without '..' or trailing '/'")
		}
	}
	k := im.Kernel
	switch {
	case k.Path != "" && k.OCI != "":
		d.failAt("image.kernel", "kernel has both path and oci", "choose one")
	case k.Path == "" && k.OCI == "":
		d.failAt("image.kernel", "kernel needs path (with digest) or oci (with in)", "")
	case k.Path != "" && k.Digest == "":
		d.failAt("image.kernel.path", "the kernel file is not pinned", "add digest: sha256:… (sha256sum prints it)")
	case k.OCI != "" && !pinnedRE.MatchString(k.OCI):
		d.failAt("image.kernel.oci", fmt.Sprintf("OCI reference %q is not pinned by digest", k.OCI), "append @sha256:<digest>")
	case k.OCI != "" && k.In == "":
		d.failAt("image.kernel", "with oci, in must name the kernel's path inside the artifact", "")
	}
	if im.Initrd.File != nil && (im.Initrd.Init.Target != "" || im.Initrd.Init.Compression != "" || len(im.Initrd.Init.Modules) > 0) {
		d.failAt("image.initrd.init", "init settings apply to cvmkit's initrd, but initrd.file replaces it", "remove init or file")
	}
	if t := im.Initrd.Init.Target; t != "" && !strings.HasPrefix(t, "/") {
		d.failAt("image.initrd.init.target", fmt.Sprintf("init target %q must be an absolute path", t), "for example /sbin/init")
	}
	if _, err := RenderCmdline(im.Cmdline, CmdlineFields{}); err != nil {
		d.failAt("image.cmdline", err.Error(), "the template fields are {{.Root}}, {{.RootHash}} and {{.Salt}} (docs/image.md)")
	}
	if strings.ContainsAny(im.Cmdline, "\n\r") {
		d.failAt("image.cmdline", "the command line must be one line", "use a YAML single-line string")
	}
	for _, kv := range [][2]string{{"device", im.RootFS.Device}, {"hashDevice", im.RootFS.HashDevice}} {
		if k, v := kv[0], kv[1]; v != "" && (!strings.HasPrefix(v, "/dev/") || strings.ContainsAny(v, " ,\t")) {
			d.failAt("image.rootfs."+k, fmt.Sprintf("device %q must be a /dev path without spaces or commas", v), "for example /dev/vda")
		}
	}
	l := im.RootFS.Limits
	if l.MaxFileSize < 0 || l.MaxTotalSize < 0 || l.MaxEntries < 0 {
		d.failAt("image.rootfs.limits", "limits must not be negative", "")
	}
}

// CmdlineFields are the values a command line template can use.
type CmdlineFields struct {
	// Root is every parameter cvmkit's init needs to set up the dm-verity
	// root (root hash, data and hash offsets, sizes).
	Root string
	// RootHash is the dm-verity root hash alone, in hex.
	RootHash string
	// Salt is the dm-verity salt, in hex.
	Salt string
}

// RenderCmdline fills the command line template tmpl.
func RenderCmdline(tmpl string, f CmdlineFields) (string, error) {
	t, err := template.New("cmdline").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("bad command line template: %s", strings.TrimPrefix(err.Error(), "template: cmdline:"))
	}
	var sb strings.Builder
	if err := t.Execute(&sb, f); err != nil {
		return "", fmt.Errorf("bad command line template: %s", strings.TrimPrefix(err.Error(), "template: cmdline:"))
	}
	return sb.String(), nil
}

func (c *Config) checkVCPUs(p string, vcpus []int) {
	seen := map[int]bool{}
	for i, n := range vcpus {
		if n < 1 || n > 512 {
			c.d.failAt(fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("vCPU count %d out of range", n), "use 1 to 512")
		}
		if seen[n] {
			c.d.failAt(fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("vCPU count %d is listed twice", n), "")
		}
		seen[n] = true
	}
	if len(vcpus) == 0 {
		c.d.failAt(p, "vcpus is empty", "list the vCPU counts, for example [1, 2, 4]")
	}
}

func checkUnique[T ~string](d *decoder, p string, list []T) {
	seen := map[T]bool{}
	for i, v := range list {
		if seen[v] {
			d.failAt(fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("%q is listed twice", v), "")
		}
		seen[v] = true
	}
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Defaults, applied after validation so that errors point at what the user
// wrote, not at values they did not write.
const (
	DefaultOutput       = "dist"
	DefaultPlatform     = "linux/amd64"
	DefaultInitTarget   = "/sbin/init"
	DefaultDevice       = "/dev/vda"
	DefaultHashDevice   = "/dev/vdb"
	DefaultMaxFileSize  = 16 << 30
	DefaultMaxTotalSize = 64 << 30
	DefaultMaxEntries   = 1000000
	DefaultSNPPolicy    = 0x30000
	DefaultGuestFeat    = 0x1
	// DefaultXFAM is what KVM gives a TD with QEMU -cpu host on Sapphire
	// and Emerald Rapids (Trustee's parsed quote test data carries the
	// same: "e742060000000000", the field's little-endian bytes).
	DefaultXFAM = 0x642e7
)

func (c *Config) setDefaults() {
	r := &c.Release
	if r.Output == "" {
		r.Output = DefaultOutput
	}
	for i := range r.Image.Base {
		if r.Image.Base[i].Platform == "" {
			r.Image.Base[i].Platform = DefaultPlatform
		}
	}
	in := &r.Image.Initrd.Init
	if r.Image.Initrd.File == nil {
		if in.Target == "" {
			in.Target = DefaultInitTarget
		}
		if in.Compression == "" {
			in.Compression = "zstd"
		}
	}
	fs := &r.Image.RootFS
	if fs.Verity == "" {
		fs.Verity = "appended"
	}
	if fs.Device == "" {
		fs.Device = DefaultDevice
	}
	if fs.Verity == "separate" && fs.HashDevice == "" {
		fs.HashDevice = DefaultHashDevice
	}
	if fs.Limits.MaxFileSize == 0 {
		fs.Limits.MaxFileSize = DefaultMaxFileSize
	}
	if fs.Limits.MaxTotalSize == 0 {
		fs.Limits.MaxTotalSize = DefaultMaxTotalSize
	}
	if fs.Limits.MaxEntries == 0 {
		fs.Limits.MaxEntries = DefaultMaxEntries
	}
	for i := range r.Platforms.SNP {
		s := &r.Platforms.SNP[i]
		if s.Mode == "" {
			s.Mode = "snp"
		}
		if s.VMM == "" {
			s.VMM = "qemu"
		}
		if s.Policy == nil {
			v := Uint64(DefaultSNPPolicy)
			s.Policy = &v
		}
		if s.GuestFeatures == nil {
			v := Uint64(DefaultGuestFeat)
			s.GuestFeatures = &v
		}
	}
	for i := range r.Platforms.TDX {
		if t := &r.Platforms.TDX[i]; t.XFAM == nil {
			v := Uint64(DefaultXFAM)
			t.XFAM = &v
		}
	}
	if m := r.Model; m != nil {
		if m.ReleaseID == "" {
			m.ReleaseID = r.Metadata.Name + "@" + r.Metadata.Version
		}
		for _, rc := range m.Recipients {
			if rc.Trustee != nil && rc.Trustee.Repository == "" {
				rc.Trustee.Repository = "default"
			}
		}
	}
	if r.SBOM == nil {
		r.SBOM = &SBOM{}
	}
	if len(r.SBOM.Formats) == 0 {
		r.SBOM.Formats = []SBOMFormat{"spdx-json", "cyclonedx-json"}
	}
}

// Overlaps reports whether one of two folder paths (both relative to the
// same folder, or both absolute) is the other or inside it.
func Overlaps(a, b string) bool {
	a, b = path.Clean(filepath.ToSlash(a)), path.Clean(filepath.ToSlash(b))
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") || a == "." || b == "."
}

// validateTargets refuses key-authority targets that the rest of the config
// cannot feed: what cvmkit release would otherwise refuse only after
// building and measuring.
func (c *Config) validateTargets() {
	r, d := &c.Release, c.d
	hasTrustee := false
	if r.Model != nil {
		for _, rc := range r.Model.Recipients {
			hasTrustee = hasTrustee || rc.Trustee != nil
		}
	}
	nSNP, nTDX := len(r.Platforms.SNP), len(r.Platforms.TDX)
	for i, t := range r.KeyAuthorities.Targets {
		p := fmt.Sprintf("keyAuthorities.targets[%d]", i)
		switch {
		case nSNP+nTDX == 0:
			d.failAt(p, fmt.Sprintf("target %s needs launch measurements, but the config has no platforms", t), "add platforms.snp or platforms.tdx entries, or remove keyAuthorities.targets")
		case t == "trustee" && !hasTrustee:
			d.failAt(p, "target trustee releases the data key from a Trustee KBS, but model.recipients has no trustee recipient", "add to model.recipients: - trustee: {repository: default, type: model, tag: "+r.Metadata.Name+"}")
		case t == "sev-check" && nSNP == 0:
			d.failAt(p, "target sev-check judges SEV-SNP launches, but the config has no platforms.snp", "add a platforms.snp entry, or remove sev-check from keyAuthorities.targets")
		case (t == "tdx-check" || t == "ita") && nTDX == 0:
			d.failAt(p, fmt.Sprintf("target %s judges TDX launches, but the config has no platforms.tdx", t), "add a platforms.tdx entry, or remove "+string(t)+" from keyAuthorities.targets")
		}
	}
}
