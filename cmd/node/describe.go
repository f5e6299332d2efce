package main

import (
	"context"
	"errors"

	"github.com/kadre/kadre/dht"
	kversion "github.com/kadre/kadre/internal/version"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// version is the software version kadre reports.
const version = kversion.Version

// describe says in a few words why a node gave no usable answer.
func describe(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, policy.ErrRevoked):
		return "revoked"
	case errors.Is(err, policy.ErrExpired):
		return "expired"
	case errors.Is(err, policy.ErrNotGranted), errors.Is(err, policy.ErrNotRecipient):
		return "not granted"
	case errors.Is(err, dht.ErrBadProof), errors.Is(err, dht.ErrBadResponse):
		return "bad proof (" + err.Error() + ")"
	case errors.Is(err, proto.ErrRateLimited):
		return "rate limited"
	case errors.Is(err, dht.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, dht.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, policy.ErrStaleSequence):
		return "stale sequence number"
	case errors.Is(err, policy.ErrBadSignature):
		return "bad signature"
	}
	return err.Error()
}
