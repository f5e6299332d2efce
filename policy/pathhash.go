package policy

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/kadre/kadre/rekey"
)

// PathHashSize is the size of a path hash.
const PathHashSize = 32

// PathHash identifies one prefix of one owner's hierarchy, at one key
// epoch, for one recipient, without revealing the prefix (SPEC.md §3.2.3).
// It is keyed by the pair's secret (PairKey), which only the owner and
// that recipient can compute: a node, or anyone else, learns which of a
// pair's requests name the same prefix and epoch, and nothing about the
// prefix itself.
type PathHash [PathHashSize]byte

// String returns the lowercase hex.
func (h PathHash) String() string { return hex.EncodeToString(h[:]) }

// MapPoints is how many rendezvous points a pair's holder map is stored at.
const MapPoints = 3

// Point is a rendezvous point: a DHT key (SPEC.md §5.2).
type Point [32]byte

// String returns the lowercase hex.
func (p Point) String() string { return hex.EncodeToString(p[:]) }

// Labels of the pair key derivation (SPEC.md §3.2.3).
const (
	pairSalt       = "kadre/pair/v1"
	pairPathInfo   = "kadre/pair/v1 path hash"
	pairPointsInfo = "kadre/pair/v1 map points"
	pointLabel     = "kadre/map-point/v1\x00"
)

// PairKey is the secret an owner shares with one recipient of hers: both
// derive it from the Diffie-Hellman point of their identity keys, nobody
// else can (SPEC.md §3.2.3). It keys the pair's path hashes and locates
// its holder map, so neither depends on a value that anyone else can
// compute (or grind node identities towards).
type PairKey struct {
	owner, recipient PublicKey
	pathKey          [32]byte
	points           [MapPoints]Point
}

// OwnerPairKey is the owner's side: her identity key with the recipient's
// public identity key.
func OwnerPairKey(owner *rekey.Keyring, recipient PublicKey) (*PairKey, error) {
	return newPairKey(owner, IdentityOf(owner).IdentityKey, recipient, recipient)
}

// RecipientPairKey is the recipient's side: his identity key with the
// owner's public identity key.
func RecipientPairKey(recipient *rekey.Keyring, owner PublicKey) (*PairKey, error) {
	return newPairKey(recipient, owner, IdentityOf(recipient).IdentityKey, owner)
}

func newPairKey(mine *rekey.Keyring, owner, recipient, other PublicKey) (*PairKey, error) {
	pk, err := other.Rekey()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIdentity, err)
	}
	dh, err := mine.Identity().DiffieHellman(pk)
	if err != nil {
		return nil, err
	}
	return pairKeyFromDH(dh, owner, recipient)
}

// pairKeyFromDH derives the pair key from the Diffie-Hellman point of the
// owner's and the recipient's identity keys.
func pairKeyFromDH(dh [PublicKeySize]byte, owner, recipient PublicKey) (*PairKey, error) {
	prk, err := hkdf.Extract(sha256.New, dh[:], []byte(pairSalt))
	if err != nil {
		return nil, err
	}
	roles := string(owner[:]) + string(recipient[:])
	k := &PairKey{owner: owner, recipient: recipient}
	path, err := hkdf.Expand(sha256.New, prk, pairPathInfo+roles, 32)
	if err != nil {
		return nil, err
	}
	seed, err := hkdf.Expand(sha256.New, prk, pairPointsInfo+roles, 32)
	if err != nil {
		return nil, err
	}
	copy(k.pathKey[:], path)
	for j := range k.points {
		h := sha256.New()
		h.Write([]byte(pointLabel))
		h.Write(seed)
		h.Write([]byte{byte(j)})
		h.Sum(k.points[j][:0])
	}
	return k, nil
}

// Owner and Recipient are the pair's identity keys.
func (k *PairKey) Owner() PublicKey     { return k.owner }
func (k *PairKey) Recipient() PublicKey { return k.recipient }

// PathHash returns the path hash of prefix p at key epoch epoch:
// HMAC-SHA3-256(path key, normal form of p ‖ 0x00 ‖ u32(epoch)). Paths
// never contain NUL, so the encoding is unambiguous.
func (k *PairKey) PathHash(p Path, epoch uint32) PathHash {
	m := hmac.New(func() hash.Hash { return sha3.New256() }, k.pathKey[:])
	m.Write(p.Bytes())
	var tail [5]byte
	binary.BigEndian.PutUint32(tail[1:], epoch)
	m.Write(tail[:])
	var h PathHash
	m.Sum(h[:0])
	return h
}

// Points returns the rendezvous points of the pair's holder map.
func (k *PairKey) Points() [MapPoints]Point { return k.points }

// PathHashes returns the path hash of every prefix of p, root first (the
// levels of a re-encryption request, in order), level i at epochs[i]; a
// nil epochs means epoch 0 for every level.
func (k *PairKey) PathHashes(p Path, epochs []uint32) []PathHash {
	prefixes := p.Prefixes()
	out := make([]PathHash, len(prefixes))
	for i, q := range prefixes {
		var e uint32
		if epochs != nil {
			e = epochs[i]
		}
		out[i] = k.PathHash(q, e)
	}
	return out
}
