package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

type keygenResult struct {
	Kind    string `json:"kind"`
	KEM     string `json:"kem,omitempty"`
	Public  string `json:"public"`
	Private string `json:"private"`
}

func (a *app) keygenCmd() *cobra.Command {
	var hpkeKey bool
	var kem, out string
	cmd := &cobra.Command{
		Use:   "keygen --hpke [--kem x25519|mlkem768x25519] -o PREFIX",
		Short: "Make a key pair for receiving data keys",
		Long: `Make an HPKE key pair (RFC 9180: X25519, or the ML-KEM-768 + X25519 hybrid for
post-quantum protection) to receive a release's data key: 'cvmkit encrypt
--recipient hpke:PREFIX.hpke.pub.json' wraps the key to it and 'cvmkit decrypt
--hpke-key PREFIX.hpke.key.json' opens it. The private key is written with
mode 0600. Typically the key authority or the attested workload holds it.`,
		Example: `  cvmkit keygen --hpke -o kbs
  cvmkit keygen --hpke --kem mlkem768x25519 -o workload`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !hpkeKey {
				return outcome.UsageError(errors.New("say which key to make: --hpke"))
			}
			if out == "" {
				return outcome.UsageError(errors.New("-o PREFIX is required"))
			}
			pub, priv, err := encrypt.NewHPKEKey(kem)
			if err != nil {
				return outcome.UsageError(err)
			}
			res := keygenResult{Kind: "hpke", KEM: kem, Public: out + ".hpke.pub.json", Private: out + ".hpke.key.json"}
			if err := atomicfile.WriteFile(res.Private, priv, 0o600); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(res.Public, pub, 0o644); err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "public key:  %s\nprivate key: %s (keep it secret)\n", res.Public, res.Private)
			})
		},
	}
	cmd.Flags().BoolVar(&hpkeKey, "hpke", false, "make an HPKE key pair")
	cmd.Flags().StringVar(&kem, "kem", "x25519", "HPKE KEM: x25519 or mlkem768x25519")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file name prefix")
	return cmd
}
