// Command cvmkit-sigstore signs and verifies release statements keylessly
// with Sigstore (package sign/keyless). 'cvmkit sign --keyless' and 'cvmkit
// verify --certificate-identity …' run it; it is separate because
// sigstore-go's dependencies add start-up time to every cvmkit process.
//
// Usage:
//
//	cvmkit-sigstore sign --fulcio-url U --rekor-url U STATEMENT BUNDLE
//	    (the OIDC token comes from $SIGSTORE_ID_TOKEN, never the command line)
//	cvmkit-sigstore sign-kms --key URI STATEMENT BUNDLE
//	    (a KMS key: awskms://, gcpkms://, azurekms://, hashivault://)
//	cvmkit-sigstore public-key --key URI
//	    (prints the KMS key's public key, PEM)
//	cvmkit-sigstore verify --trusted-root F --certificate-identity I --certificate-oidc-issuer O
//	    [--certificate-identity-regexp R] [--certificate-oidc-issuer-regexp R] BUNDLE
//	    (prints the verified statement on stdout)
//
// Exit codes: 0 ok, 2 usage, 3 bad input, 4 signature or trust failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/cvmkit/cvmkit/internal/version"
	"os"
	"os/signal"
	"syscall"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/sign"
	"github.com/cvmkit/cvmkit/sign/keyless"
	"github.com/cvmkit/cvmkit/sign/kms"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

func main() { os.Exit(run(os.Args[1:])) }

func fail(code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "cvmkit-sigstore: error: "+format+"\n", args...)
	return code
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		return fail(2, "usage: cvmkit-sigstore sign|verify|version …")
	}
	if args[0] == "version" {
		_ = json.NewEncoder(os.Stdout).Encode(version.Get())
		return 0
	}
	fs := flag.NewFlagSet("cvmkit-sigstore "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "sign":
		fulcio := fs.String("fulcio-url", "https://fulcio.sigstore.dev", "Fulcio instance")
		rekor := fs.String("rekor-url", "https://rekor.sigstore.dev", "Rekor instance")
		if fs.Parse(args[1:]) != nil || fs.NArg() != 2 {
			return fail(2, "usage: cvmkit-sigstore sign --fulcio-url U --rekor-url U STATEMENT BUNDLE")
		}
		statement, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return fail(3, "%v", err)
		}
		kp, opts, err := keyless.PublicGood(*fulcio, *rekor, os.Getenv("SIGSTORE_ID_TOKEN"))
		if err != nil {
			return fail(2, "%v (set SIGSTORE_ID_TOKEN)", err)
		}
		b, err := keyless.Sign(ctx, statement, kp, opts)
		if err != nil {
			return fail(4, "keyless signing: %v", err)
		}
		if err := atomicfile.WriteFile(fs.Arg(1), b, 0o644); err != nil {
			return fail(1, "%v", err)
		}
		return 0
	case "sign-kms", "public-key":
		key := fs.String("key", "", "KMS key URI")
		want := 2
		if args[0] == "public-key" {
			want = 0
		}
		if fs.Parse(args[1:]) != nil || fs.NArg() != want || *key == "" {
			return fail(2, "usage: cvmkit-sigstore sign-kms --key URI STATEMENT BUNDLE | public-key --key URI")
		}
		if args[0] == "public-key" {
			pub, err := kms.PublicKey(ctx, *key)
			if err != nil {
				return fail(3, "%v", err)
			}
			p, err := sign.PublicKeyPEM(pub)
			if err != nil {
				return fail(3, "%v", err)
			}
			fmt.Print(p)
			return 0
		}
		statement, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return fail(3, "%v", err)
		}
		b, err := kms.Sign(ctx, statement, *key)
		if err != nil {
			return fail(3, "%v", err)
		}
		if err := atomicfile.WriteFile(fs.Arg(1), b, 0o644); err != nil {
			return fail(1, "%v", err)
		}
		return 0
	case "verify":
		trusted := fs.String("trusted-root", "", "sigstore trusted_root.json")
		id := fs.String("certificate-identity", "", "identity (certificate SAN)")
		idRE := fs.String("certificate-identity-regexp", "", "identity regular expression")
		iss := fs.String("certificate-oidc-issuer", "", "OIDC issuer")
		issRE := fs.String("certificate-oidc-issuer-regexp", "", "OIDC issuer regular expression")
		if fs.Parse(args[1:]) != nil || fs.NArg() != 1 || *trusted == "" {
			return fail(2, "usage: cvmkit-sigstore verify --trusted-root F --certificate-identity I --certificate-oidc-issuer O BUNDLE")
		}
		tr, err := root.NewTrustedRootFromPath(*trusted)
		if err != nil {
			return fail(3, "trusted root %s: %v", *trusted, err)
		}
		ci, err := verify.NewShortCertificateIdentity(*iss, *issRE, *id, *idRE)
		if err != nil {
			return fail(2, "%v", err)
		}
		b, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return fail(3, "%v", err)
		}
		payload, err := keyless.Verify(b, tr, ci)
		if errors.Is(err, sign.ErrSignature) {
			return fail(4, "%v", err)
		}
		if err != nil {
			return fail(1, "%v", err)
		}
		os.Stdout.Write(payload)
		return 0
	}
	return fail(2, "unknown command %q: sign, sign-kms, public-key or verify", args[0])
}
