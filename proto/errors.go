package proto

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kadre/kadre/policy"
)

// Sentinel errors of the wire layer. Node handlers also return the ones
// without a policy counterpart (ErrCapacity, ErrAlreadyHeld, …), wrapping their
// cause, so that Refuse picks the right Code.
var (
	ErrMalformed          = errors.New("proto: malformed message")
	ErrTooLarge           = errors.New("proto: frame too large")
	ErrUnsupportedVersion = errors.New("proto: unsupported protocol version")
	ErrUnknownType        = errors.New("proto: unknown message type")
	// ErrUnexpectedResponse means a response does not answer the request:
	// another request id, or another message type than the request's.
	ErrUnexpectedResponse = errors.New("proto: response does not answer the request")

	ErrRateLimited = errors.New("proto: rate limited, retry later")
	ErrCapacity    = errors.New("proto: node has no free slot")
	ErrAlreadyHeld = errors.New("proto: node already holds a fragment of this grant")
	ErrUnavailable = errors.New("proto: node unavailable (shutting down or retiring)")
	ErrNotFound    = errors.New("proto: the node keeps nothing for this")
	// ErrUnauthorized means the requester may not ask this: a StoreGrant
	// not from the grant's owner, a hand-off from a node that does not
	// hold the fragment.
	ErrUnauthorized = errors.New("proto: not authorized")
	// ErrQuota means the node keeps as much as it allows for the owner,
	// the peer or its network already.
	ErrQuota    = errors.New("proto: quota exceeded")
	ErrInternal = errors.New("proto: internal error")
)

// codeSentinels maps each code to the errors that produce it (CodeOf) and
// that a RemoteError with it matches (errors.Is). The first one listed is
// the canonical one.
var codeSentinels = []struct {
	code Code
	errs []error
}{
	{Code_MALFORMED, []error{ErrMalformed, policy.ErrMalformed, policy.ErrInvalidPath, policy.ErrInvalidIdentity, policy.ErrMismatch}},
	{Code_TOO_LARGE, []error{ErrTooLarge}},
	{Code_UNSUPPORTED_VERSION, []error{ErrUnsupportedVersion, policy.ErrUnsupportedVersion}},
	{Code_UNKNOWN_TYPE, []error{ErrUnknownType}},
	{Code_BAD_SIGNATURE, []error{policy.ErrBadSignature}},
	{Code_STALE_SEQUENCE, []error{policy.ErrStaleSequence}},
	{Code_REVOKED, []error{policy.ErrRevoked}},
	{Code_EXPIRED, []error{policy.ErrExpired}},
	{Code_NOT_GRANTED, []error{policy.ErrNotGranted}},
	{Code_NOT_RECIPIENT, []error{policy.ErrNotRecipient}},
	{Code_RATE_LIMITED, []error{ErrRateLimited}},
	{Code_EXPIRY_TOO_LONG, []error{policy.ErrExpiryTooLong}},
	{Code_CAPACITY, []error{ErrCapacity}},
	{Code_INTERNAL, []error{ErrInternal}},
	{Code_BAD_KFRAG, []error{policy.ErrBadKFrag}},
	{Code_BAD_THRESHOLD, []error{policy.ErrBadThreshold}},
	{Code_UNKNOWN_ALGORITHM, []error{policy.ErrUnknownAlgorithm}},
	{Code_ALREADY_HELD, []error{ErrAlreadyHeld}},
	{Code_UNAVAILABLE, []error{ErrUnavailable}},
	{Code_NOT_FOUND, []error{ErrNotFound}},
	{Code_UNAUTHORIZED, []error{ErrUnauthorized}},
	{Code_QUOTA, []error{ErrQuota}},
}

// opaqueCodes are refused with the code's fixed text only: the details
// would tell a remote party which verification step failed, or describe
// the node's internals.
var opaqueCodes = map[Code]bool{
	Code_BAD_SIGNATURE: true,
	Code_BAD_KFRAG:     true,
	Code_NOT_GRANTED:   true,
	Code_NOT_RECIPIENT: true,
	Code_INTERNAL:      true,
}

// CodeOf returns the wire code for err: the code of the first sentinel in
// err's chain that has one, INTERNAL otherwise.
func CodeOf(err error) Code {
	for _, cs := range codeSentinels {
		for _, s := range cs.errs {
			if errors.Is(err, s) {
				return cs.code
			}
		}
	}
	return Code_INTERNAL
}

// reasonOf returns the human reason sent with a refusal: the error text,
// except for opaque codes, cut to MaxReasonLen on a rune boundary.
func reasonOf(code Code, err error) string { return reasonMax(code, err, MaxReasonLen) }

// ItemError is the refusal of one item of a batch: the code from CodeOf,
// the reason as Refuse gives it, cut to MaxItemReasonLen.
func ItemError(err error) *Error {
	code := CodeOf(err)
	return &Error{Code: code, Reason: reasonMax(code, err, MaxItemReasonLen)}
}

func reasonMax(code Code, err error, limit int) string {
	var s string
	if opaqueCodes[code] {
		s = sentinelOf(code).Error()
	} else {
		s = err.Error()
	}
	if len(s) > limit {
		s = s[:limit]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func sentinelOf(code Code) error {
	for _, cs := range codeSentinels {
		if cs.code == code {
			return cs.errs[0]
		}
	}
	return nil
}

// RemoteError is a refusal received from a peer. errors.Is matches it
// against the sentinels of its code (policy.ErrExpiryTooLong for
// EXPIRY_TOO_LONG, and so on), so callers handle a remote refusal like a
// local one.
type RemoteError struct {
	Code   Code
	Reason string
}

func (e *RemoteError) Error() string {
	reason := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, e.Reason)
	return fmt.Sprintf("proto: node refused (%s): %s", e.Code, reason)
}

// Is reports whether target is one of the sentinels of e.Code.
func (e *RemoteError) Is(target error) bool {
	for _, cs := range codeSentinels {
		if cs.code != e.Code {
			continue
		}
		for _, s := range cs.errs {
			if s == target {
				return true
			}
		}
	}
	return false
}
