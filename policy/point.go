package policy

import (
	"encoding/hex"
	"fmt"

	"github.com/kadre/kadre/rekey"
)

// checkPoint reports whether b (33 bytes) is a compressed point on the curve.
func checkPoint(b []byte) error {
	if _, err := rekey.ParsePublicKey(b); err != nil {
		return fmt.Errorf("%w: public key is not a compressed curve point", ErrMalformed)
	}
	return nil
}

// Rekey returns pk as a rekey public key. It fails only for a PublicKey not
// built by this package's parsers.
func (pk PublicKey) Rekey() (*rekey.PublicKey, error) {
	k, err := rekey.ParsePublicKey(pk[:])
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not a compressed curve point", ErrMalformed)
	}
	return k, nil
}

// PublicKeyOf returns the record form of a rekey public key.
func PublicKeyOf(k *rekey.PublicKey) PublicKey {
	var pk PublicKey
	copy(pk[:], k.Bytes())
	return pk
}

// ParsePublicKeyHex parses the lowercase or uppercase hex of a compressed
// key (PublicKey.String).
func ParsePublicKeyHex(s string) (PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key is not hex", ErrMalformed)
	}
	return ParsePublicKey(b)
}
