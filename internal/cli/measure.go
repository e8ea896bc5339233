package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) measureCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "measure",
		Short: "Compute launch measurements (AMD SEV-SNP, Intel TDX)",
		Long: `Compute the launch measurements a confidential VM's attestation report will
carry, from the firmware, kernel, initrd and command line it is launched with.
The values are computed offline, exactly as the secure processor does, so a
key-release authority can compare them byte for byte.`,
		Example: `  cvmkit measure snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-Milan`,
	}
	cmd.AddCommand(a.measureSNPCmd(), a.measureTDXCmd())
	return group(cmd)
}
