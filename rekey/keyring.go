package rekey

import "fmt"

// Labels of the keys derived from a user's 32-byte master seed with the
// SecretKeyFactory construction (SPEC.md §1). Each
// key serves one protocol only.
const (
	// LabelIdentity derives the identity key: the libp2p peer key of the
	// user's client and the signer of kadre records.
	LabelIdentity = "kadre/identity/v1"
	// LabelReceiving derives the Umbral key a recipient decrypts with.
	LabelReceiving = "kadre/receiving/v1"
	// LabelKFragSigning derives the Umbral signer of the owner's kfrags.
	LabelKFragSigning = "kadre/kfrag-signing/v1"
	// LabelPaths derives the factory of per-prefix delegating keys.
	LabelPaths = "kadre/paths/v1"
)

// Keyring holds every key a user derives from one master seed. Make one
// with NewKeyring; a nil or zero-value Keyring holds no keys, and its
// methods return nil.
type Keyring struct {
	identity     *SecretKey
	receiving    *SecretKey
	kfragSigning *SecretKey
	paths        *SecretKeyFactory
}

// NewKeyring derives a user's keys from a 32-byte master seed.
func NewKeyring(seed []byte) (*Keyring, error) {
	master, err := NewSecretKeyFactory(seed)
	if err != nil {
		return nil, fmt.Errorf("failed to derive keyring: %w", err)
	}
	return &Keyring{
		identity:     master.MakeKey([]byte(LabelIdentity)),
		receiving:    master.MakeKey([]byte(LabelReceiving)),
		kfragSigning: master.MakeKey([]byte(LabelKFragSigning)),
		paths:        master.MakeFactory([]byte(LabelPaths)),
	}, nil
}

// Identity returns the identity (libp2p and record-signing) key, or nil
// for a nil or zero-value Keyring.
func (k *Keyring) Identity() *SecretKey {
	if k == nil {
		return nil
	}
	return k.identity
}

// Receiving returns the Umbral decryption key of the user as a recipient,
// or nil for a nil or zero-value Keyring.
func (k *Keyring) Receiving() *SecretKey {
	if k == nil {
		return nil
	}
	return k.receiving
}

// KFragSigner returns the signer of the user's kfrags, or nil for a nil or
// zero-value Keyring.
func (k *Keyring) KFragSigner() *Signer {
	if k == nil {
		return nil
	}
	return NewSigner(k.kfragSigning)
}

// DelegatingKey returns the delegating secret key of a path prefix:
// MakeKey(prefix) on the paths factory, so that one prefix's key reveals
// nothing about another's. The prefix must already be normalized (package
// policy); two spellings of one prefix would otherwise give two keys. It
// returns nil for a nil or zero-value Keyring.
func (k *Keyring) DelegatingKey(prefix string) *SecretKey {
	if k == nil {
		return nil
	}
	return k.paths.MakeKey([]byte(prefix))
}
