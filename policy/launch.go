package policy

import (
	"encoding/hex"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/refvalues"
)

// Platform names.
const (
	SNP = "snp"
	TDX = "tdx"
)

// What a launch measurement can bind (DESIGN "What each measurement
// actually binds"). A key-release policy for values that leave one of
// these unbound would release the key to a VM running anything there.
const (
	BindsFirmware = "firmware"
	BindsKernel   = "kernel"
	BindsInitrd   = "initrd"
	BindsCmdline  = "cmdline"
	BindsRootfs   = "rootfs"
)

// Bindable lists them in order.
var Bindable = []string{BindsFirmware, BindsKernel, BindsInitrd, BindsCmdline, BindsRootfs}

// Launch is the reference values of one platform configuration.
type Launch struct {
	// Name names the configuration (qemu-EPYC-Milan-4vcpu, tdx-single-pass).
	Name     string
	Platform string
	// SNP: what the configuration pins (refvalues.SNP.Pins, the one rule
	// for every consumer): the launch digest, guest policy, optional
	// HOST_DATA and ID block values.
	refvalues.SNPPins
	// SNP: the oldest firmware accepted, as REPORTED_TCB SVNs (nil: any).
	MinTCB *TCB
	// TDX: MRTD and the RTMRs (nil: not computed, so not pinned).
	MRTD []byte
	RTMR [4][]byte
	// TDX: XFAM as the quote carries it (8 bytes, little-endian; nil: not
	// pinned), and the digests of the kernel's EV_EFI_BOOT_SERVICES_APPLICATION
	// event (RTMR1) and of the LoadOptions event (RTMR2), which Trustee's
	// EAR policy looks up in the event log (nil: not predicted).
	XFAM             []byte
	KernelEvent      []byte
	LoadOptionsEvent []byte
	// Binds lists what the values bind, from Bindable.
	Binds []string
	// Why explains each unbound input (by name).
	Why map[string]string
}

// TCB is an SEV-SNP minimum TCB: the security version numbers a report's
// REPORTED_TCB must reach (SEV-SNP ABI spec, TCB_VERSION).
// TCB is an SEV-SNP TCB version (refvalues.TCB, one type for the
// document, the policies and the evidence checks).
type TCB = refvalues.TCB

// Unbound returns what the configuration's values do not bind.
func (l *Launch) Unbound() []string {
	var out []string
	for _, b := range Bindable {
		found := false
		for _, x := range l.Binds {
			found = found || x == b
		}
		if !found {
			out = append(out, b)
		}
	}
	return out
}

// GPU is the GPU reference values a policy allows.
type GPU struct {
	// VBIOS versions in NVIDIA's uppercase form, drivers as released.
	VBIOS, Driver []string
}

// Values is everything a key-authority policy is made from.
type Values struct {
	Release  string
	Launches []Launch
	GPU      *GPU
	// Resource is the key authority's path of the model's data key
	// (Trustee: repository/type/tag).
	Resource string
	// AllowUnbound lists the configurations emitted although they leave
	// inputs unbound (--allow-unbound), recorded in every output.
	AllowUnbound bool
}

// CheckBindings refuses configurations that leave an input unbound, unless
// v.AllowUnbound; it returns what is unbound per configuration either way.
func CheckBindings(v *Values) (map[string][]string, error) {
	unbound := map[string][]string{}
	// Configurations with the same gap and reasons are reported together.
	groups := map[string][]string{}
	for _, l := range v.Launches {
		u := l.Unbound()
		if len(u) == 0 {
			continue
		}
		unbound[l.Name] = u
		var reasons []string
		for _, x := range u {
			if w := l.Why[x]; w != "" && !containsString(reasons, w) {
				reasons = append(reasons, w)
			}
		}
		key := strings.Join(u, ", ") + " unbound"
		if len(reasons) > 0 {
			key += ": " + strings.Join(reasons, "; ")
		}
		groups[key] = append(groups[key], l.Name)
	}
	if len(groups) > 0 && !v.AllowUnbound {
		var bad []string
		for k, names := range groups {
			bad = append(bad, strings.Join(names, ", ")+" leave "+k)
		}
		sort.Strings(bad)
		return unbound, &UnboundError{Details: bad}
	}
	return unbound, nil
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// UnboundError says which configurations leave which inputs unbound.
type UnboundError struct{ Details []string }

func (e *UnboundError) Error() string {
	return "refusing to emit a key-release policy for values that do not bind the whole guest: " + strings.Join(e.Details, "; ")
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

// unique returns the sorted distinct hex values.
func unique(vals [][]byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vals {
		if v == nil {
			continue
		}
		h := hexs(v)
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}
