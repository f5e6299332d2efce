package policy

import "github.com/kadre/kadre/rekey"

// A user's keys are derived from the 32-byte master seed by rekey.Keyring,
// one label per purpose (SPEC.md §1): the identity
// key (libp2p peer key of the user's client host, signer of the user's kadre
// records), the receiving key (Umbral decryption), the kfrag signing key
// (Grant.VerifyingKey) and the per-prefix delegating keys. The helpers below
// connect a keyring to this package's types.

// IdentityOf returns the public identity of a keyring's owner.
func IdentityOf(k *rekey.Keyring) Identity {
	return Identity{
		IdentityKey:  PublicKeyOf(k.Identity().PublicKey()),
		ReceivingKey: PublicKeyOf(k.Receiving().PublicKey()),
	}
}

// IdentitySigner returns the signer of the keyring owner's kadre records.
func IdentitySigner(k *rekey.Keyring) *rekey.Signer { return rekey.NewSigner(k.Identity()) }

// DelegatingKey returns the delegating secret key of prefix p. Taking a
// Path rather than a string guarantees the derivation label is the
// normalized prefix, the same bytes the path hash is computed over.
func DelegatingKey(k *rekey.Keyring, p Path) *rekey.SecretKey { return k.DelegatingKey(p.String()) }
