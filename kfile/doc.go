// Package kfile is kadre's encrypted file format (SPEC.md §7): a header
// that wraps one random data key to the delegating key of every level of
// the file (a prefix of its path, at the prefix's key epoch) and seals the
// path and the writer's identity, and a body encrypted with a chunked
// streaming AEAD under a key derived from the data key and the header,
// signed by the writer group by group.
//
// Entry points:
//
//	owner:     NewHeader(owner, path, OwnerLevels(keyring, path, epochs), &Author{Signer: identity signer})
//	writer:    NewHeader(owner, path, CertLevels(cert), &Author{Signer: his identity signer, Cert: cert})
//	           NewWriter(w, header, data key) → Write… → Close
//	reader:    ReadHeader(r) → Header
//	           data key: Header.UnwrapOriginal(level, path key)          (owner)
//	                     Header.UnwrapReencrypted(level, sk, pk, cfrags) (recipient)
//	           Header.Open(data key) → path, writer (checked)
//	           NewReader(r, header, data key)                 (stream)
//	           NewReaderAt(file, size, header, data key)      (random access)
//
// Level i of a header belongs to the prefix of depth i of the path (level 0
// is "/"): an owner's file has a level for every prefix down to the path
// itself, a writer's file those of the prefix his certificate names. A
// version 2 header does not show the path: a recipient finds his level by
// its tag (Header.Matches with the delegating key of his grant), sends its
// capsule to the holders, unwraps it, and then Open tells him the path,
// which must lie under his grant.
//
// Memory is constant: a Writer holds one chunk of plaintext and two
// groups of ciphertext (2 MiB), a Reader one chunk of plaintext and two
// groups of ciphertext, a ReaderAt one group and one chunk, whatever the
// file size; group buffers are pooled between files. A group's signing
// (BLAKE3 of its ciphertext, ECDSA) runs on a second goroutine while the
// next group is encrypted or decrypted.
//
// # Security
//
// The data key is 32 random bytes, fresh per file; every level's capsule
// wraps the same key, and the header ends with an HMAC-SHA256 of all its
// other bytes under a key derived from the data key. Because HMAC-SHA256 is
// committing (finding a second data key that verifies a header means
// breaking SHA-256), a header opens under one data key only, so two
// recipients granted different prefixes of one file cannot be shown
// different plaintexts by a malicious writer (ChaCha20-Poly1305 alone is
// not key-committing), and a wrong key or a modified header is refused
// before any body byte is read.
// The body key is HKDF-SHA256 of the data key salted with SHA-256 of the
// whole header, so the body is also bound to every header byte: a body
// cannot be moved under another header, even one wrapping the same key.
//
// The body is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over
// XChaCha20-Poly1305: the nonce of chunk i is its index and a flag that is
// set on the last chunk only, so reordering, duplicating, dropping or
// truncating chunks, and appending data after the last one, all fail
// authentication.
//
// Everyone who can decrypt a file holds its data key and could make
// chunks that authenticate; the writer's signatures are what they cannot
// make. The header's sealed part carries the writer's signature over the
// header, and every group of GroupChunks chunks is followed by the
// writer's signature over the hash of its ciphertext, its index, whether
// it is the last and the header's hash. Readers release a group's
// plaintext only after its signature verified and its chunks
// authenticated; an error can therefore arrive after earlier groups were
// returned, and a streaming consumer must treat the output as complete only
// when it reads io.EOF. Damage is ErrCorrupt (ErrTruncated when the stream
// provably ends early), chunks that authenticate but are not the writer's
// are ErrBadSignature, and a writer the owner did not certify for the path
// is ErrNotAuthorized. Whether the owner still vouches for a certified
// writer (revocation) is not in the file: package client checks it against
// the owner's holder maps.
//
// Version 1 files (unsigned, the path in clear) are read, not written.
package kfile
