package policy

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// Targets are the key authorities policies are written for.
var Targets = []string{"trustee", "azure-skr", "sev-check", "tdx-check", "ita"}

// RenderOptions are a target's settings.
type RenderOptions struct {
	// AllowUnbound writes policies for configurations that leave an input
	// unbound (recorded in bindings.json and the policies).
	AllowUnbound bool
	// Resource overrides the Trustee KBS resource path of the data key;
	// Authority is the Microsoft Azure Attestation URL (azure-skr).
	Resource, Authority string
	// UnboundHint is the hint of the error that refuses an unbound
	// configuration: what the caller's user can change.
	UnboundHint string
}

// Rendered is one target's files (bindings.json included) and what its
// configurations bind.
type Rendered struct {
	Files    map[string][]byte
	Values   *Values
	Bindings []refvalues.Binding
	Unbound  map[string][]string
}

// Render makes one target's files from a release's documents: the values
// and bindings (FromReferenceValues), the binding check, the target's files
// and bindings.json. cvmkit policy, cvmkit release and verify --rebuild
// all make them here.
func Render(r *refvalues.Release, target string, o RenderOptions) (*Rendered, error) {
	v, reports, err := FromReferenceValues(r)
	if err != nil {
		return nil, err
	}
	v.AllowUnbound = o.AllowUnbound
	if o.Resource != "" {
		v.Resource = o.Resource
	}
	filterPlatform(target, v, &reports)
	unbound, err := CheckBindings(v)
	if err != nil {
		return nil, outcome.PolicyError(err, o.UnboundHint)
	}
	files, err := targetFiles(target, v, unbound, o.Authority)
	if err != nil {
		return nil, err
	}
	if files[refvalues.BindingsFile], err = bindingsJSON(v, reports); err != nil {
		return nil, err
	}
	return &Rendered{Files: files, Values: v, Bindings: reports, Unbound: unbound}, nil
}

func targetFiles(target string, v *Values, unbound map[string][]string, authority string) (map[string][]byte, error) {
	files := map[string][]byte{}
	switch target {
	case "trustee":
		if v.Resource == "" {
			return nil, outcome.UsageError(errors.New("trustee: the release has no Trustee recipient for its data key"), "encrypt with --recipient trustee:REPO/TYPE/TAG, or pass --resource REPO/TYPE/TAG")
		}
		msg, err := RVPSMessage(v)
		if err != nil {
			return nil, err
		}
		rego, err := TrusteeResourcePolicy(v, unbound)
		if err != nil {
			return nil, err
		}
		files["rvps-reference-values.json"], files["resource-policy.rego"] = msg, rego
		files["resource-policy.json"] = TrusteePolicyRequest(rego)
		// Where the data key goes in the KBS, and where the release has it.
		res, err := json.MarshalIndent(map[string]string{
			"resource_path": v.Resource,
			"resource_uri":  "kbs:///" + v.Resource,
			"secrets_file":  "trustee/" + v.Resource,
			"content":       "the model's data key, a cleartext Tink keyset (JSON), written only to the secrets folder (cvmkit release --secrets-out, default DIR.secrets), never to the release; load it with kbs-client config set-resource --path " + v.Resource + " --resource-file <secrets>/trustee/" + v.Resource,
		}, "", "  ")
		if err != nil {
			return nil, err
		}
		files["resource.json"] = append(res, '\n')
	case "azure-skr":
		if authority == "" {
			return nil, outcome.UsageError(errors.New("azure-skr needs --authority"), "give the Microsoft Azure Attestation URL, like https://myattest.weu.attest.azure.net")
		}
		b, err := AzureSKRPolicy(v, authority)
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		files["release-policy.json"] = b
	case "ita":
		m, err := ITAKeyTransferPolicies(v)
		if err != nil {
			return nil, outcome.InputError(err)
		}
		for n, b := range m {
			files[n+".json"] = b
		}
	case "sev-check", "tdx-check":
		for _, l := range v.Launches {
			var err error
			switch {
			case target == "sev-check" && l.Platform == SNP:
				err = addSEVCheck(files, l.Name, l.SNPPins)
			case target == "tdx-check" && l.Platform == TDX:
				err = addTDXCheck(files, l.Name, l.Name, TDXCheck{MRTD: l.MRTD, RTMRs: l.RTMR})
			}
			if err != nil {
				return nil, err
			}
		}
		if len(files) == 0 {
			return nil, outcome.InputError(fmt.Errorf("%s: the release has no configuration of that platform", target))
		}
	}
	return files, nil
}

// FromReferenceValues is the binding analysis: the launch values of every
// configuration of a release, and for each which of firmware, kernel,
// initrd, command line and root filesystem they bind — and why not, for
// what they leave unbound (docs/md). A kernel is bound only when the
// measured one is the image's (its lock's SHA-256), the root filesystem only
// when the measured command line is the image's and carries its dm-verity
// root hash.
func FromReferenceValues(rv *refvalues.Release) (*Values, []refvalues.Binding, error) {
	if len(rv.SNP) == 0 && len(rv.TDX) == 0 && rv.GPU == nil {
		return nil, nil, outcome.InputError(fmt.Errorf("%s holds no measurements (measurements/snp*.json, tdx*.json) and no GPU reference (%s): nothing to sign as reference values", rv.Name, refvalues.GPUPath))
	}
	v := &Values{Release: rv.Name}
	var rootHash, cmdline string
	kernelSHA := rv.OutputSHA256("vmlinuz")
	if rv.Lock != nil {
		rootHash, cmdline = rv.Lock.Verity.RootHash, rv.Lock.Cmdline
	}
	// bind records what a configuration's values bind. paramsWhy, when
	// set, says why the initrd and command line are not measured although
	// the kernel is (a TD whose kernel does not measure RTMR2).
	bind := func(l *Launch, kernel *refvalues.File, cmd string, measuresBoot bool, why, paramsWhy string) {
		l.Binds = []string{BindsFirmware}
		l.Why = map[string]string{}
		switch {
		case !measuresBoot:
			for _, b := range Bindable[1:] {
				l.Why[b] = why
			}
			return
		case kernel == nil:
			for _, b := range Bindable[1:] {
				l.Why[b] = "no kernel was measured with these values"
			}
			return
		case kernelSHA != "" && kernel.SHA256 != kernelSHA:
			l.Why[BindsKernel] = "the measured kernel is not the release's image/vmlinuz"
		default:
			l.Binds = append(l.Binds, BindsKernel)
		}
		if paramsWhy != "" {
			l.Why[BindsInitrd], l.Why[BindsCmdline] = paramsWhy, paramsWhy
			l.Why[BindsRootfs] = "the dm-verity root hash is on the command line, which is not measured"
			return
		}
		l.Binds = append(l.Binds, BindsInitrd, BindsCmdline)
		switch {
		case cmd != cmdline || cmdline == "":
			l.Why[BindsRootfs] = "the measured command line is not the image's, which carries the dm-verity root hash"
		case rootHash == "" || !strings.Contains(cmd, rootHash):
			l.Why[BindsRootfs] = "the command line does not carry the dm-verity root hash"
		default:
			l.Binds = append(l.Binds, BindsRootfs)
		}
	}
	keys := rv.MeasurementKeys()
	// Configuration names: "snp-<entry>" for measurements/snp.json,
	// "<document>.<entry>" for one document per configuration.
	name := func(k, platform, entry string) string {
		if k == platform {
			return platform + "-" + entry
		}
		return k + "." + entry
	}
	for _, k := range keys {
		doc, ok := rv.SNP[k]
		if !ok {
			continue
		}
		for _, e := range doc.Measurements {
			pins, err := doc.Pins(e, "measurements/"+k+".json")
			if err != nil {
				return nil, nil, outcome.InputError(err)
			}
			l := Launch{Name: name(k, "snp", e.Name), Platform: SNP, SNPPins: pins}
			cmd := ""
			if doc.Cmdline != nil {
				cmd = doc.Cmdline.Value
			}
			if t := doc.MinimumTCB; t != nil {
				l.MinTCB = &TCB{Bootloader: t.Bootloader, TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode}
			}
			bind(&l, doc.Kernel, cmd, doc.KernelHashes, "the firmware has no SNP kernel-hashes section (QEMU kernel-hashes=on), so the digest binds the firmware only", "")
			v.Launches = append(v.Launches, l)
		}
	}
	for _, k := range keys {
		doc, ok := rv.TDX[k]
		if !ok {
			continue
		}
		for _, m := range doc.MRTD {
			d, err := hex.DecodeString(m.Value)
			if err != nil || len(d) != 48 {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: MRTD is not 48 bytes of hex", refvalues.TDXPath))
			}
			l := Launch{Name: name(k, "tdx", m.PageOrder), Platform: TDX, MRTD: d}
			for i, r := range doc.RTMR {
				if r != nil {
					if l.RTMR[i], err = hex.DecodeString(*r); err != nil {
						return nil, nil, outcome.InputError(fmt.Errorf("%s: RTMR%d is not hex", refvalues.TDXPath, i))
					}
				}
			}
			cmd := ""
			if doc.Cmdline != nil {
				cmd = doc.Cmdline.Value
			}
			if doc.XFAM != "" {
				x, err := strconv.ParseUint(doc.XFAM, 0, 64)
				if err != nil {
					return nil, nil, outcome.InputError(fmt.Errorf("measurements/%s.json: xfam %q is not a number", k, doc.XFAM))
				}
				l.XFAM = binary.LittleEndian.AppendUint64(nil, x) // as the quote carries it
			}
			for _, e := range doc.Events {
				d, err := hex.DecodeString(e.Digest)
				if err != nil || len(d) != 48 {
					return nil, nil, outcome.InputError(fmt.Errorf("measurements/%s.json: event %q: digest is not 48 bytes of hex", k, e.Description))
				}
				switch {
				case e.RTMR == 1 && e.Type == "EV_EFI_BOOT_SERVICES_APPLICATION" && l.KernelEvent == nil:
					l.KernelEvent = d // the kernel (or UKI) QEMU's loader hands over, device path File(kernel)
				case e.RTMR == 2 && strings.HasPrefix(e.Description, "LoadOptions"):
					l.LoadOptionsEvent = d
				}
			}
			paramsWhy := ""
			if doc.GuestCC != nil && !*doc.GuestCC {
				paramsWhy = "RTMR2 stays zero: " + cmp.Or(doc.GuestCCSource, "the guest kernel does not measure its command line and initrd")
			}
			bind(&l, doc.Kernel, cmd, l.RTMR[1] != nil && l.RTMR[2] != nil, "RTMR1 and RTMR2 are not computed (no edk2 profile, or a firmware that measures nothing into them), so MRTD binds the firmware only", paramsWhy)
			v.Launches = append(v.Launches, l)
		}
	}
	if rv.GPU != nil {
		v.GPU = &GPU{VBIOS: rv.GPU.Versions.VBIOS, Driver: rv.GPU.Versions.Driver}
	}
	// The Trustee resource of the data key, from the model's key index.
	if rv.Keys != nil {
		v.Resource = rv.Keys.TrusteeResource()
	}
	var reports []refvalues.Binding
	for _, l := range v.Launches {
		r := refvalues.Binding{Configuration: l.Name, Platform: l.Platform, Binds: l.Binds, Unbound: append([]string{}, l.Unbound()...)}
		switch {
		case l.Platform == SNP && l.MinTCB == nil:
			r.MinimumTCB = "any (no minimumTCB in the config: every SVN from 0 is accepted)"
		case l.Platform == SNP:
			t := l.MinTCB
			r.MinimumTCB = fmt.Sprintf("bootloader>=%d tee>=%d snp>=%d microcode>=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
		case l.Platform == TDX && l.XFAM != nil:
			r.XFAM = fmt.Sprintf("%#x", binary.LittleEndian.Uint64(l.XFAM))
		}
		if len(r.Unbound) > 0 {
			r.Why = map[string]string{}
			for _, u := range r.Unbound {
				r.Why[u] = l.Why[u]
			}
		}
		reports = append(reports, r)
	}
	if len(v.Launches) == 0 {
		return nil, nil, outcome.InputError(fmt.Errorf("%s has no SEV-SNP or TDX measurements (%s, %s)", rv.Name, refvalues.SNPPath, refvalues.TDXPath))
	}
	return v, reports, nil
}

// filterPlatform keeps only the configurations a platform-specific target
// judges (sev-check: SEV-SNP; tdx-check, ita: TDX).
func filterPlatform(target string, v *Values, reports *[]refvalues.Binding) {
	only := map[string]string{"sev-check": SNP, "tdx-check": TDX, "ita": TDX}[target]
	if only == "" {
		return
	}
	var keep []Launch
	var keepReports []refvalues.Binding
	for i, l := range v.Launches {
		if l.Platform == only {
			keep, keepReports = append(keep, l), append(keepReports, (*reports)[i])
		}
	}
	v.Launches, *reports = keep, keepReports
}

// bindingsJSON is the bindings.json written beside every
func bindingsJSON(v *Values, reports []refvalues.Binding) ([]byte, error) {
	b, err := json.MarshalIndent(refvalues.Bindings{Release: v.Release, AllowUnbound: v.AllowUnbound, Configurations: reports}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
