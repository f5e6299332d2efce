package dht

import (
	"context"
	"errors"
	"strings"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"github.com/kadre/kadre/proto"
)

// Outcome names what became of one request to one node: OK, the node's
// refusal code (REVOKED, EXPIRED, NOT_GRANTED, RATE_LIMITED, …, the names of
// proto.Code), or why no answer came (UNREACHABLE, TIMEOUT, RESET,
// NOT_KADRE, BAD_ANSWER, BAD_PROOF, CANCELLED, ERROR). It is the one
// classification of errors that the CLI, the client library, the agent's
// API, the scripts and the tests use; Words gives it to people.
type Outcome string

// Outcomes that are not a node's refusal code.
const (
	OK          Outcome = "OK"
	Unreachable Outcome = "UNREACHABLE" // no connection or stream could be opened
	Timeout     Outcome = "TIMEOUT"     // no answer before the deadline
	Reset       Outcome = "RESET"       // the stream was reset (resource limits, a crash)
	NotKadre    Outcome = "NOT_KADRE"   // the peer does not speak kadre's RPC protocol
	BadAnswer   Outcome = "BAD_ANSWER"  // the answer broke the protocol or was not signed by the node asked
	BadProof    Outcome = "BAD_PROOF"   // a cfrag or a served grant did not verify: a faulty or lying node
	Cancelled   Outcome = "CANCELLED"   // the caller gave up (another node answered first)
	Failed      Outcome = "ERROR"       // anything else
)

// Classify names err's outcome; nil is OK.
func Classify(err error) Outcome {
	var re *proto.RemoteError
	var se *network.StreamError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &re):
		return Outcome(re.Code.String())
	case errors.Is(err, ErrBadProof):
		return BadProof
	case errors.Is(err, ErrBadResponse), errors.Is(err, proto.ErrMalformed), errors.Is(err, proto.ErrUnexpectedResponse):
		return BadAnswer
	case errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}):
		return NotKadre
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled):
		return Cancelled
	case errors.Is(err, ErrUnreachable):
		return Unreachable
	case errors.As(err, &se), errors.Is(err, network.ErrReset):
		return Reset
	}
	return Failed
}

// Words says the outcome in a few words for people.
func (o Outcome) Words() string {
	switch o {
	case OK:
		return "ok"
	case Unreachable:
		return "unreachable"
	case Timeout:
		return "no answer in time"
	case Reset:
		return "stream reset"
	case NotKadre:
		return "not a kadre node (does not speak kadre's RPC)"
	case BadAnswer:
		return "invalid answer"
	case BadProof:
		return "bad proof (a faulty or lying node)"
	case Cancelled:
		return "cancelled"
	case Failed:
		return "error"
	}
	return strings.ToLower(strings.ReplaceAll(string(o), "_", " "))
}
