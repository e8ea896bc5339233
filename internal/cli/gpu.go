package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/measure/gpu/spdm"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
	"github.com/cvmkit/cvmkit/verify"
	"github.com/spf13/cobra"
)

func (a *app) gpuCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gpu",
		Short: "Verify NVIDIA GPU reference values (RIMs) and check GPU attestation reports",
		Long: `NVIDIA publishes the golden measurements of each GPU VBIOS and driver as signed
Reference Integrity Manifests (RIMs). 'gpu reference' verifies RIMs offline and
turns them into reference values a key authority can load; 'gpu check' verifies a
GPU attestation report and compares it with those values.

Both work offline against NVIDIA's pinned roots. See docs/gpu.md for what is
and is not checked.`,
		Example: `  cvmkit gpu reference --rim vbios.xml --rim driver.xml -o gpu-reference.json
  cvmkit gpu check --report report.hex --cert-chain chain.pem --reference gpu-reference.json`,
	}
	cmd.AddCommand(a.gpuReferenceCmd(), a.gpuCheckCmd())
	return group(cmd)
}

// verifyAtFlag is --verify-at: a time, "now" by default.
type verifyAtFlag struct{ value string }

func (f *verifyAtFlag) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&f.value, "verify-at", "now", "verify "+what+" as of this time: RFC 3339 (2025-01-31T12:00:00Z), a date (2025-01-31, midnight UTC), @UNIX-SECONDS, or now")
}

func (f *verifyAtFlag) time() (time.Time, error) {
	s := strings.TrimSpace(f.value)
	switch {
	case s == "" || s == "now":
		return time.Now().UTC().Truncate(time.Second), nil
	case strings.HasPrefix(s, "@"):
		var sec int64
		if _, err := fmt.Sscanf(s, "@%d", &sec); err == nil {
			return realTime(f.value, time.Unix(sec, 0).UTC())
		}
	default:
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				return realTime(f.value, t.UTC())
			}
		}
	}
	return time.Time{}, outcome.UsageError(fmt.Errorf("--verify-at %q is not a time", f.value), "give RFC 3339 like 2025-01-31T12:00:00Z, a date like 2025-01-31, @UNIX-SECONDS or now")
}

// realTime refuses a --verify-at no attestation certificate can be valid
// at (0001-01-01 is Go's zero time, which the verification libraries take
// as "now" while the output would name the year 1).
func realTime(flag string, t time.Time) (time.Time, error) {
	if err := verify.CheckVerifyTime(t); err != nil {
		return time.Time{}, outcome.UsageError(fmt.Errorf("--verify-at %q: %w", flag, err), "give the time the evidence or RIM was produced at (2025-01-31), or now")
	}
	return t, nil
}

// readOCSP reads --ocsp-response files (DER).
func readOCSP(paths []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range paths {
		b, _, err := readInput(p, "--ocsp-response", 1<<20)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// unusedOCSP refuses OCSP responses that answered for none of the chains.
func unusedOCSP(paths []string, chains ...*gpu.Chain) error {
	used := map[int]bool{}
	for _, c := range chains {
		for _, i := range c.OCSPUsed {
			used[i] = true
		}
	}
	for i, p := range paths {
		if !used[i] {
			return outcome.SignatureError(fmt.Errorf("--ocsp-response %q answers for no certificate of the chains checked, or its signature does not verify", p),
				"give the OCSP response of a certificate in the chain, as DER (openssl ocsp -respout)")
		}
	}
	return nil
}

func (a *app) gpuReferenceCmd() *cobra.Command {
	var (
		rims         []string
		configFile   string
		out          string
		allowExpired bool
		ocspFiles    []string
		at           verifyAtFlag
	)
	cmd := &cobra.Command{
		Use:   "reference --rim FILE… [-o FILE]",
		Short: "Verify NVIDIA RIMs offline and emit the GPU reference values",
		Long: `Verify each RIM's enveloped XML signature (C14N 1.1, ECDSA P-384 with SHA-384)
under a strict profile and its signer's chain to NVIDIA's pinned CoRIM signing
root, as of --verify-at, then emit per RIM: its tag id, kind (vbios, driver,
switch_bios), chip, version in the string forms consumers compare (NVIDIA's
uppercase VBIOS form for NRAS, Intel Trust Authority and Trustee's remote
verifier; lowercase for Trustee's local verifier), every active register with
its allowed values (RIM index and SPDM block index, which is one more), and
provenance: file SHA-256, signer chain fingerprints, verification time and
revocation status.

Most NVIDIA RIM signers are valid for two years. A signer expired at
--verify-at fails unless --allow-expired-signer is given; the chain is then
verified at the signer's expiry and recorded as "expired". Revocation is
"not_checked" unless --ocsp-response files are given.

A VBIOS and a driver RIM of the same chip whose active registers overlap are
refused. -o writes the reference values (the --json document) to a file, for
'cvmkit gpu check --reference'.`,
		Example: `  # A VBIOS and a driver RIM fetched from NVIDIA's RIM service:
  cvmkit gpu reference --rim NV_GPU_VBIOS_1010_0200_882_96005E0001.xml \
      --rim NV_GPU_DRIVER_GH100_550.144.03.xml -o gpu-reference.json

  # Check they were validly signed when built, long after the signer expired:
  cvmkit gpu reference --rim vbios.xml --verify-at 2024-06-01 --json

  # The RIMs a release config pins (gpu.rims), checked against their digests:
  cvmkit gpu reference -f cvmkit.yaml -o dist/gpu-reference.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var files []release.RIMFile
			for _, p := range rims {
				files = append(files, release.RIMFile{Path: p})
			}
			if configFile != "" {
				cfg, err := config.Load(configFile)
				if err != nil {
					return outcome.InputError(err)
				}
				if cfg.GPU == nil {
					return outcome.InputError(fmt.Errorf("%s has no gpu section", configFile), "add gpu: {rims: [{path, digest}]} (docs/config.md)")
				}
				files = append(files, release.ConfigRIMs(cfg)...)
				if !cmd.Flags().Changed("verify-at") && !cfg.GPU.VerifyAt.IsZero() {
					at.value = cfg.GPU.VerifyAt.Format(time.RFC3339)
				}
				allowExpired = allowExpired || cfg.GPU.AllowExpiredSigner
			}
			if len(files) == 0 {
				return outcome.UsageError(errors.New("no --rim given"), "give each RIM file with --rim FILE, or a config with gpu.rims with -f")
			}
			when, err := at.time()
			if err != nil {
				return err
			}
			responses, err := readOCSP(ocspFiles)
			if err != nil {
				return err
			}
			ref, chains, err := release.VerifyRIMs(files, gpu.ChainOptions{At: when, AllowExpired: allowExpired, OCSP: responses})
			if err != nil {
				return err
			}
			if err := unusedOCSP(ocspFiles, chains...); err != nil {
				return err
			}
			if out != "" {
				var buf bytes.Buffer
				if err := writeJSON(&buf, ref); err != nil {
					return err
				}
				if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			return a.emit(ref, func(w io.Writer) { printReference(w, ref, out) })
		},
	}
	cmd.Flags().StringArrayVar(&rims, "rim", nil, "a RIM file (SWID XML); repeat for each")
	cmd.Flags().StringVarP(&configFile, "file", "f", "", "take the RIMs (pinned by digest), verifyAt and allowExpiredSigner from this cvmkit.yaml's gpu section")
	cmd.Flags().StringVarP(&out, "output", "o", "", "also write the reference values (JSON) to this file")
	cmd.Flags().BoolVar(&allowExpired, "allow-expired-signer", false, "accept a signer expired at --verify-at if the chain was valid at its expiry (recorded)")
	cmd.Flags().StringArrayVar(&ocspFiles, "ocsp-response", nil, "a DER OCSP response for a certificate of a RIM's chain; repeat for each")
	at.register(cmd, "the RIM signatures and chains")
	return cmd
}

func printReference(w io.Writer, ref *gpu.Reference, out string) {
	for _, r := range ref.RIMs {
		fmt.Fprintf(w, "%s: %s %s %s, %d active registers, signer %s, revocation %s\n", r.File, r.Product, r.Kind, r.VersionForms.NVIDIA, len(r.Measurements), r.Signer.Status, r.Signer.Revocation)
		fmt.Fprintf(w, "  sha256 %s  tag %s\n", r.SHA256, r.TagID)
		var idx []string
		for _, m := range r.Measurements {
			s := fmt.Sprint(m.RIMIndex)
			if len(m.Alternatives) > 1 {
				s += fmt.Sprintf("(%d)", len(m.Alternatives))
			}
			idx = append(idx, s)
		}
		fmt.Fprintf(w, "  RIM indices %s (SPDM block = index+1; (n) = n allowed values)\n", strings.Join(idx, " "))
		fmt.Fprintf(w, "  verified at %s against %s\n", r.Signer.VerifiedAt, chainNames(r.Signer.Chain))
	}
	if v := ref.Versions; len(v.VBIOS) > 0 {
		fmt.Fprintf(w, "VBIOS versions: %s (Trustee local: %s)\n", strings.Join(v.VBIOS, " "), strings.Join(v.VBIOSLowercase, " "))
	}
	if v := ref.Versions; len(v.Driver) > 0 {
		fmt.Fprintf(w, "driver versions: %s\n", strings.Join(v.Driver, " "))
	}
	if v := ref.Versions; len(v.SwitchBIOS) > 0 {
		fmt.Fprintf(w, "NVSwitch BIOS versions: %s\n", strings.Join(v.SwitchBIOS, " "))
	}
	if out != "" {
		fmt.Fprintf(w, "wrote %s\n", out)
	}
}

func chainNames(c []gpu.CertificateReference) string {
	var s []string
	for _, x := range c {
		s = append(s, fmt.Sprintf("%q", x.Subject))
	}
	return strings.Join(s, " ← ")
}

func (a *app) gpuCheckCmd() *cobra.Command {
	var (
		report, chainFile, evidence, refFile string
		nonce                                hexFlag
		ocspFiles                            []string
		at                                   verifyAtFlag
	)
	cmd := &cobra.Command{
		Use:   "check (--report HEX --cert-chain PEM | --evidence JSON) --reference REF.json",
		Short: "Verify a GPU attestation report and compare it with GPU reference values",
		Long: `Parse the SPDM GET_MEASUREMENTS request and MEASUREMENTS response of a GPU
attestation report (as NVML returns it, hex), then check in this order:

  1. the device certificate chain up to NVIDIA's pinned Device Identity CA;
  2. the report's ECDSA P-384 signature with the attestation key (the leaf);
  3. the FWID in the report against the one in the attestation-key certificate
     (reports from drivers before 550 carry none: said so);
  4. the request nonce against --nonce (or the evidence file's nonce);
  5. the VBIOS and driver versions against the reference's allow-lists;
  6. every active register of the matching VBIOS and driver RIMs against the
     report's measurement blocks (RIM index i is SPDM block i+1; index 35 is
     not compared when NVDEC0_STATUS is 0x55), printing a table per GPU.

--evidence reads NVIDIA's serialized evidence (attestation SDK, NRAS, or
Trustee JSON) with one or more GPUs. Exit code 4 for a signature, chain or
FWID failure, 5 for a register or nonce mismatch, 6 for a version the
reference does not allow.`,
		Example: `  cvmkit gpu reference --rim vbios.xml --rim driver.xml -o ref.json
  cvmkit gpu check --report report.hex --cert-chain chain.pem --reference ref.json --nonce 4cff7f53…

  # Every GPU of a multi-GPU node:
  cvmkit gpu check --evidence evidence.json --reference ref.json --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if refFile == "" {
				return outcome.UsageError(errors.New("no --reference given"), "make one with 'cvmkit gpu reference --rim … -o ref.json'")
			}
			if (evidence == "") == (report == "") || (report != "") != (chainFile != "") {
				return outcome.UsageError(errors.New("give either --report with --cert-chain, or --evidence"))
			}
			when, err := at.time()
			if err != nil {
				return err
			}
			wantNonce, err := nonce.bytes(cmd, 32, 32)
			if err != nil {
				return err
			}
			ref, err := readReference(refFile)
			if err != nil {
				return err
			}
			responses, err := readOCSP(ocspFiles)
			if err != nil {
				return err
			}
			items, err := readGPUEvidence(report, chainFile, evidence)
			if err != nil {
				return err
			}
			res, chains, firstErr := gpu.CheckAll(items, ref, wantNonce, gpu.ChainOptions{At: when, OCSP: responses})
			if err := a.emit(res, func(w io.Writer) { printGPUCheck(w, res) }); err != nil {
				return err
			}
			if firstErr != nil {
				return firstErr
			}
			return unusedOCSP(ocspFiles, chains...)
		},
	}
	cmd.Flags().StringVar(&report, "report", "", "the attestation report, hex (SPDM GET_MEASUREMENTS request and response)")
	cmd.Flags().StringVar(&chainFile, "cert-chain", "", "the GPU's attestation-key certificate chain, PEM, leaf first")
	cmd.Flags().StringVar(&evidence, "evidence", "", "an evidence JSON file with one or more GPUs (NVIDIA attestation SDK, NRAS or Trustee format)")
	cmd.Flags().StringVar(&refFile, "reference", "", "reference values written by 'cvmkit gpu reference -o'")
	nonce.register(cmd, "nonce", "the nonce the verifier sent, 64 hex digits; the report must answer it")
	cmd.Flags().StringArrayVar(&ocspFiles, "ocsp-response", nil, "a DER OCSP response for a certificate of a device chain; repeat for each")
	at.register(cmd, "the device certificate chain")
	return cmd
}

func readReference(path string) (*gpu.Reference, error) {
	b, _, err := readInput(path, "--reference", 64<<20)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var ref gpu.Reference
	if err := d.Decode(&ref); err != nil {
		return nil, outcome.InputError(fmt.Errorf("--reference %q: %w", path, err), "give the JSON written by 'cvmkit gpu reference -o'")
	}
	if err := gpu.ValidateReference(&ref); err != nil {
		return nil, outcome.InputError(fmt.Errorf("--reference %q: %w", path, err))
	}
	return &ref, nil
}

func readGPUEvidence(report, chainFile, evidence string) ([]gpu.Item, error) {
	if evidence != "" {
		b, _, err := readInput(evidence, "--evidence", 64<<20)
		if err != nil {
			return nil, err
		}
		items, err := gpu.ParseItems(b, evidence)
		if err != nil {
			return nil, outcome.InputError(fmt.Errorf("--evidence %q: %w", evidence, err))
		}
		return items, nil
	}
	text, _, err := readInput(report, "--report", 1<<20)
	if err != nil {
		return nil, err
	}
	raw, err := spdm.DecodeReport(text)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("--report %q: %w", report, err), "give the report as hex text, as NVML tools write it")
	}
	chain, _, err := readInput(chainFile, "--cert-chain", 1<<20)
	if err != nil {
		return nil, err
	}
	return []gpu.Item{{Source: report, Report: raw, Chain: chain}}, nil
}

func printGPUCheck(w io.Writer, res *gpu.CheckResult) {
	for _, g := range res.GPUs {
		status := "ok"
		if !g.OK {
			status = "FAILED"
		}
		fmt.Fprintf(w, "GPU %d (%s): %s\n", g.Index, g.Source, status)
		if g.Error != "" && g.HWModel == "" {
			fmt.Fprintf(w, "  %s\n", g.Error)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  device\t%s (%s)\n", g.HWModel, g.Product)
		fmt.Fprintf(tw, "  signature, chain\tok: %s\n", strings.Join(g.Chain, " ← "))
		fmt.Fprintf(tw, "  FWID\t%s\n", yesNo(g.FWIDChecked, "matches the certificate", "not reported by this firmware"))
		fmt.Fprintf(tw, "  nonce\t%s %s\n", g.Nonce, yesNo(g.NonceChecked, "(as expected)", "(not checked)"))
		c := g.Comparison
		fmt.Fprintf(tw, "  VBIOS\t%s %s\n", g.VBIOSVersion, allowed(c.VBIOSAllowed))
		if g.DriverVersion != "" {
			fmt.Fprintf(tw, "  driver\t%s %s\n", g.DriverVersion, allowed(c.DriverAllowed))
		}
		if g.VBIOSRIMID != "" {
			fmt.Fprintf(tw, "  VBIOS RIM id\t%s\n", g.VBIOSRIMID)
		}
		tw.Flush()
		if len(c.Indices) > 0 {
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  RIM\tSPDM\tsource\tstatus\tname\truntime")
			for _, r := range c.Indices {
				st := r.Status
				if r.Alternative > 0 {
					st += fmt.Sprintf(" (Hash%d)", r.Alternative)
				}
				rt := r.Runtime
				if len(rt) > 16 {
					rt = rt[:16] + "…"
				}
				fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\n", r.RIMIndex, r.SPDMIndex, r.Source, st, r.Name, rt)
			}
			tw.Flush()
		}
		for _, u := range c.Unchecked {
			fmt.Fprintf(w, "  not checked: %s\n", u)
		}
		for _, x := range g.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", x)
		}
		if g.Error != "" {
			fmt.Fprintf(w, "  %s\n", g.Error)
		}
	}
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func allowed(b *bool) string {
	switch {
	case b == nil:
		return "(not checked: no RIM of this kind in the reference)"
	case *b:
		return "(allowed)"
	}
	return "(NOT in the reference)"
}
