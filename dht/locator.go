package dht

import (
	"crypto/sha256"

	"github.com/kadre/kadre/policy"
)

// locatorLabel domain-separates locators (SPEC.md §5.2).
const locatorLabel = "kadre/locator/v1\x00"

// Locator is where the fragments of an owner's grants to one recipient
// live in the DHT: SHA-256(label ‖ owner identity key ‖ recipient identity
// key). Nodes are chosen by XOR distance to it, holders announce it as a
// provider record, and a recipient finds them from the two public keys
// alone, without the owner.
func Locator(owner, recipient policy.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(locatorLabel))
	h.Write(owner[:])
	h.Write(recipient[:])
	return h.Sum(nil)
}
