// Package version is kadre's software version: what `kadre version` prints,
// what a node advertises in its signed node info and its libp2p user agent.
package version

// Version follows semantic versioning; the wire protocol has a version of
// its own (proto.ProtocolVersion).
const Version = "0.2.0-dev"

// UserAgent is the software string of node info and libp2p identify.
const UserAgent = "kadre/" + Version
