package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/sign"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type keygenResult struct {
	Kind    string `json:"kind"`
	KEM     string `json:"kem,omitempty"`
	Public  string `json:"public"`
	Private string `json:"private"`
}

func (a *app) keygenCmd() *cobra.Command {
	var hpkeKey, signingKey bool
	var kem, out string
	cmd := &cobra.Command{
		Use:   "keygen (--hpke [--kem x25519|mlkem768x25519] | --signing) -o PREFIX",
		Short: "Make a key pair for receiving data keys (--hpke) or for signing releases (--signing)",
		Long: `Make an HPKE key pair (RFC 9180: X25519, or the ML-KEM-768 + X25519 hybrid for
post-quantum protection) to receive a release's data key: 'cvmkit encrypt
--recipient hpke:PREFIX.hpke.pub.json' wraps the key to it and 'cvmkit decrypt
--hpke-key PREFIX.hpke.key.json' opens it. The private key is written with
mode 0600. Typically the key authority or the attested workload holds it.

--signing makes a cosign-compatible ECDSA P-256 signing key pair, PREFIX.key
(encrypted with scrypt + NaCl secretbox, as 'cosign generate-key-pair' writes
it) and PREFIX.pub, for 'cvmkit sign' and 'cvmkit verify' (and cosign). The
password comes from COSIGN_PASSWORD (empty allowed), or is asked for twice on
the terminal.`,
		Example: `  cvmkit keygen --hpke -o kbs
  cvmkit keygen --hpke --kem mlkem768x25519 -o workload
  COSIGN_PASSWORD=… cvmkit keygen --signing -o cosign     # cosign.key, cosign.pub`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hpkeKey == signingKey {
				return outcome.UsageError(errors.New("say which key to make: --hpke or --signing"))
			}
			if out == "" {
				return outcome.UsageError(errors.New("-o PREFIX is required"), "give the file name prefix of the key pair, e.g. -o cosign (writes cosign.key and cosign.pub)")
			}
			if signingKey {
				return a.keygenSigning(out)
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
	cmd.Flags().BoolVar(&signingKey, "signing", false, "make a cosign-compatible signing key pair (PREFIX.key, PREFIX.pub)")
	cmd.Flags().StringVar(&kem, "kem", "x25519", "HPKE KEM: x25519 or mlkem768x25519")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file name prefix")
	return cmd
}

func (a *app) keygenSigning(out string) error {
	pass, err := a.password(true)
	if err != nil {
		return err
	}
	priv, pub, err := sign.GenerateKeyPair(pass)
	if err != nil {
		return err
	}
	res := keygenResult{Kind: "signing", Public: out + ".pub", Private: out + ".key"}
	for _, p := range []string{res.Private, res.Public} {
		if _, err := os.Lstat(p); err == nil {
			return outcome.UsageError(fmt.Errorf("%s already exists", p), "choose another -o prefix; cvmkit never overwrites a key")
		}
	}
	if err := atomicfile.WriteFile(res.Private, priv, 0o600); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(res.Public, pub, 0o644); err != nil {
		return err
	}
	return a.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "public key:  %s\nprivate key: %s (encrypted; keep it and its password secret)\n", res.Public, res.Private)
	})
}

// password returns the signing-key password: COSIGN_PASSWORD when set (even
// empty), else asked on the terminal (twice when confirm).
func (a *app) password(confirm bool) ([]byte, error) {
	if p, ok := a.lookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(p), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, outcome.UsageError(errors.New("no password: COSIGN_PASSWORD is not set and standard input is not a terminal"), "set COSIGN_PASSWORD (it may be empty) in scripts and CI")
	}
	fmt.Fprint(a.stderr, "Enter password for private key: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil || !confirm {
		return p, err
	}
	fmt.Fprint(a.stderr, "Enter password for private key again: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if string(p) != string(p2) {
		return nil, outcome.UsageError(errors.New("the passwords differ"))
	}
	return p, nil
}
