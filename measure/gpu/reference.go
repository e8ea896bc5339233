package gpu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/refvalues"
)

// ReferenceFormat names the reference-values document this package writes
// and reads (docs/gpu.md).
const ReferenceFormat = "cvmkit.gpu-reference/v1"

// NVDEC0 rule: NVIDIA's verifiers do not compare RIM index 35 when the
// report says NVDEC0 is disabled (NVDEC0_STATUS 0x55), because that
// register then holds no defined value.
const (
	nvdec0Index     = 35
	nvdec0Condition = "not compared when the report's NVDEC0_STATUS is 0x55 (NVDEC0 disabled)"
)

// ErrConflict marks RIMs that cannot form one reference: a VBIOS and a
// driver RIM of the same chip whose active indices overlap, or one RIM
// given twice.
var ErrConflict = errors.New("conflicting RIMs")

// The reference-values document's types live in package refvalues, with
// the release's other documents; these are their names here.
type (
	Reference            = refvalues.GPU
	ReferenceRoots       = refvalues.GPURoots
	VersionLists         = refvalues.GPUVersions
	RIMReference         = refvalues.RIMRef
	VersionForms         = refvalues.RIMVersionForms
	ReferenceMeasurement = refvalues.RIMMeasurement
	SignerReference      = refvalues.RIMSigner
	CertificateReference = refvalues.CertificateRef
)

// NewReference assembles verified RIMs (files[i] names rims[i] in the
// output; it may be nil) into reference values. It refuses a VBIOS and a
// driver RIM of the same chip whose active indices overlap: the two would
// both claim a register and the check could pass on either.
func NewReference(rims []*RIM, files []string) (*Reference, error) {
	if len(rims) == 0 {
		return nil, errors.New("gpu: no RIM given")
	}
	ref := &Reference{Format: ReferenceFormat}
	rr, err := RIMRoot()
	if err != nil {
		return nil, err
	}
	dr, err := DeviceRoot()
	if err != nil {
		return nil, err
	}
	ref.Roots = ReferenceRoots{RIM: Fingerprint(rr), Device: Fingerprint(dr)}
	for i, r := range rims {
		for j := range i {
			if err := conflict(rims[j], r, fileName(files, j), fileName(files, i)); err != nil {
				return nil, err
			}
		}
		ref.RIMs = append(ref.RIMs, rimReference(r, fileName(files, i)))
	}
	sort.SliceStable(ref.RIMs, func(i, j int) bool {
		a, b := ref.RIMs[i], ref.RIMs[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.SHA256 < b.SHA256
	})
	for i := 1; i < len(ref.RIMs); i++ {
		if ref.RIMs[i].SHA256 == ref.RIMs[i-1].SHA256 {
			return nil, fmt.Errorf("%w: the same RIM (sha256 %s) is given twice: %s and %s", ErrConflict, ref.RIMs[i].SHA256[:16], ref.RIMs[i-1].File, ref.RIMs[i].File)
		}
	}
	v := &ref.Versions
	for _, r := range ref.RIMs {
		switch r.Kind {
		case KindVBIOS:
			v.VBIOS = appendUnique(v.VBIOS, r.VersionForms.NVIDIA)
			v.VBIOSLowercase = appendUnique(v.VBIOSLowercase, r.VersionForms.Trustee)
		case KindDriver:
			v.Driver = appendUnique(v.Driver, r.Version)
		case KindSwitchBIOS:
			v.SwitchBIOS = appendUnique(v.SwitchBIOS, r.VersionForms.NVIDIA)
		}
	}
	for _, l := range []*[]string{&v.VBIOS, &v.VBIOSLowercase, &v.Driver, &v.SwitchBIOS} {
		sort.Strings(*l)
	}
	if v.VBIOS == nil {
		v.VBIOS, v.VBIOSLowercase = []string{}, []string{}
	}
	if v.Driver == nil {
		v.Driver = []string{}
	}
	return ref, nil
}

func fileName(files []string, i int) string {
	if i < len(files) {
		return files[i]
	}
	return fmt.Sprintf("RIM %d", i+1)
}

func appendUnique(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

// conflict reports overlapping active indices of a VBIOS and a driver RIM
// of the same chip (NVIDIA's "x-nvidia-gpu-vbios-index-no-conflict").
func conflict(a, b *RIM, fa, fb string) error {
	if a.Product != b.Product || a.Kind == b.Kind || (a.Kind != KindDriver && b.Kind != KindDriver) {
		return nil
	}
	act := map[int]bool{}
	for _, m := range a.Active() {
		act[m.Index] = true
	}
	var both []string
	for _, m := range b.Active() {
		if act[m.Index] {
			both = append(both, fmt.Sprint(m.Index))
		}
	}
	if len(both) > 0 {
		return fmt.Errorf("%w: %s (%s %s) and %s (%s %s) both have active index %s: a VBIOS and a driver RIM must measure disjoint registers",
			ErrConflict, fa, a.Kind, a.Version, fb, b.Kind, b.Version, strings.Join(both, ", "))
	}
	return nil
}

func rimReference(r *RIM, file string) RIMReference {
	out := RIMReference{
		File: file, SHA256: r.SHA256, TagID: r.TagID, Kind: r.Kind, Product: r.Product,
		Edition: r.Edition, Revision: r.Revision, ManufacturerID: r.ManufacturerID, Version: r.Version,
		VersionForms: VersionForms{NVIDIA: r.Version, Trustee: strings.ToLower(r.Version)},
		Measurements: []ReferenceMeasurement{},
	}
	if r.Kind != KindDriver {
		out.VersionForms.NVIDIA = strings.ToUpper(r.Version)
	}
	for _, m := range r.Active() {
		rm := ReferenceMeasurement{RIMIndex: m.Index, SPDMIndex: m.Index + 1, Name: m.Name, Size: m.Size}
		for _, a := range m.Alternatives {
			rm.Alternatives = append(rm.Alternatives, hex.EncodeToString(a))
		}
		if m.Index == nvdec0Index {
			rm.Condition = nvdec0Condition
		}
		out.Measurements = append(out.Measurements, rm)
	}
	if s := r.Signer; s != nil {
		out.Signer = SignerReference{Status: s.Status, VerifiedAt: FormatTime(s.VerifiedAt), Revocation: s.Revocation}
		for _, c := range s.Certs {
			out.Signer.Chain = append(out.Signer.Chain, CertificateReference{
				Subject: c.Subject.CommonName, SHA256: Fingerprint(c),
				NotBefore: FormatTime(c.NotBefore), NotAfter: FormatTime(c.NotAfter),
			})
		}
		for _, o := range s.OCSP {
			if o != "" {
				out.Signer.OCSP = s.OCSP
				break
			}
		}
	}
	return out
}

// ValidateReference checks a reference read back from JSON before it is used to
// judge evidence.
func ValidateReference(ref *Reference) error {
	if ref.Format != ReferenceFormat {
		return fmt.Errorf("%w reference: format %q, want %q", ErrMalformed, ref.Format, ReferenceFormat)
	}
	if len(ref.RIMs) == 0 {
		return fmt.Errorf("%w reference: no RIM", ErrMalformed)
	}
	for _, r := range ref.RIMs {
		switch r.Kind {
		case KindVBIOS, KindDriver, KindSwitchBIOS:
		default:
			return fmt.Errorf("%w reference: RIM %s has kind %q", ErrMalformed, r.SHA256, r.Kind)
		}
		for _, m := range r.Measurements {
			if m.RIMIndex < 0 || m.RIMIndex >= MaxRegisters || m.SPDMIndex != m.RIMIndex+1 || len(m.Alternatives) == 0 {
				return fmt.Errorf("%w reference: RIM %s measurement %d is inconsistent", ErrMalformed, r.SHA256, m.RIMIndex)
			}
			for _, a := range m.Alternatives {
				if b, err := hex.DecodeString(a); err != nil || len(b) != m.Size {
					return fmt.Errorf("%w reference: RIM %s measurement %d: alternative is not %d bytes of hex", ErrMalformed, r.SHA256, m.RIMIndex, m.Size)
				}
			}
		}
	}
	return nil
}
