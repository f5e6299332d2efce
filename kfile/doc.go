// Package kfile is kadre's encrypted file format (SPEC.md §7): a header
// that wraps one random data key to the delegating key of every prefix of the
// file's path, and a body encrypted with a chunked streaming AEAD under a key
// derived from the data key and the header.
//
// Entry points:
//
//	owner:     NewHeader(owner, path, LevelKeys(keyring, path)) → Header, data key
//	           NewWriter(w, header, data key) → Write… → Close
//	reader:    ReadHeader(r) → Header
//	           data key: Header.UnwrapOriginal(level, path key)          (owner)
//	                     Header.UnwrapReencrypted(level, sk, pk, cfrags) (recipient)
//	           NewReader(r, header, data key)                 (stream)
//	           NewReaderAt(file, size, header, data key)      (random access)
//
// Level i of a header belongs to the prefix of depth i of the path (level 0
// is "/", the last level the path itself), the order of policy.Path.Prefixes
// and of a re-encryption request. A recipient sends Header.Capsules to the
// nodes, gets cfrags for the deepest level it was granted, and unwraps that
// level.
//
// Memory is constant: a Writer holds one 64 KiB chunk, a Reader and a
// ReaderAt one ciphertext and one plaintext chunk, whatever the file size,
// and none allocates per chunk.
//
// # Security
//
// The data key is 32 random bytes, fresh per file; every level's capsule
// wraps the same key, and the header ends with an HMAC-SHA256 of all its
// other bytes under a key derived from the data key. Because HMAC-SHA256 is
// committing (finding a second data key that verifies a header means
// breaking SHA-256), a header opens under one data key only, so two
// recipients granted different prefixes of one file cannot be shown
// different plaintexts by a malicious owner (ChaCha20-Poly1305 alone is not
// key-committing), and a wrong key or a modified header is refused before
// any body byte is read.
// The body key is HKDF-SHA256 of the data key salted with SHA-256 of the
// whole header, so the body is also bound to every header byte: a body
// cannot be moved under another header, even one wrapping the same key.
//
// The body is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over
// XChaCha20-Poly1305: the nonce of chunk i is its index and a flag that is
// set on the last chunk only, so reordering, duplicating, dropping or
// truncating chunks, and appending data after the last one, all fail
// authentication. Readers release a chunk's plaintext only after its tag
// verified; an error can therefore arrive after earlier chunks were
// returned, and a streaming consumer must treat the output as complete only
// when it reads io.EOF. All authentication failures of the body are the one
// opaque ErrCorrupt (ErrTruncated when the stream provably ends at a chunk
// boundary).
//
// The format provides confidentiality and integrity against anyone who does
// not know the data key. It does not authenticate the owner: anyone who can
// decrypt a file (any recipient) can make another file with the same owner
// key and path. Owner authenticity, if needed, comes from elsewhere (a
// signature over the header hash, or the channel the file came through).
package kfile
