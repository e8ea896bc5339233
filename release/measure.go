package release

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/launch"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// inputs reads each input file once for the whole release: the firmware a
// dozen configurations share, the kernel every TD shape measures.
type inputs struct {
	files map[string]snp.Input // config inputs, with their digests
	image map[string][]byte    // image outputs, whose digests the lock has
}

func (in *inputs) read(p, what string, max int64) (snp.Input, error) {
	if f, ok := in.files[p]; ok {
		return f, nil
	}
	if in.files == nil {
		in.files = map[string]snp.Input{}
	}
	b, d, err := fileio.Read(p, what, max)
	if err != nil {
		return snp.Input{}, err
	}
	in.files[p] = snp.Input{Data: b, File: d}
	return in.files[p], nil
}

func (r *run) firmware(name string) (config.Firmware, error) {
	for _, f := range r.c.Release.Firmware {
		if f.Name == name {
			return f, nil
		}
	}
	return config.Firmware{}, fmt.Errorf("no firmware named %q", name)
}

// imageFile is an image output as the inventory records it (path in the
// release, size and digests from the image lock).
func (r *run) imageFile(name string) refvalues.File {
	f, _ := r.inv.File(refvalues.ImagePath(name))
	return f
}

// measure computes every configured platform against the built image.
// Paths in the documents are written relative to the config (firmware,
// ACPI tables) or the release (image/…), never as this machine's paths.
func (r *run) measure(ctx context.Context) (string, []string, error) {
	p := r.c.Release.Platforms
	if len(p.SNP) == 0 && len(p.TDX) == 0 {
		return "skipped: the config has no platforms", nil, nil
	}
	var in inputs
	cmd := r.inv.Docs.Lock.Cmdline
	var outs []string
	values, docs := 0, 0
	for _, s := range p.SNP {
		spec, fw, err := r.snpSpec(&in, s, cmd)
		if err != nil {
			return "", nil, fmt.Errorf("platforms.snp %s: %w", s.Name, err)
		}
		res, err := snp.Measure(ctx, *spec)
		if err != nil {
			return "", nil, fmt.Errorf("platforms.snp %s: %w", s.Name, err)
		}
		doc := res.Doc
		doc.Firmware.Path = string(fw.Path)
		if t := s.MinimumTCB; t != nil {
			doc.MinimumTCB = &refvalues.TCB{Bootloader: uint8(t.Bootloader), TEE: uint8(t.TEE), SNP: uint8(t.SNP), Microcode: uint8(t.Microcode)}
		}
		if doc.SVSM != nil {
			doc.SVSM.Path = string(s.SVSM.Path)
		}
		rel := refvalues.SNPDocPath(s.Name)
		if err := r.inv.WriteDoc(r.dir, rel, doc); err != nil {
			return "", nil, err
		}
		r.inv.Docs.SNP["snp-"+s.Name] = doc
		outs = append(outs, rel)
		docs++
		values += len(doc.Measurements)
		recipes, err := r.snpRecipes("snp-"+s.Name, rel, fw, s, doc)
		if err != nil {
			return "", nil, fmt.Errorf("platforms.snp %s: launch recipe: %w", s.Name, err)
		}
		outs = append(outs, recipes...)
	}
	for _, t := range p.TDX {
		for _, n := range t.VCPUs {
			spec, fw, err := r.tdxSpec(&in, t, n, cmd)
			if err != nil {
				return "", nil, fmt.Errorf("platforms.tdx %s: %w", t.Name, err)
			}
			doc, _, err := tdx.Measure(ctx, *spec)
			if err != nil {
				return "", nil, fmt.Errorf("platforms.tdx %s: %w", t.Name, err)
			}
			doc.Firmware.Path = string(fw.Path)
			if doc.ACPITables != nil {
				doc.ACPITables.Path = string(t.ACPITables.Path)
			}
			rel := refvalues.TDXDocPath(t.Name, n, len(t.VCPUs) > 1)
			if err := r.inv.WriteDoc(r.dir, rel, doc); err != nil {
				return "", nil, err
			}
			key, _ := refvalues.MeasurementName(rel)
			r.inv.Docs.TDX[key] = doc
			outs = append(outs, rel)
			docs++
			values += len(doc.MRTD)
			recipes, err := r.tdxRecipes(strings.TrimSuffix(path.Base(rel), ".json"), rel, fw, t, doc)
			if err != nil {
				return "", nil, fmt.Errorf("platforms.tdx %s: launch recipe: %w", t.Name, err)
			}
			outs = append(outs, recipes...)
		}
	}
	return fmt.Sprintf("%d SEV-SNP and TDX configurations, %d launch values, %d launch recipes", docs, values, len(outs)-docs), outs, nil
}

// snpSpec is the adapter from a platforms.snp entry to a measurement spec.
// The kernel and initrd are bound by the SHA-256 the image lock already
// holds: neither is read again.
func (r *run) snpSpec(in *inputs, s config.SNP, cmdline string) (*snp.Spec, config.Firmware, error) {
	fw, err := r.firmware(s.Firmware)
	if err != nil {
		return nil, fw, err
	}
	mode, err := snp.ParseMode(string(s.Mode))
	if s.Mode == "" {
		mode, err = snp.ModeSNP, nil
	}
	if err != nil {
		return nil, fw, outcome.InputError(err)
	}
	spec := &snp.Spec{Mode: mode, VCPUs: s.VCPUs, GuestFeatures: 1, Policy: 0x30000, Name: func(k string) string { return snpConfigKeys[k] },
		Hint: "fix platforms.snp " + s.Name + " in the config (docs/config.md)"}
	vmm, err := snp.ParseVMM(string(s.VMM))
	if err != nil {
		return nil, fw, outcome.InputError(err)
	}
	spec.VMMs = []snp.VMM{vmm}
	profile := s.Profile
	if profile == "" {
		profile = "current"
	}
	if spec.Profile, err = snp.ProfileFor(profile, spec.VMMs); err != nil {
		return nil, fw, outcome.InputError(err)
	}
	for _, t := range s.VCPUTypes {
		sig, err := snp.CPUSignature(t)
		if err != nil {
			return nil, fw, outcome.InputError(err)
		}
		spec.CPUs = append(spec.CPUs, snp.CPU{Name: t, Sig: sig})
	}
	if err := spec.Check(); err != nil {
		return nil, fw, err
	}
	if s.GuestFeatures != nil {
		spec.GuestFeatures = uint64(*s.GuestFeatures)
	}
	if s.Policy != nil {
		spec.Policy = uint64(*s.Policy)
	}
	if s.HostData != nil {
		spec.HostData = []byte(*s.HostData)
	}
	if spec.Firmware, err = in.read(r.c.Resolve(fw.Path), "firmware "+fw.Name, ovmf.MaxSize); err != nil {
		return nil, fw, err
	}
	if s.KernelHashes {
		k, i := r.imageFile(build.KernelName), r.imageFile(build.InitrdName)
		kernel := refvalues.File{Path: k.Path, Size: k.Size, SHA256: k.SHA256}
		initrd := refvalues.File{Path: i.Path, Size: i.Size, SHA256: i.SHA256}
		if spec.Boot, err = snp.BootFromDigests(kernel, &initrd, cmdline); err != nil {
			return nil, fw, err
		}
	}
	if b := s.IDBlock; b != nil {
		spec.ID = &snp.IDKeys{GuestSVN: b.GuestSVN}
		copy(spec.ID.FamilyID[:], []byte(b.FamilyID)) // 16 bytes (config validation)
		copy(spec.ID.ImageID[:], []byte(b.ImageID))
		if spec.ID.IDKey, err = ReadP384Key(r.c.Resolve(b.IDKey), "platforms.snp idBlock.idKey"); err != nil {
			return nil, fw, err
		}
		if b.AuthorKey != "" {
			if spec.ID.AuthorKey, err = ReadP384Key(r.c.Resolve(b.AuthorKey), "platforms.snp idBlock.authorKey"); err != nil {
				return nil, fw, err
			}
		}
	}
	if s.SVSM != nil {
		svsm, err := in.read(r.c.Resolve(s.SVSM.Path), "platforms.snp svsm", ovmf.MaxSize)
		if err != nil {
			return nil, fw, err
		}
		spec.SVSM, spec.VarsSize = &svsm, uint64(s.VarsSize)
	}
	return spec, fw, nil
}

// snpConfigKeys name a spec's settings as platforms.snp spells them.
var snpConfigKeys = map[string]string{"mode": "mode", "vmm-type": "vmm", "vcpus": "vcpus", "vcpu-type": "vcpuTypes",
	"append": "the image's command line", "explain": "explain", "dump-vmsa": "dump-vmsa", "svsm": "svsm"}

// ReadP384Key reads an ID block signing key (PEM, P-384).
func ReadP384Key(p, what string) (*ecdsa.PrivateKey, error) {
	b, _, err := fileio.Read(p, what, 1<<20)
	if err != nil {
		return nil, err
	}
	k, err := snp.ParseP384PrivateKey(b)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%s %q: %w", what, p, err), "make one with: openssl ecparam -name secp384r1 -genkey -noout -out key.pem")
	}
	return k, nil
}

// tdxSpec is the adapter from a platforms.tdx entry and one of its vCPU
// counts to a measurement spec. The kernel and initrd carry the digests of
// the image lock; the kernel's bytes are read once for every TD shape, the
// initrd's not at all.
func (r *run) tdxSpec(in *inputs, t config.TDX, vcpus int, cmdline string) (*tdx.Spec, config.Firmware, error) {
	fw, err := r.firmware(t.Firmware)
	if err != nil {
		return nil, fw, err
	}
	s := &tdx.Spec{QEMUVersion: t.QEMUVersion, Memory: int64(t.Memory), VCPUs: vcpus, SecureBoot: tdx.SecureBootAbsent, Cmdline: cmdline,
		Name: func(k string) string { return tdxConfigKeys[k] }, Hint: "fix platforms.tdx " + t.Name + " in the config (docs/config.md)"}
	if t.PageOrder != "" {
		if s.PageOrder, err = tdx.ParsePageOrder(string(t.PageOrder)); err != nil {
			return nil, fw, outcome.InputError(err)
		}
	}
	if t.EDK2Profile != "" {
		if s.Profile, err = tdx.ParseProfile(t.EDK2Profile); err != nil {
			return nil, fw, outcome.InputError(err)
		}
	}
	if t.XFAM != nil {
		x := uint64(*t.XFAM)
		s.XFAM = &x
	}
	if t.GuestMeasuresRTMR2 != nil {
		v := *t.GuestMeasuresRTMR2
		s.GuestMeasuresRTMR2, s.GuestSource = &v, fmt.Sprintf("cvmkit.yaml platforms.tdx %s guestMeasuresRTMR2", t.Name)
	}
	f, err := in.read(r.c.Resolve(fw.Path), "firmware "+fw.Name, ovmf.MaxSize)
	if err != nil {
		return nil, fw, err
	}
	s.Firmware = tdx.Input(f)
	if t.ACPITables != nil {
		a, err := in.read(r.c.Resolve(t.ACPITables.Path), "platforms.tdx acpiTables", 64<<20)
		if err != nil {
			return nil, fw, err
		}
		s.ACPITables = &tdx.Input{Data: a.Data, File: a.File}
	}
	kernel, err := r.imageBytes(in, build.KernelName)
	if err != nil {
		return nil, fw, err
	}
	s.Kernel = &tdx.Input{Data: kernel, File: r.imageFile(build.KernelName)}
	// The initrd is measured by its SHA-384 (and patched into the kernel by
	// its size): both come from the lock, so its bytes are not read.
	if rec := r.imageFile(build.InitrdName); rec.SHA384 != "" {
		s.Initrd = &tdx.Input{File: rec}
	}
	return s, fw, nil
}

// imageBytes reads an image output once (the kernel every TD
// shape measures); its digests come from the lock, not from this read.
func (r *run) imageBytes(in *inputs, name string) ([]byte, error) {
	if b, ok := in.image[name]; ok {
		return b, nil
	}
	b, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(refvalues.ImagePath(name))))
	if err != nil {
		return nil, err
	}
	if in.image == nil {
		in.image = map[string][]byte{}
	}
	in.image[name] = b
	return b, nil
}

// tdxConfigKeys name a spec's settings as platforms.tdx spells them.
var tdxConfigKeys = map[string]string{"qemu-version": "qemuVersion", "page-order": "pageOrder", "memory": "memory", "kernel": "the image's kernel",
	"initrd": "the image's initrd", "cmdline": "the image's command line", "guest-measures-rtmr2": "guestMeasuresRTMR2"}

// recipeImage is the release's image as launch recipes name it (paths
// relative to the release folder).
func (r *run) recipeImage() launch.Image {
	lock := r.inv.Docs.Lock
	img := launch.Image{Cmdline: lock.Cmdline}
	for _, o := range lock.Outputs {
		f := launch.File{Path: refvalues.ImagePath(o.Name), SHA256: o.SHA256}
		switch o.Name {
		case build.KernelName:
			img.Kernel = f
		case build.InitrdName:
			img.Initrd = f
		case build.RootImageName:
			img.RootFS = f
		case build.HashTreeName:
			img.HashTree = &f
		}
	}
	return img
}

func firmwareFile(fw config.Firmware) launch.File {
	return launch.File{Path: string(fw.Path), SHA256: strings.TrimPrefix(string(fw.Digest), "sha256:")}
}

// firmwareOrigin is where the config says a firmware comes from: its
// recipe (anyone can rebuild it) or a Debian package; nil when it does not
// say.
func firmwareOrigin(fw config.Firmware) *launch.Origin {
	switch {
	case fw.Build != nil:
		r, err := FirmwareRecipe(fw)
		if err != nil {
			return nil // refused before the stages run
		}
		return &launch.Origin{Recipe: r.Name, RecipeDigest: r.Digest(), Upstream: r.Upstream, Build: "cvmkit firmware build " + r.Name}
	case fw.Origin != nil:
		return &launch.Origin{Package: fw.Origin.Package, Version: fw.Origin.Version, File: fw.Origin.File, Suite: fw.Origin.Suite}
	}
	return nil
}

// snpRecipes writes launch/DOC.ENTRY.json for each measured SEV-SNP launch.
func (r *run) snpRecipes(doc, rel string, fw config.Firmware, s config.SNP, res *refvalues.SNP) ([]string, error) {
	var outs []string
	for _, e := range res.Measurements {
		l := launch.SNP{Configuration: doc + "." + e.Name, Document: rel, Measurement: e.Digest, VMM: e.VMM, Mode: string(s.Mode),
			VCPUType: e.VCPUType, VCPUs: e.VCPUs, Policy: uint64(*s.Policy), GuestFeatures: uint64(*s.GuestFeatures),
			KernelHashes: s.KernelHashes, IDBlock: e.IDBlock, IDAuth: e.IDAuth, Firmware: firmwareFile(fw), Origin: firmwareOrigin(fw)}
		if s.HostData != nil {
			l.HostData = []byte(*s.HostData)
		}
		if s.IDBlock != nil {
			l.AuthorKey = s.IDBlock.AuthorKey != ""
		}
		rec, err := launch.ForSNP(r.release, r.recipeImage(), l)
		if err != nil {
			return nil, err
		}
		p := refvalues.LaunchPath(l.Configuration)
		if err := r.inv.WriteDoc(r.dir, p, rec); err != nil {
			return nil, err
		}
		outs = append(outs, p)
	}
	return outs, nil
}

// tdxRecipes writes launch/DOC[.ORDER].json for a measured TD shape (one
// per MRTD candidate when the page order is open).
func (r *run) tdxRecipes(doc, rel string, fw config.Firmware, t config.TDX, res *refvalues.TDX) ([]string, error) {
	var outs []string
	for _, m := range res.MRTD {
		name := doc
		if len(res.MRTD) > 1 {
			name += "." + m.PageOrder
		}
		l := launch.TDX{Configuration: name, Document: rel, MRTD: m.Value, RTMR: res.RTMR, QEMUVersion: t.QEMUVersion, Memory: int64(t.Memory),
			VCPUs: res.VCPUs, Firmware: firmwareFile(fw), Origin: firmwareOrigin(fw), KernelMeasuresRTMR2: res.GuestCC != nil && *res.GuestCC}
		if t.ACPITables != nil {
			l.ACPITables = &launch.File{Path: string(t.ACPITables.Path), SHA256: strings.TrimPrefix(string(t.ACPITables.Digest), "sha256:")}
		}
		rec, err := launch.ForTDX(r.release, r.recipeImage(), l)
		if err != nil {
			return nil, err
		}
		p := refvalues.LaunchPath(name)
		if err := r.inv.WriteDoc(r.dir, p, rec); err != nil {
			return nil, err
		}
		outs = append(outs, p)
	}
	return outs, nil
}
