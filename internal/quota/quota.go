// Package quota is the vocabulary of a node's state quotas (SPEC.md §8.2):
// what a write that a remote party asks for is charged to, the limits per
// kind of state, and the refusal. The store enforces the limits inside the
// write transaction that keeps the state (package store); the RPC service
// says whom each write is charged to (package dht). Both import this
// package, which imports neither, so that client programs never link the
// store.
//
// Identities are free, so a limit per owner or per peer alone bounds
// nothing: the limit that costs an attacker something is the one per
// network group (the IPv4 /24 or IPv6 /48 the request came from). A node
// keeps three kinds of state for others, each with limits per owner, per
// peer, per network group and in all, and a reserve: the last part of each
// total is open only to groups that hold little of it, so that a crowd of
// identities on a few networks cannot drive a node's free space to zero for
// everyone.
package quota

import (
	"errors"
	"fmt"

	"github.com/kadre/kadre/policy"
)

// Kind is a kind of state a node keeps for others.
type Kind uint8

const (
	// Grants are stored key fragments (one unit each).
	Grants Kind = iota
	// History is tombstones and sequence marks (one unit each): what
	// revocations and past grants leave behind, kept up to a year.
	History
	// Maps are holder-map pages (one unit each, up to 8 KiB; a pair's
	// hand-off links are bounded with its map and not counted).
	Maps
	kinds
)

func (k Kind) String() string {
	switch k {
	case Grants:
		return "grants"
	case History:
		return "tombstones and sequence marks"
	case Maps:
		return "holder-map pages"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Charge says whom a write asked for over the network is charged to,
// besides the record's owner (always charged) and the node's total.
type Charge struct {
	// Peer is the sender's identity key when it is not the record's owner
	// (a relay, a node handing a fragment off); zero otherwise.
	Peer policy.PublicKey
	// Group is the sender's network group ("203.0.113.0/24",
	// "2001:db8:1::/48"), "" if unknown.
	Group string
}

// Limit bounds one kind of state. Zero fields are no limit.
type Limit struct {
	// All is the node's total.
	All uint64
	// Owner, Peer and Group bound what one owner, one sending peer and
	// one network group hold.
	Owner, Peer, Group uint64
	// Reserve is the last part of All that only groups holding fewer
	// than Floor units may use.
	Reserve, Floor uint64
}

// Limits bound every kind.
type Limits [kinds]Limit

// Off are no limits at all.
var Off Limits

// Defaults derives the limits from a node's capacity (grants it keeps at
// most), with ownerQuota and groupQuota the grants one owner (or peer) and
// one network group may hold (0: the defaults, 1 % and 2 % of capacity):
//
//	kind      all          owner, peer      group           reserve         floor
//	grants    capacity     ownerQuota       groupQuota      capacity/10     min(64, group/4)
//	history   4×capacity   4×ownerQuota     4×groupQuota    4×capacity/10   min(256, group/4)
//	maps      capacity/4   ownerQuota       groupQuota      capacity/40     min(64, group/4)
func Defaults(capacity, ownerQuota, groupQuota uint64) Limits {
	if ownerQuota == 0 {
		ownerQuota = max(capacity/100, 1)
	}
	if groupQuota == 0 {
		groupQuota = max(capacity/50, 1)
	}
	mk := func(all, owner, group, reserve, floor uint64) Limit {
		return Limit{All: all, Owner: owner, Peer: owner, Group: group, Reserve: reserve, Floor: max(min(floor, group/4), 1)}
	}
	var l Limits
	l[Grants] = mk(capacity, ownerQuota, groupQuota, capacity/10, 64)
	l[History] = mk(4*capacity, 4*ownerQuota, 4*groupQuota, 4*capacity/10, 256)
	l[Maps] = mk(max(capacity/4, 1), ownerQuota, groupQuota, capacity/40, 64)
	return l
}

// ErrQuota is what every Error matches.
var ErrQuota = errors.New("quota exceeded")

// Error is a refusal: Account holds Used units of Kind, its Limit.
type Error struct {
	Kind Kind
	// Account is "node", "node reserve", "owner", "peer" or "network
	// group <group>".
	Account     string
	Used, Limit uint64
}

func (e *Error) Error() string {
	if e.Account == "node reserve" {
		return fmt.Sprintf("the node keeps %d of its %d %s and keeps the rest for networks that hold less than this one", e.Used, e.Limit, e.Kind)
	}
	return fmt.Sprintf("%s holds %d of %d %s allowed", e.Account, e.Used, e.Limit, e.Kind)
}

func (e *Error) Is(target error) bool { return target == ErrQuota }

// Usage is what an account holds of every kind.
type Usage [kinds]uint64
