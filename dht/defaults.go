package dht

import "time"

// Defaults of the network layer, in one place: the Config, ServiceConfig,
// PlaceOptions and CollectOptions zero values mean these, and the node's
// configuration (package node) and the client library start from them.
const (
	// DefaultRefreshPeriod is the routing-table refresh period: kad-dht's
	// 10 minutes leaves gaps and dead peers too long.
	DefaultRefreshPeriod = time.Minute
	// DefaultQueryTimeout bounds one DHT query.
	DefaultQueryTimeout = 5 * time.Second
	// DefaultJoinRefreshWait bounds the wait for a joining host's first
	// routing-table refresh (Host.Bootstrap); the refresh goes on after.
	DefaultJoinRefreshWait = 5 * time.Second
	// DefaultCallTimeout bounds an RPC whose context has no deadline.
	DefaultCallTimeout = 10 * time.Second
	// DefaultDialTimeout bounds dialing a peer this host has no
	// connection to, in lookups and RPCs alike: a machine that vanished
	// (its dials get no answer at all) costs that long, not the whole
	// per-node or query budget. A handshake is 3–4 round trips, well
	// under a second on any real link.
	DefaultDialTimeout = 3 * time.Second
	// DefaultPerNodeTimeout bounds what one node is given to answer
	// during placement, collection, revocation and hand-off.
	DefaultPerNodeTimeout = 5 * time.Second
	// DefaultCandidates is how many nodes close to a point are considered
	// (the DHT's bucket size).
	DefaultCandidates = 20
	// DefaultSampleLookups is how many random-target lookups make the
	// sample that placement and hand-off choose nodes from.
	DefaultSampleLookups = 4
	// DefaultSampleRounds bounds the samples one placement draws when the
	// first does not place every fragment.
	DefaultSampleRounds = 3
	// DefaultMapStorers is how many nodes closest to each rendezvous point
	// keep a pair's holder map.
	DefaultMapStorers = 8
	// DefaultRepublishInterval is how often a node stores the holder maps
	// of the pairs it holds fragments of at their points again.
	DefaultRepublishInterval = time.Hour

	// DefaultMaxGrantDuration is the longest grant a node accepts.
	DefaultMaxGrantDuration = 90 * 24 * time.Hour
	// DefaultCapacity is how many grants a node keeps at most.
	DefaultCapacity = 1_000_000
	// DefaultPeerRate is how many requests per second one peer may send
	// (the burst is twice that).
	DefaultPeerRate = 200
	// DefaultRequestReadTimeout bounds the arrival of a request after its
	// stream opened.
	DefaultRequestReadTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds reading, handling and answering one
	// request.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxConcurrent bounds requests doing cryptography at once.
	DefaultMaxConcurrent = 64
	// DefaultKFragCache is how many verified kfrags a node keeps in
	// memory (about 2 KiB each).
	DefaultKFragCache = 4096
)
