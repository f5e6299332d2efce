package policy

import (
	"encoding/binary"

	"github.com/kadre/kadre/rekey"
)

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

// DelegatingKey returns the delegating secret key of prefix p at key epoch
// epoch (SPEC.md §1): the path factory's key for the label p at epoch 0,
// and for p ‖ 0x00 ‖ u32(epoch) at every later epoch, so that each epoch's
// key is independent of every other's and the epoch-0 keys are those of
// version 1 files. Taking a Path rather than a string guarantees the label
// is the normalized prefix, the bytes the path hash is computed over.
func DelegatingKey(k *rekey.Keyring, p Path, epoch uint32) *rekey.SecretKey {
	if epoch == 0 {
		return k.DelegatingKey(p.String())
	}
	label := binary.BigEndian.AppendUint32(append([]byte(p.String()), 0), epoch)
	return k.DelegatingKey(string(label))
}
