package cli

import (
	"strings"

	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/spf13/cobra"
)

// fixedValues completes a flag from a fixed list; for a list flag
// (--vcpu-type EPYC-v4,EPYC-Milan) it completes the last element.
func fixedValues(values []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		prefix := ""
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			prefix = toComplete[:i+1]
		}
		var out []string
		for _, v := range values {
			out = append(out, prefix+v)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeMeasureSNP offers the values of the SEV-SNP flags that take one
// of a fixed set.
func completeMeasureSNP(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("vcpu-type", fixedValues(snp.CPUTypes()))
	_ = cmd.RegisterFlagCompletionFunc("vmm-type", fixedValues([]string{"QEMU", "ec2", "gce"}))
	_ = cmd.RegisterFlagCompletionFunc("mode", fixedValues([]string{"snp", "seves", "sev", "snp:ovmf-hash", "snp:svsm"}))
}

// completeMeasureTDX offers the edk2 profiles and page orders.
func completeMeasureTDX(cmd *cobra.Command) {
	var profiles []string
	for _, p := range tdx.Profiles {
		profiles = append(profiles, string(p.Name))
	}
	_ = cmd.RegisterFlagCompletionFunc("edk2-profile", fixedValues(profiles))
	_ = cmd.RegisterFlagCompletionFunc("page-order", fixedValues([]string{"single-pass", "two-pass"}))
	_ = cmd.RegisterFlagCompletionFunc("kernel-blob", fixedValues([]string{"qemu-patched", "unpatched"}))
}

// completePolicyTarget offers the key-authority targets as the first
// argument of 'cvmkit policy', then folders.
func completePolicyTarget(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return policy.Targets, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}
