package policy

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// checkPoint reports whether b (33 bytes) is a compressed point on the curve.
func checkPoint(b []byte) error {
	if b[0] != 0x02 && b[0] != 0x03 {
		return fmt.Errorf("%w: public key is not in compressed form", ErrMalformed)
	}
	if _, err := secp256k1.ParsePubKey(b); err != nil {
		return fmt.Errorf("%w: public key is not a curve point", ErrMalformed)
	}
	return nil
}
