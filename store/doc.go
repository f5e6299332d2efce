// Package store keeps what a kadre node is trusted with: the owners' grants
// (opaque signed records carrying one key fragment each), the tombstones of
// revoked grants and the per-(owner, path hash) sequence numbers that refuse
// replays. It is the LMDB persistence layer of DESIGN.md ("Storage") and its
// on-disk format is SPEC.md §6.
//
// Entry points: Open (with a KeySource: KeyFile, Passphrase or RawKey),
// PutGrant, Revoke, Lookup (the deepest-first search that serves
// re-encryption requests), Get, GetTombstone and ForEachGrant
// (inspection), Prune (expiry), Export, Import and DeleteGrant (backup and
// hand-off), Close.
//
// The store does not parse records or paths. It sees owner and recipient
// public keys, path hashes, sequence numbers and expiries; the policy
// package validates and signs records before calling it.
//
// # Deepest-first lookup
//
// Lookup takes the path hash of every level of a path, root first, and
// returns the deepest level holding a live (unexpired, unrevoked) grant of
// that owner to that recipient, reading everything in one LMDB read
// transaction. Access is the union of grants: a revoked or expired deeper
// level does not hide a live shallower grant, so revoking /a/b ends only the
// grant on /a/b, and an owner who wants to end all access revokes every
// grant. When no level is live, the error is the one of the deepest level
// that had anything: revoked (ErrRevoked), else expired (ErrExpired); if no
// level had anything, ErrNotGranted. A level never holds a grant and a
// tombstone at once: a newer grant clears the tombstone.
//
// # Sequence numbers and tombstones
//
// Every grant and revocation carries a sequence number, per (owner, path
// hash), starting at 1. PutGrant and Revoke check it against the stored
// mark and write in the same write transaction, so a replayed grant (or one
// that predates a revocation) is refused. Marks and tombstones are pruned
// only after every grant the store has seen for their (owner, path hash) has
// expired and Options.Retention (or Revocation.KeepUntil) has passed.
//
// # Quotas
//
// PutGrantAs, RevokeAs, PutMapPageAs and RaiseMarkAs charge what they
// create (a grant, a tombstone, a mark, a map page) to the record's owner,
// the sending peer, the sender's network group and the node, and refuse a
// write that would take an account over Options.Limits with a
// *quota.Error, inside the write transaction (SPEC.md §8.2). Deleting an
// item releases exactly what it was charged. The plain methods (PutGrant,
// Revoke, …) are local writes: charged to the owner and the node, never
// refused.
//
// # Security
//
// Every value is sealed with XChaCha20-Poly1305 under the node's 32-byte
// storage key, with a random 24-byte nonce and the database name and key as
// associated data, so a value cannot be read, modified, or moved to another
// key or database without the storage key; any such change reads as
// ErrCorrupt and a lookup fails closed. Keys are not encrypted: they are
// owner and recipient public keys and path hashes, which are public or
// already opaque, plus expiry times in the prune index, which an observer
// of the disk therefore learns. Deleting values is not prevented by
// sealing: someone with write access to the disk can remove a grant or a
// tombstone (a removed mark lets a replayed grant back in), which is why the
// data directory is 0700 and the key should not live next to the data when
// the disk is not trusted. A wrong storage key is detected with a sealed
// verifier before anything is written (ErrWrongKey). Each commit is fsynced
// before the call returns, so an acknowledged write survives kill -9 and
// power loss; an flock on store.lock keeps a second process out. A
// generation counter kept in the store and, outside the LMDB file, in the
// counter file detects an older data.mdb put back (ErrRollback, SPEC.md
// §8.8); older values put back inside the current file are not detected.
package store
