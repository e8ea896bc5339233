package gpu

import (
	"errors"
	"fmt"

	"github.com/cvmkit/cvmkit/outcome"
)

// classifyGPU maps measure/gpu errors to exit codes, with hints.
func Classify(err error, input string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExpired):
		return outcome.SignatureError(fmt.Errorf("%s: %w", input, err),
			"pass --verify-at with a time inside the signer's validity to check it was validly signed then, or --allow-expired-signer to accept an expired signer (recorded as expired)")
	case errors.Is(err, ErrSignature), errors.Is(err, ErrUntrusted), errors.Is(err, ErrRevoked):
		return outcome.SignatureError(fmt.Errorf("%s: %w", input, err))
	case errors.Is(err, ErrConflict):
		return outcome.InputError(err, "give each RIM once; a VBIOS and a driver RIM of the same chip must measure disjoint registers (RIMs of one GPU generation)")
	case errors.Is(err, ErrMalformed):
		return outcome.InputError(fmt.Errorf("%s: %w", input, err))
	}
	return fmt.Errorf("%s: %w", input, err)
}
