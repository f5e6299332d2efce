// Package dht is kadre's network layer: a libp2p host whose identity is the
// node's secp256k1 key, a private Kademlia DHT under kadre's own protocol
// prefix, and the RPC protocol nodes speak on streams (SPEC.md §5).
// Placement draws a grant's holders with fresh randomness from a wide
// sample of the network (random-target lookups), one per network group,
// optionally from an operator's admission list; discovery goes through the
// owner-signed holder map, stored at rendezvous points only the owner and
// the recipient can compute and extended by countersigned hand-off links.
//
// Entry points: New (a host, server mode for nodes, client mode for the
// owner and recipient), Service (a node's RPC handlers over a Store, its
// republishing and retirement), and the client calls (Sample, Place,
// PublishMap, FetchMap, Collect, CollectBatch, Reencrypt, BatchReencrypt,
// Revoke, NodeInfo).
//
// # Security
//
// Every stream is Noise-secured: the remote peer's secp256k1 key is
// authenticated by the handshake and its peer ID embeds that key, so "which
// node" and "which key" are the same thing. A node re-encrypts only for the
// peer whose key is the grant's recipient identity key. Every request has a
// size limit and a deadline, every peer a rate limit and a stream limit, so
// that a slow, flooding or malformed peer is cut off without hurting the
// others.
package dht

// MaxStreamsPerPeer bounds concurrent inbound RPC streams of one peer; the
// resource manager resets the excess. With the 2 s request-read deadline
// and MaxRPCStreams inbound RPC streams per node, holding every stream of
// a node silent would take 256 identities renewing their streams every
// 2 s; the limit per network group (MaxStreamsPerGroup) makes it take 32
// networks.
const MaxStreamsPerPeer = 8

// MaxStreamsPerGroup bounds concurrent inbound RPC streams from one
// network group (an IPv4 /24 or IPv6 /48, SPEC.md §8.3) whatever the
// identities: the service resets the excess as it arrives.
const MaxStreamsPerGroup = 64
