package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/spf13/cobra"
)

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
             the launch values are exactly one configuration of the release),
             resource-policy.json (the same as the KBS admin API's request
             body, unpadded base64url) and resource.json (the data key's path)
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
			if !slices.Contains(policy.Targets, target) {
				return outcome.UsageError(fmt.Errorf("unknown policy target %q", target), "targets: "+strings.Join(policy.Targets, ", "))
			}
			if out == "" {
				return outcome.UsageError(errors.New("-o OUT is required"), "give a new folder for the policy files, e.g. -o trustee-policy")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			rendered, err := makePolicies(dir, target, policy.RenderOptions{AllowUnbound: allowUnbound, Resource: resource, Authority: authority,
				UnboundHint: "bind the kernel, initrd and command line (SEV-SNP: a firmware with the kernel-hashes section and kernelHashes: true; TDX: an edk2 profile so RTMR1/2 are computed, and a guest kernel whose EFI stub measures RTMR2, Linux 6.9+, or --guest-measures-rtmr2 for a backported one), or pass --allow-unbound to emit anyway (recorded)"})
			if err != nil {
				return err
			}
			files, v, reports, unbound := rendered.Files, rendered.Values, rendered.Bindings, rendered.Unbound
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

// makePolicies is cvmkit policy for one target of the release folder dir
// (policy.Render on its documents).
func makePolicies(dir, target string, o policy.RenderOptions) (*policy.Rendered, error) {
	r, err := refvalues.ReadRelease(dir)
	if err != nil {
		return nil, outcome.InputError(err)
	}
	return policy.Render(r, target, o)
}
