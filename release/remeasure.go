package release

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/verify"
)

// remeasure recomputes every value of the release's measurement documents
// (as 'cvmkit measure snp/tdx --json' wrote them) from the inputs they name
// by digest — the config's pinned inputs and the rebuilt image — and
// compares each value. A document whose inputs cannot all be found, or
// whose options the document does not record, is skipped with the reason.
func remeasure(ctx context.Context, dir string, c *config.Config, imageDir string) ([]verify.Compared, error) {
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
			rows, err = remeasureSNP(ctx, rel, b, idx)
		} else {
			rows, err = remeasureTDX(ctx, rel, b, idx)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// inputIndex maps the SHA-256 of every input file of the config (its pin,
// checked when the config was loaded; unpinned files are hashed) and of
// every rebuilt image output to its path.
func inputIndex(c *config.Config, imageDir string) (map[string]string, error) {
	idx := map[string]string{}
	add := func(p string) error {
		if fi, err := os.Stat(p); os.IsNotExist(err) {
			return nil // not needed to recompute (the weights, with --inputs)
		} else if err != nil || !fi.Mode().IsRegular() {
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
		p := c.Resolve(config.Path(in.Path))
		switch {
		case in.Dir:
		case in.Digest != "":
			// Pinned: loading the config checked the file against its pin.
			idx[in.Digest.Hex()] = p
		default:
			if err := add(p); err != nil {
				return nil, err
			}
		}
	}
	// The rebuilt image's files by the digests its lock recorded while
	// writing them: not read again.
	lock, err := build.ReadLock(filepath.Join(imageDir, build.LockName))
	if err != nil {
		return nil, err
	}
	for _, o := range lock.Outputs {
		idx[o.SHA256] = filepath.Join(imageDir, o.Name)
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

func remeasureSNP(ctx context.Context, p string, b []byte, idx map[string]string) ([]verify.Compared, error) {
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
		// The hashes table holds only the files' SHA-256, which the index
		// found them by: they need not be read again.
		if _, why := lookup(idx, doc.Kernel, "kernel"); why != "" {
			return skipped(p, why), nil
		}
		var initrd *refvalues.File
		if doc.Initrd != nil && doc.Initrd.Path != "" {
			if _, why := lookup(idx, doc.Initrd, "initrd"); why != "" {
				return skipped(p, why), nil
			}
			initrd = doc.Initrd
		}
		cmd := ""
		if doc.Cmdline != nil {
			cmd = doc.Cmdline.Value
		}
		if s.Boot, err = snp.BootFromDigests(*doc.Kernel, initrd, cmd); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
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

// remeasureTDX is the document → spec adapter for TDX: the document's
// recorded options, its inputs found by digest.
func remeasureTDX(ctx context.Context, p string, b []byte, idx map[string]string) ([]verify.Compared, error) {
	var doc refvalues.TDX
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s := tdx.Spec{QEMUVersion: doc.QEMUVersion, VCPUs: doc.VCPUs, KernelBlob: tdx.KernelBlob(doc.KernelBlob), SecureBoot: tdx.SecureBootState(doc.SecureBoot), Memory: doc.Memory}
	var err error
	if doc.Profile != "" {
		if s.Profile, err = tdx.ParseProfile(doc.Profile); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	// What the release was told about RTMR2 is taken over; what it read
	// from the kernel is read again. (Documents from before cvmkit read the
	// kernel's version carry an assumption without a source.)
	if doc.GuestCC != nil && (doc.GuestCCGiven || doc.GuestCCSource == "") {
		v := *doc.GuestCC
		s.GuestMeasuresRTMR2, s.GuestSource = &v, doc.GuestCCSource
	}
	if doc.XFAM != "" {
		x, err := strconv.ParseUint(doc.XFAM, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: xfam %q: %w", p, doc.XFAM, err)
		}
		s.XFAM = &x
	}
	if doc.PageOrderSource == refvalues.PageOrderFlag && len(doc.MRTD) == 1 {
		if s.PageOrder, err = tdx.ParsePageOrder(doc.MRTD[0].PageOrder); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	for _, in := range []struct {
		d    *refvalues.File
		dst  **tdx.Input
		what string
	}{{&doc.Firmware, new(*tdx.Input), "firmware"}, {doc.Kernel, &s.Kernel, "kernel"}, {doc.Initrd, &s.Initrd, "initrd"}, {doc.ACPITables, &s.ACPITables, "ACPI tables"}} {
		if in.d == nil || in.d.Path == "" {
			continue
		}
		path, why := lookup(idx, in.d, in.what)
		if why != "" {
			return skipped(p, why), nil
		}
		// Found by its SHA-256: the bytes are needed, not another digest.
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		*in.dst = &tdx.Input{Data: data, File: *in.d}
		if in.what == "firmware" {
			s.Firmware = **in.dst
		}
	}
	if doc.Cmdline != nil {
		s.Cmdline = doc.Cmdline.Value
	}
	// RTMR3 extensions and the guest's own CC measurement are not recorded
	// in the document; a document that used them cannot be recomputed.
	for _, e := range doc.Events {
		if e.RTMR == 3 {
			return skipped(p, "it extends RTMR3, whose inputs the document does not record"), nil
		}
	}
	res, _, err := tdx.Measure(ctx, s)
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
