package quota

import (
	"errors"
	"fmt"
	"testing"
)

func TestDefaults(t *testing.T) {
	l := Defaults(1_000_000, 0, 0)
	want := Limit{All: 1_000_000, Owner: 10_000, Peer: 10_000, Group: 20_000, Reserve: 100_000, Floor: 64}
	if l[Grants] != want {
		t.Fatalf("grants %+v, want %+v", l[Grants], want)
	}
	if h := l[History]; h.All != 4_000_000 || h.Owner != 40_000 || h.Group != 80_000 || h.Floor != 256 {
		t.Fatalf("history %+v", h)
	}
	if m := l[Maps]; m.All != 250_000 || m.Owner != 10_000 || m.Group != 20_000 || m.Reserve != 25_000 {
		t.Fatalf("maps %+v", m)
	}
	// Small nodes: the floor follows the group quota.
	if f := Defaults(600, 20, 40)[Grants].Floor; f != 10 {
		t.Fatalf("floor of a small node %d", f)
	}
	if f := Defaults(1, 0, 0)[Grants]; f.Owner != 1 || f.Group != 1 || f.Floor != 1 {
		t.Fatalf("capacity 1: %+v", f)
	}
	err := fmt.Errorf("wrapped: %w", &Error{Kind: Grants, Account: "owner", Used: 3, Limit: 3})
	if !errors.Is(err, ErrQuota) || err.Error() != "wrapped: owner holds 3 of 3 grants allowed" {
		t.Fatalf("%v", err)
	}
}
