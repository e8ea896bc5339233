package cli

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/sign"
	"github.com/spf13/cobra"
)

// Policy targets.
var policyTargets = []string{"trustee", "azure-skr", "sev-check", "tdx-check", "ita"}

type policyResult struct {
	Target       string              `json:"target"`
	Release      string              `json:"release"`
	Output       string              `json:"output"`
	Files        []string            `json:"files"`
	Bindings     []refvalues.Binding `json:"bindings"`
	AllowUnbound bool                `json:"allow_unbound"`
	Unbound      map[string][]string `json:"unbound,omitempty"`
}

func (a *app) policyCmd() *cobra.Command {
	var out, authority, resource string
	var allowUnbound bool
	cmd := &cobra.Command{
		Use:               "policy TARGET DIR -o OUT",
		ValidArgsFunction: completePolicyTarget,
		Short:             "Write ready-to-load key-authority policies from a release folder",
		Long: `Read a release folder's reference values (measurements/snp-NAME.json,
tdx-NAME.json, gpu/gpu-reference.json, image/image.lock.json, model/keys/index.json) and write,
into the new folder OUT, the inputs of a key authority:

  trustee    rvps-reference-values.json (RVPS "sample" message: SNP launch
             measurements, mr_td and rtmr_0..3, GPU version allow-lists) and
             resource-policy.rego (KBS resource policy: releases the model's
             data key only when the CPU and GPU EAR appraisals are affirming and
             the launch values are exactly one configuration of the release)
  azure-skr  release-policy.json (Secure Key Release policy; --authority is the
             Microsoft Azure Attestation URL)
  sev-check  one go-sev-guest check policy per SEV-SNP configuration (.binpb, .textproto)
  tdx-check  one go-tdx-guest check policy per TDX configuration
  ita        one Intel Trust Authority key-transfer policy per TDX configuration

Every output folder also gets bindings.json: for each configuration, which of
firmware, kernel, initrd, command line and root filesystem its values bind
(docs/policy.md). A configuration that leaves one unbound is refused (exit 6)
unless --allow-unbound is given, which bindings.json and the policies record.`,
		Example: `  cvmkit policy trustee dist -o dist-policies/trustee
  cvmkit policy azure-skr dist --authority https://myattest.weu.attest.azure.net -o skr
  cvmkit policy sev-check dist -o sev-check --allow-unbound`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, dir := args[0], args[1]
			if !contains(policyTargets, target) {
				return outcome.UsageError(fmt.Errorf("unknown policy target %q", target), "targets: "+strings.Join(policyTargets, ", "))
			}
			if out == "" {
				return outcome.UsageError(errors.New("-o OUT is required"), "give a new folder for the policy files, e.g. -o trustee-policy")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			files, v, reports, unbound, err := makePolicies(dir, target, allowUnbound, resource, authority,
				"bind the kernel, initrd and command line (SEV-SNP: a firmware with the kernel-hashes section and kernelHashes: true; TDX: an edk2 profile so RTMR1/2 are computed, and a guest kernel whose EFI stub measures RTMR2, Linux 6.9+, or --guest-measures-rtmr2 for a backported one), or pass --allow-unbound to emit anyway (recorded)")
			if err != nil {
				return err
			}
			res := policyResult{Target: target, Release: v.Release, Output: out, Bindings: reports, AllowUnbound: allowUnbound, Unbound: unbound}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			err = atomicfile.Dir(out, func(tmp string) error {
				for _, n := range names {
					if err := os.WriteFile(filepath.Join(tmp, n), files[n], 0o644); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, n := range names {
				res.Files = append(res.Files, filepath.Join(out, n))
			}
			return a.emit(res, func(w io.Writer) {
				for _, r := range reports {
					u := "all bound"
					if len(r.Unbound) > 0 {
						u = "UNBOUND: " + strings.Join(r.Unbound, ", ")
					}
					fmt.Fprintf(w, "%-28s %-4s binds %s (%s)\n", r.Configuration, r.Platform, strings.Join(r.Binds, ", "), u)
				}
				for _, f := range res.Files {
					fmt.Fprintln(w, f)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "new output folder")
	cmd.Flags().StringVar(&authority, "authority", "", "azure-skr: the Microsoft Azure Attestation instance URL (https://…attest.azure.net)")
	cmd.Flags().StringVar(&resource, "resource", "", "trustee: the KBS resource path of the data key (default: the release's Trustee recipient, model/keys/index.json)")
	cmd.Flags().BoolVar(&allowUnbound, "allow-unbound", false, "emit policies for configurations that leave an input unbound (recorded in the output)")
	return cmd
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// makePolicies is cvmkit policy for one target: the release folder's values,
// the binding check (failing with unboundHint), the target's files and
// bindings.json. cvmkit release and verify --rebuild make them the same way.
func makePolicies(dir, target string, allowUnbound bool, resource, authority, unboundHint string) (map[string][]byte, *policy.Values, []refvalues.Binding, map[string][]string, error) {
	v, reports, err := releaseValues(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	v.AllowUnbound = allowUnbound
	if resource != "" {
		v.Resource = resource
	}
	filterPlatform(target, v, &reports)
	unbound, err := policy.CheckBindings(v)
	if err != nil {
		return nil, nil, nil, nil, outcome.PolicyError(err, unboundHint)
	}
	files, err := policyFiles(target, v, unbound, authority)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if files["bindings.json"], err = bindingsJSON(v, reports); err != nil {
		return nil, nil, nil, nil, err
	}
	return files, v, reports, unbound, nil
}

func policyFiles(target string, v *policy.Values, unbound map[string][]string, authority string) (map[string][]byte, error) {
	files := map[string][]byte{}
	switch target {
	case "trustee":
		if v.Resource == "" {
			return nil, outcome.UsageError(errors.New("trustee: the release has no Trustee recipient for its data key"), "encrypt with --recipient trustee:REPO/TYPE/TAG, or pass --resource REPO/TYPE/TAG")
		}
		msg, err := policy.RVPSMessage(v)
		if err != nil {
			return nil, err
		}
		rego, err := policy.TrusteeResourcePolicy(v, unbound)
		if err != nil {
			return nil, err
		}
		files["rvps-reference-values.json"], files["resource-policy.rego"] = msg, rego
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
		b, err := policy.AzureSKRPolicy(v, authority)
		if err != nil {
			return nil, outcome.UsageError(err)
		}
		files["release-policy.json"] = b
	case "ita":
		m, err := policy.ITAKeyTransferPolicies(v)
		if err != nil {
			return nil, outcome.InputError(err)
		}
		for n, b := range m {
			files[n+".json"] = b
		}
	case "sev-check", "tdx-check":
		for _, l := range v.Launches {
			var bin, text []byte
			var err error
			switch {
			case target == "sev-check" && l.Platform == policy.SNP:
				c, cerr := policy.SEVCheckConfig(policy.SEVCheck{Measurement: l.Measurement, Policy: l.GuestPolicy, HostData: l.HostData})
				if cerr != nil {
					return nil, cerr
				}
				bin, text, err = policy.Encode(c, l.Name)
			case target == "tdx-check" && l.Platform == policy.TDX:
				c, cerr := policy.TDXCheckConfig(policy.TDXCheck{MRTD: l.MRTD, RTMRs: l.RTMR})
				if cerr != nil {
					return nil, cerr
				}
				bin, text, err = policy.Encode(c, l.Name)
			default:
				continue
			}
			if err != nil {
				return nil, err
			}
			files[l.Name+".binpb"], files[l.Name+".textproto"] = bin, text
		}
		if len(files) == 0 {
			return nil, outcome.InputError(fmt.Errorf("%s: the release has no configuration of that platform", target))
		}
	}
	return files, nil
}

// releaseValues reads a release folder into policy values, with what each
// configuration binds.
func releaseValues(dir string) (*policy.Values, []refvalues.Binding, error) {
	subjects, err := sign.Subjects(dir)
	if err != nil {
		return nil, nil, outcome.InputError(err)
	}
	rv, err := sign.BuildReferenceValues(dir, subjects)
	if err != nil {
		return nil, nil, outcome.InputError(err)
	}
	v := &policy.Values{Release: rv.Release}
	var rootHash, cmdline, kernelSHA string
	if rv.Image != nil {
		rootHash, cmdline = rv.Image.Verity.RootHash, rv.Image.Cmdline
		for _, s := range subjects {
			if s.Name == "image/vmlinuz" {
				kernelSHA = s.Digest["sha256"]
			}
		}
	}
	// bind records what a configuration's values bind. paramsWhy, when
	// set, says why the initrd and command line are not measured although
	// the kernel is (a TD whose kernel does not measure RTMR2).
	bind := func(l *policy.Launch, kernel *refvalues.File, cmd string, measuresBoot bool, why, paramsWhy string) {
		l.Binds = []string{policy.BindsFirmware}
		l.Why = map[string]string{}
		switch {
		case !measuresBoot:
			for _, b := range policy.Bindable[1:] {
				l.Why[b] = why
			}
			return
		case kernel == nil:
			for _, b := range policy.Bindable[1:] {
				l.Why[b] = "no kernel was measured with these values"
			}
			return
		case kernelSHA != "" && kernel.SHA256 != kernelSHA:
			l.Why[policy.BindsKernel] = "the measured kernel is not the release's image/vmlinuz"
		default:
			l.Binds = append(l.Binds, policy.BindsKernel)
		}
		if paramsWhy != "" {
			l.Why[policy.BindsInitrd], l.Why[policy.BindsCmdline] = paramsWhy, paramsWhy
			l.Why[policy.BindsRootfs] = "the dm-verity root hash is on the command line, which is not measured"
			return
		}
		l.Binds = append(l.Binds, policy.BindsInitrd, policy.BindsCmdline)
		switch {
		case cmd != cmdline || cmdline == "":
			l.Why[policy.BindsRootfs] = "the measured command line is not the image's, which carries the dm-verity root hash"
		case rootHash == "" || !strings.Contains(cmd, rootHash):
			l.Why[policy.BindsRootfs] = "the command line does not carry the dm-verity root hash"
		default:
			l.Binds = append(l.Binds, policy.BindsRootfs)
		}
	}
	keys := make([]string, 0, len(rv.Measurements))
	for k := range rv.Measurements {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Configuration names: "snp-<entry>" for measurements/snp.json,
	// "<document>.<entry>" for one document per configuration.
	name := func(k, platform, entry string) string {
		if k == platform {
			return platform + "-" + entry
		}
		return k + "." + entry
	}
	for _, k := range keys {
		raw := rv.Measurements[k]
		if refvalues.MeasurementPlatform(k) != "snp" {
			continue
		}
		var doc refvalues.SNP
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, nil, outcome.InputError(fmt.Errorf("measurements/%s.json: %w", k, err))
		}
		pol := uint64(0x30000)
		if doc.Policy != "" {
			if pol, err = strconv.ParseUint(doc.Policy, 0, 64); err != nil {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: policy %q", refvalues.SNPPath, doc.Policy))
			}
		}
		for _, e := range doc.Measurements {
			d, err := hex.DecodeString(e.Digest)
			if err != nil || len(d) != 48 {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: %s: digest is not 48 bytes of hex", refvalues.SNPPath, e.Name))
			}
			l := policy.Launch{Name: name(k, "snp", e.Name), Platform: policy.SNP, Measurement: d, GuestPolicy: pol}
			if doc.HostData != "" {
				if l.HostData, err = hex.DecodeString(doc.HostData); err != nil || len(l.HostData) != 32 {
					return nil, nil, outcome.InputError(fmt.Errorf("measurements/%s.json: host_data is not 32 bytes of hex", k))
				}
			}
			cmd := ""
			if doc.Cmdline != nil {
				cmd = doc.Cmdline.Value
			}
			if t := doc.MinimumTCB; t != nil {
				l.MinTCB = &policy.TCB{Bootloader: t.Bootloader, TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode}
			}
			bind(&l, doc.Kernel, cmd, doc.KernelHashes, "the firmware has no SNP kernel-hashes section (QEMU kernel-hashes=on), so the digest binds the firmware only", "")
			v.Launches = append(v.Launches, l)
		}
	}
	for _, k := range keys {
		raw := rv.Measurements[k]
		if refvalues.MeasurementPlatform(k) != "tdx" {
			continue
		}
		var doc refvalues.TDX
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, nil, outcome.InputError(fmt.Errorf("measurements/%s.json: %w", k, err))
		}
		for _, m := range doc.MRTD {
			d, err := hex.DecodeString(m.Value)
			if err != nil || len(d) != 48 {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: MRTD is not 48 bytes of hex", refvalues.TDXPath))
			}
			l := policy.Launch{Name: name(k, "tdx", m.PageOrder), Platform: policy.TDX, MRTD: d}
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
				paramsWhy = "RTMR2 stays zero: " + or(doc.GuestCCSource, "the guest kernel does not measure its command line and initrd")
			}
			bind(&l, doc.Kernel, cmd, l.RTMR[1] != nil && l.RTMR[2] != nil, "RTMR1 and RTMR2 are not computed (no edk2 profile, or a firmware that measures nothing into them), so MRTD binds the firmware only", paramsWhy)
			v.Launches = append(v.Launches, l)
		}
	}
	if rv.GPU != nil {
		var ref struct {
			Versions struct {
				VBIOS  []string `json:"vbios"`
				Driver []string `json:"driver"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(rv.GPU, &ref); err != nil {
			return nil, nil, outcome.InputError(fmt.Errorf("%s: %w", refvalues.GPUPath, err))
		}
		v.GPU = &policy.GPU{VBIOS: ref.Versions.VBIOS, Driver: ref.Versions.Driver}
	}
	// The Trustee resource of the data key, from the model's key index.
	if b, err := os.ReadFile(filepath.Join(dir, "model", "keys", "index.json")); err == nil {
		var idx struct {
			Wraps []struct {
				Type, Recipient string
			} `json:"wraps"`
		}
		if json.Unmarshal(b, &idx) == nil {
			for _, w := range idx.Wraps {
				if w.Type == "trustee" {
					v.Resource = strings.TrimPrefix(w.Recipient, "kbs:///")
				}
			}
		}
	}
	var reports []refvalues.Binding
	for _, l := range v.Launches {
		r := refvalues.Binding{Configuration: l.Name, Platform: l.Platform, Binds: l.Binds, Unbound: l.Unbound()}
		switch {
		case l.Platform == policy.SNP && l.MinTCB == nil:
			r.MinimumTCB = "any (no minimumTCB in the config: every SVN from 0 is accepted)"
		case l.Platform == policy.SNP:
			t := l.MinTCB
			r.MinimumTCB = fmt.Sprintf("bootloader>=%d tee>=%d snp>=%d microcode>=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
		case l.Platform == policy.TDX && l.XFAM != nil:
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
		return nil, nil, outcome.InputError(fmt.Errorf("%s has no SEV-SNP or TDX measurements (%s, %s)", dir, refvalues.SNPPath, refvalues.TDXPath))
	}
	return v, reports, nil
}

// filterPlatform keeps only the configurations a platform-specific target
// judges (sev-check: SEV-SNP; tdx-check, ita: TDX).
func filterPlatform(target string, v *policy.Values, reports *[]refvalues.Binding) {
	only := map[string]string{"sev-check": policy.SNP, "tdx-check": policy.TDX, "ita": policy.TDX}[target]
	if only == "" {
		return
	}
	var keep []policy.Launch
	var keepReports []refvalues.Binding
	for i, l := range v.Launches {
		if l.Platform == only {
			keep, keepReports = append(keep, l), append(keepReports, (*reports)[i])
		}
	}
	v.Launches, *reports = keep, keepReports
}

// bindingsJSON is the bindings.json written beside every policy.
func bindingsJSON(v *policy.Values, reports []refvalues.Binding) ([]byte, error) {
	b, err := json.MarshalIndent(refvalues.Bindings{Release: v.Release, AllowUnbound: v.AllowUnbound, Configurations: reports}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
