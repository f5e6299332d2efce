// Package client is kadre's public client library: what an owner and a
// recipient do, for any Go program (the `kadre` CLI is built on it).
//
//	c, err := client.Open(client.Options{Home: home, Bootstrap: addrs})
//	defer c.Close()
//	c.Grant(ctx, client.GrantRequest{To: bob, Prefix: docs, M: 3, N: 5, Expires: t})
//	c.Encrypt(dst, src, path)             // owner, offline
//	c.Decrypt(ctx, dst, src)              // owner offline, or recipient via m nodes
//	c.DecryptKey(ctx, header)             // the data key only, for your own body reader
//	c.DecryptKeys(ctx, headers, opt)      // many files' keys, one batch per grant's holders
//	c.Revoke(ctx, bob, docs)              // signed receipts and a verdict
//	c.Grants(ctx, client.GrantsOptions{}) // the owner's ledger
//	c.Status(ctx)                         // the nodes this client sees
//
// A Client holds the user's keys (CreateIdentity, LoadIdentity: a master
// seed in the home directory, optionally sealed with a passphrase) and,
// from its first network operation on, one libp2p host that it keeps until
// Close; it is safe for concurrent use. Files are in the format of package
// kfile (SPEC.md §7); identities, grants and receipts are package policy's
// records (SPEC.md §3); the network is package dht (SPEC.md §5).
//
// Programs that import this package do not link LMDB (cgo): they build with
// CGO_ENABLED=0.
//
// # Security
//
// The home directory holds the master seed from which every key of the user
// derives: identity.json is written 0600, and -- with a passphrase -- sealed
// with argon2id and XChaCha20-Poly1305 (package internal/seal). The client's
// libp2p host runs with the user's identity key, which is how nodes know
// the recipient of a re-encryption request (Noise authenticates it). Every
// cfrag and every served grant is verified before use; a file's plaintext
// is released chunk by chunk, each authenticated (SPEC.md §7.3).
package client
