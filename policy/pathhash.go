package policy

import (
	"crypto/hmac"
	"crypto/sha3"
	"encoding/hex"
	"hash"
)

// PathHashSize is the size of a path hash.
const PathHashSize = 32

// PathHash identifies one prefix of one owner's hierarchy for one recipient,
// without revealing the prefix (SPEC.md §3.2.3):
//
//	PathHash = HMAC-SHA3-256(key = owner identity key ‖ recipient identity key,
//	                         message = normalized prefix bytes)
//
// Nodes store and search grants by path hash only; they never see paths.
// Anyone who knows both public keys and guesses a path can compute the hash
// (the scheme is not anonymous, seed 003), which is why grants are served
// only to the authenticated recipient.
type PathHash [PathHashSize]byte

// String returns the lowercase hex.
func (h PathHash) String() string { return hex.EncodeToString(h[:]) }

// ComputePathHash returns the path hash of p for owner and recipient
// identity keys.
func ComputePathHash(owner, recipient PublicKey, p Path) PathHash {
	var key [2 * PublicKeySize]byte
	copy(key[:], owner[:])
	copy(key[PublicKeySize:], recipient[:])
	m := hmac.New(func() hash.Hash { return sha3.New256() }, key[:])
	m.Write(p.Bytes())
	var h PathHash
	m.Sum(h[:0])
	return h
}

// PathHashes returns the path hash of every prefix of p, root first: the
// levels a recipient sends in a re-encryption request, in order.
func PathHashes(owner, recipient PublicKey, p Path) []PathHash {
	prefixes := p.Prefixes()
	out := make([]PathHash, len(prefixes))
	for i, q := range prefixes {
		out[i] = ComputePathHash(owner, recipient, q)
	}
	return out
}
