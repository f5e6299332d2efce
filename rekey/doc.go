// Package rekey is kadre's threshold proxy re-encryption: Umbral as the
// reference implementation umbral-pre 0.10 does it, byte for byte (see
// SPEC.md §2), plus the per-path delegating keys of kadre's
// path hierarchy.
//
// The protocol steps are values passed between pure functions:
//
//	owner:     Encrypt(pk, pt)                      → Capsule, ciphertext
//	owner:     GenerateKFrags(sk, pkB, signer, m, n) → []*VerifiedKeyFrag
//	node:      kfrag.Verify(…)                       → VerifiedKeyFrag
//	node:      Reencrypt(capsule, vkfrag)            → VerifiedCapsuleFrag, error
//	recipient: cfrag.Verify(…)                       → VerifiedCapsuleFrag
//	recipient: DecryptReencrypted(skB, pkA, capsule, cfrags, ct)
//
// Every step that draws randomness has a twin with a WithRand suffix that
// takes an io.Reader, for known-answer tests. The package does no I/O.
//
// Every object parses exactly the canonical bytes the reference emits
// (MessagePack arrays for Capsule, KeyFrag and CapsuleFrag, 33-byte
// compressed points, 32-byte big-endian scalars, 64-byte r‖s signatures) and
// refuses anything else with an error; parsers never panic.
//
// # Nil and zero values
//
// Objects come only from the Generate…, Parse…, New… and Make… functions
// and the protocol steps; a nil pointer or a zero value (var c
// rekey.Capsule) is not an object. Nothing panics on one: every function
// or method with an error result refuses it with ErrInvalidArgument, which
// names the argument (and is also the error of out-of-range parameters
// such as a threshold of 0). Methods without an error result answer as
// their doc comments say: Bytes, MakeSecret and the methods that return a
// key, signer, factory or frag give nil, ID and KFragID all zeros, IsLowS,
// the sign flags and Signature.Verify false, PublicKey.String "<nil>". No
// parser accepts the nil that Bytes returns. Equal is false when either side is nil or a zero value, nil ==
// nil included, so that two missing keys never pass for the same key;
// SecretKey.Equal and the kfrags' Equal run in constant time in the
// secret values.
//
// # Security
//
// Every multiplication of a point by a secret scalar (secret keys, kfrag
// keys, encapsulation and proof nonces, polynomial coefficients, the
// precursor secret, values derived from a Diffie-Hellman point) runs in
// constant time (rekey/internal/curve). Verification of public objects (capsule
// self-check, kfrag and cfrag proofs, ECDSA verification) uses variable-time
// arithmetic on public values only. Verification and decryption fail with a
// single opaque error each (ErrVerification, ErrDecryption) so that a remote
// party learns nothing about which check failed.
//
// Signatures are deterministic ECDSA (RFC 6979) over SHA-256 with low S,
// produced with a constant-time base multiplication and a constant-time
// inversion of the nonce.
package rekey
