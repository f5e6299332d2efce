package main

import (
	"errors"
	"fmt"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// The CLI's user interface rules in one place: errors are printed as
// "kadre: error: …", followed by "kadre: hint: …" when there is something
// to do next. The library returns sentinels; hints are added here, at the
// edge.

// errUsage means the flag package already printed what was wrong.
var errUsage = errors.New("usage")

// hinted is an error with advice on what to do next.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }

func withHint(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return hinted{err: err, hint: fmt.Sprintf(format, args...)}
}

// identityHint adds the hint for an identity file error.
func identityHint(err error) error {
	switch {
	case errors.Is(err, client.ErrNoIdentity):
		return withHint(err, "create one with `kadre keygen`")
	case errors.Is(err, client.ErrIdentityExists):
		return withHint(err, "print it with `kadre identity`; -force replaces it")
	case errors.Is(err, client.ErrWrongPassphrase):
		return withHint(err, "type the passphrase given to `kadre keygen`, or set KADRE_PASSPHRASE")
	case errors.Is(err, client.ErrWeakPassphrase):
		return withHint(err, "choose a longer passphrase")
	}
	return err
}

// networkHint adds the hint for a failure to reach the network.
func networkHint(err error) error {
	switch {
	case errors.Is(err, client.ErrNoBootstrap):
		return withHint(err, "pass -bootstrap /ip4/…/tcp/…/p2p/…, set KADRE_BOOTSTRAP, or source the testnet's env file")
	case errors.Is(err, client.ErrJoin):
		return withHint(err, "check that the bootstrap nodes are running (kadre status, scripts/testnet.sh status)")
	}
	return identityHint(err)
}

// targetHint adds the hint for a bad -to or -path.
func targetHint(err error) error {
	switch {
	case errors.Is(err, policy.ErrInvalidIdentity):
		return withHint(err, "the recipient prints their identity with `kadre identity`; `kadre grants` lists the ones you granted to")
	case errors.Is(err, policy.ErrInvalidPath):
		return withHint(err, "paths look like /docs or /home/ubuntu/report.txt")
	}
	return err
}

// fileHint adds the hint for a file that is not a kadre file.
func fileHint(err error) error {
	switch {
	case errors.Is(err, kfile.ErrNotKadreFile):
		return withHint(err, "decrypt takes a file made by `kadre encrypt`")
	case errors.Is(err, policy.ErrNotGranted):
		return withHint(err, "%s", notGrantedHint)
	case errors.Is(err, kfile.ErrUnsigned):
		return withHint(err, "pass -allow-unsigned to read it anyway; its owner can make a signed copy with `kadre migrate`")
	case errors.Is(err, kfile.ErrBadSignature), errors.Is(err, kfile.ErrNotAuthorized), errors.Is(err, client.ErrPathMismatch):
		return withHint(err, "the file was not written by whom it claims, or was changed since: do not trust its content")
	case errors.Is(err, client.ErrWriterRevoked):
		return withHint(err, "the owner no longer vouches for files of this writer; ask her for a copy she wrote")
	}
	return networkHint(err)
}

// describe says in a few words why a node gave no usable answer.
func describe(err error) string {
	o := dht.Classify(err)
	if o == dht.BadProof || o == dht.BadAnswer || o == dht.Failed {
		return o.Words() + ": " + err.Error()
	}
	return o.Words()
}

const notGrantedHint = "no grant covers this file's path for your identity; ask the owner to grant a prefix of it to `kadre identity`"

// collectHint says what to do after a failed collection, from the most
// telling answers.
func collectHint(nodes map[string]dht.Outcome) string {
	counts := map[dht.Outcome]int{}
	for _, o := range nodes {
		counts[o]++
	}
	switch {
	case counts["REVOKED"] > 0:
		return "the owner revoked this grant; ask them for a new one"
	case counts["EXPIRED"] > 0:
		return "the grant expired; ask the owner to grant again"
	case counts["NOT_GRANTED"] > 0 || counts["NOT_RECIPIENT"] > 0:
		return notGrantedHint
	}
	return "too few nodes holding the grant answered; check `kadre status` and try again"
}
