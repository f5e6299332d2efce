// Package policy holds kadre's rules as pure functions: paths and their
// normalization, pair keys and the path hashes and rendezvous points they
// key, public identities, the signed records (grants, revocations,
// receipts, node info, holder maps, admission lists, hand-off links,
// writer certificates) with their canonical byte layouts, and the
// validation every node and client applies to them. SPEC.md §3 documents
// every rule and every byte.
//
// Entry points:
//
//	owner:     NormalizePath → OwnerPairKey → NewGrants (one signed Grant per kfrag, at a key epoch)
//	           HolderMap.Sign (PageEntries), WriterCert.Sign
//	           Revocation.Sign → VerifyReceiptForRevocation, CurrentHolders → RevocationVerdict
//	node:      ParseGrant → ValidateGrantForStore (expiry, signature, kfrag); the store applies ValidateSequence
//	           ParseRevocation → ValidateRevocation
//	           (the store's deepest-first search) → CheckServable → rekey.Reencrypt
//	recipient: RecipientPairKey → VerifyHolderMap, CurrentHolders → request;
//	           ParsePublicGrant → VerifyServedGrant → VerifyCFrag
//
// Nothing here does I/O or reads a clock: callers pass the time, the node's
// limits and the state it remembers (the last sequence number per
// StorageKey), which keeps every rule testable in isolation.
//
// # Security
//
// Records are signed with ECDSA over SHA-256(SHA-256(label ‖ body)), the
// label naming the record type, so that no signature made for one record
// type, for a kfrag (a different key, and 100-to-168-byte messages) or for
// libp2p's Noise handshake (same identity key, but a 56-byte message that
// starts with "noise-") is valid for anything else; signatures must be low-S
// so that a record's bytes, and so its ID, cannot be altered by anyone but
// the signer. Parsers accept only the canonical encoding and never panic.
//
// A node stores a grant under owner ‖ recipient ‖ path hash and accepts a
// grant or a revocation only with the owner's signature and a sequence number
// above every one it has seen for that key, tombstones included, so neither a
// stranger nor a replay can place or resurrect a fragment. It serves a grant
// only to the peer whose Noise-authenticated key is the grant's recipient
// identity key, and answers every other case "not granted", so requests
// learn nothing about grants that are not theirs. Path hashes are keyed by
// the pair key, an ECDH secret of the owner's and the recipient's identity
// keys: a node learns that two requests name the same prefix, nothing
// about which (SPEC.md §3.2.3).
//
// Errors wrap one of the Err… sentinels; messages name the rule and the
// values involved. Verification details (which kfrag check failed) stay
// local: the wire carries only the sentinel's code.
package policy
