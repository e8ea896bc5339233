package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/verify"
)

// remeasure recomputes every value of the release's measurement documents
// (as 'cvmkit measure snp/tdx --json' wrote them) from the inputs they name
// by digest — the config's pinned inputs and the rebuilt image — and
// compares each value. A document whose inputs cannot all be found, or
// whose options the document does not record, is skipped with the reason.
func (a *app) remeasure(ctx context.Context, dir string, c *config.Config, imageDir string) ([]verify.Compared, error) {
	idx, err := inputIndex(c, imageDir)
	if err != nil {
		return nil, err
	}
	var out []verify.Compared
	entries, _ := os.ReadDir(filepath.Join(dir, "measurements"))
	for _, e := range entries {
		rel := "measurements/" + e.Name()
		name, ok := refvalues.MeasurementName(rel)
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		var rows []verify.Compared
		if refvalues.MeasurementPlatform(name) == "snp" {
			rows, err = a.remeasureSNP(ctx, rel, b, idx)
		} else {
			rows, err = a.remeasureTDX(ctx, rel, b, idx)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// inputIndex maps the SHA-256 of every file the config pins and of every
// rebuilt image file to its path.
func inputIndex(c *config.Config, imageDir string) (map[string]string, error) {
	idx := map[string]string{}
	add := func(p string) error {
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		d, err := config.FileDigest(p)
		if err != nil {
			return err
		}
		idx[d.Hex()] = p
		return nil
	}
	for _, in := range c.Inputs() {
		if !in.Dir {
			if err := add(c.Resolve(config.Path(in.Path))); err != nil {
				return nil, err
			}
		}
	}
	entries, err := os.ReadDir(imageDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := add(filepath.Join(imageDir, e.Name())); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

func skipped(path, why string) []verify.Compared {
	return []verify.Compared{{Path: path, Status: verify.Skipped, Detail: why}}
}

func compared(path, name, want, got string) verify.Compared {
	if want == got {
		return verify.Compared{Path: path + "#" + name, Status: verify.OK, Detail: "recomputed " + short(got)}
	}
	return verify.Compared{Path: path + "#" + name, Status: "differs", Detail: "released " + short(want) + ", recomputed " + short(got)}
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func (a *app) remeasureSNP(ctx context.Context, p string, b []byte, idx map[string]string) ([]verify.Compared, error) {
	var doc refvalues.SNP
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	fw, ok := idx[doc.Firmware.SHA256]
	if !ok {
		return skipped(p, "its firmware (sha256 "+short(doc.Firmware.SHA256)+") is not an input of the config"), nil
	}
	if doc.OVMFHash != "" || doc.SVSM != nil {
		return skipped(p, "snp:ovmf-hash and snp:svsm documents are not recomputed"), nil
	}
	// The document → spec adapter: one digest per entry, each with its own
	// VMM, vCPU signature and count.
	s := snp.Spec{Firmware: snp.Input{File: refvalues.File{Path: fw}}}
	var err error
	if s.Mode, err = snp.ParseMode(doc.Mode); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	for _, e := range doc.Measurements {
		v, err := snp.ParseVMM(e.VMM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if !slices.Contains(s.VMMs, v) {
			s.VMMs = append(s.VMMs, v)
		}
	}
	if s.Profile, err = snp.ProfileFor(doc.Profile, s.VMMs); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if doc.GuestFeatures != "" {
		if s.GuestFeatures, err = strconv.ParseUint(doc.GuestFeatures, 0, 64); err != nil {
			return nil, fmt.Errorf("%s: guest_features: %w", p, err)
		}
	}
	if s.Firmware.Data, err = os.ReadFile(fw); err != nil {
		return nil, err
	}
	if doc.Kernel != nil {
		kernel, why := lookup(idx, doc.Kernel, "kernel")
		if why != "" {
			return skipped(p, why), nil
		}
		initrd := ""
		if doc.Initrd != nil && doc.Initrd.Path != "" {
			if initrd, why = lookup(idx, doc.Initrd, "initrd"); why != "" {
				return skipped(p, why), nil
			}
		}
		cmd := ""
		if doc.Cmdline != nil {
			cmd = doc.Cmdline.Value
		}
		if s.Boot, err = hashBoot(kernel, initrd, cmd); err != nil {
			return nil, err
		}
	}
	var out []verify.Compared
	for _, e := range doc.Measurements {
		one := s
		v, _ := snp.ParseVMM(e.VMM) // checked above
		one.VMMs = []snp.VMM{v}
		one.VCPUs, one.CPUs = []int{e.VCPUs}, nil
		if e.VCPUSig != "" {
			sig, err := strconv.ParseUint(e.VCPUSig, 0, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: vcpu_sig: %w", p, e.Name, err)
			}
			one.CPUs = []snp.CPU{{Name: e.VCPUType, Sig: uint32(sig)}}
		}
		if !s.Mode.NeedsVMSA() {
			one.VCPUs = nil
		}
		res, err := snp.Measure(ctx, one)
		if err != nil {
			return nil, err
		}
		out = append(out, compared(p, e.Name, e.Digest, res.Doc.Measurements[0].Digest))
	}
	return out, nil
}

func lookup(idx map[string]string, d *refvalues.File, what string) (string, string) {
	if p, ok := idx[d.SHA256]; ok {
		return p, ""
	}
	return "", "its " + what + " (sha256 " + short(d.SHA256) + ") is neither a config input nor a rebuilt image file"
}

func (a *app) remeasureTDX(ctx context.Context, p string, b []byte, idx map[string]string) ([]verify.Compared, error) {
	var doc refvalues.TDX
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	f := &tdxFlags{qemuVersion: doc.QEMUVersion, vcpus: doc.VCPUs, profile: doc.Profile, kernelBlob: doc.KernelBlob, secureBoot: doc.SecureBoot}
	// What the release was told about RTMR2 is taken over; what it read
	// from the kernel is read again. (Documents from before cvmkit read the
	// kernel's version carry an assumption without a source.)
	if doc.GuestCC != nil && (doc.GuestCCGiven || doc.GuestCCSource == "") {
		f.guestCC = optionalBool{set: true, value: *doc.GuestCC, source: doc.GuestCCSource}
	}
	f.xfam = doc.XFAM
	var why string
	if f.firmware, why = lookup(idx, &doc.Firmware, "firmware"); why != "" {
		return skipped(p, why), nil
	}
	if doc.PageOrderSource == "--page-order" && len(doc.MRTD) == 1 {
		f.pageOrder = doc.MRTD[0].PageOrder
	}
	if doc.Memory != 0 {
		f.memory = strconv.FormatInt(doc.Memory, 10)
	}
	for _, in := range []struct {
		d    *refvalues.File
		dst  *string
		what string
	}{{doc.Kernel, &f.kernel, "kernel"}, {doc.Initrd, &f.initrd, "initrd"}, {doc.ACPITables, &f.acpiTables, "ACPI tables"}} {
		if in.d != nil && in.d.Path != "" {
			if *in.dst, why = lookup(idx, in.d, in.what); why != "" {
				return skipped(p, why), nil
			}
		}
	}
	if doc.Cmdline != nil {
		f.cmdline = doc.Cmdline.Value
	}
	// RTMR3 extensions and the guest's own CC measurement are not recorded
	// in the document; a document that used them cannot be recomputed.
	for _, e := range doc.Events {
		if e.RTMR == 3 {
			return skipped(p, "it extends RTMR3, whose inputs the document does not record"), nil
		}
	}
	res, _, err := a.predictTDX(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("recomputing %s: %w", p, err)
	}
	var out []verify.Compared
	if len(res.MRTD) != len(doc.MRTD) {
		return []verify.Compared{{Path: p + "#MRTD", Status: "differs", Detail: fmt.Sprintf("%d MRTD candidates released, %d recomputed", len(doc.MRTD), len(res.MRTD))}}, nil
	}
	for i, m := range doc.MRTD {
		out = append(out, compared(p, "MRTD "+m.PageOrder, m.Value, res.MRTD[i].Value))
	}
	for i := range 4 {
		want, got := deref(doc.RTMR[i]), deref(res.RTMR[i])
		if want == "" && got == "" {
			continue
		}
		out = append(out, compared(p, "RTMR"+strconv.Itoa(i), want, got))
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}
