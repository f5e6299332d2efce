package explain

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

func TestCodesAndHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("x: %w", client.ErrNoIdentity), "NO_IDENTITY"},
		{fmt.Errorf("x: %w", kfile.ErrNotKadreFile), "NOT_KADRE_FILE"},
		{fmt.Errorf("x: %w", kfile.ErrCorrupt), "CORRUPT"},
		{fmt.Errorf("x: %w: %w", policy.ErrNotGranted, dht.ErrNoMap), "NOT_GRANTED"},
		{&client.ExpiryTooLongError{M: 3}, "EXPIRY_TOO_LONG"},
		{fmt.Errorf("%w: m=0", policy.ErrBadThreshold), "BAD_THRESHOLD"},
		{errors.New("something else"), "ERROR"},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("%v: code %s, want %s", tc.err, got, tc.code)
		}
		if tc.code != "ERROR" && Hint(tc.err) == "" {
			t.Errorf("%v: no hint", tc.err)
		}
	}
	// A hint given at the edge wins over the sentinel's; the code stays.
	err := WithHint(fmt.Errorf("x: %w", kfile.ErrCorrupt), "try %s", "again")
	if Code(err) != "CORRUPT" || Hint(err) != "try again" {
		t.Fatalf("WithHint: %s %q", Code(err), Hint(err))
	}
	if WithHint(nil, "x") != nil || WithCode("C", nil, "x") != nil {
		t.Fatal("a nil error got a hint")
	}
	p := Of(WithCode("NOT_DEAD", errors.New("not dead"), "again later"))
	if p.Code != "NOT_DEAD" || p.Message != "not dead" || p.Hint != "again later" {
		t.Fatalf("Of: %+v", p)
	}
}

// A failed collection is explained by the most telling answers.
func TestCollection(t *testing.T) {
	base := fmt.Errorf("x: %w", dht.ErrNotEnoughCFrags)
	refused := func(c proto.Code) error { return &proto.RemoteError{Code: c} }
	for _, tc := range []struct {
		nodes map[peer.ID]error
		code  string
	}{
		{map[peer.ID]error{"a": refused(proto.Code_REVOKED), "b": dht.ErrUnreachable}, "REVOKED"},
		{map[peer.ID]error{"a": refused(proto.Code_EXPIRED), "b": refused(proto.Code_NOT_GRANTED)}, "EXPIRED"},
		{map[peer.ID]error{"a": refused(proto.Code_NOT_GRANTED)}, "NOT_GRANTED"},
		{map[peer.ID]error{"a": refused(proto.Code_RATE_LIMITED)}, "RATE_LIMITED"},
		{map[peer.ID]error{"a": dht.ErrUnreachable, "b": dht.ErrTimeout}, "TOO_FEW_ANSWERS"},
	} {
		err := Collection(base, tc.nodes)
		p := Of(err)
		if p.Code != tc.code || p.Hint == "" || len(p.Nodes) != len(tc.nodes) {
			t.Errorf("%v: %+v, want %s", tc.nodes, p, tc.code)
		}
	}
	fk := &client.FileKey{Nodes: map[peer.ID]error{"a": refused(proto.Code_REVOKED)}}
	if Code(Decrypt(base, fk)) != "REVOKED" || Code(Decrypt(kfile.ErrCorrupt, fk)) != "CORRUPT" || Decrypt(nil, fk) != nil {
		t.Fatal("Decrypt")
	}
}
