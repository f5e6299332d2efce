package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestForEachGrantAndDelete(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	const n = 600 // more than one batch
	var want []entry
	for i := 0; i < n; i++ {
		var g entry
		g.Owner[0], g.Owner[1], g.Owner[2] = 2, byte(i>>8), byte(i)
		g.Recipient[0] = 3
		g.PathHash[0] = byte(i)
		g.ID[0], g.ID[1] = byte(i>>8), byte(i)
		g.Seq = 1
		g.Expires = now.Add(time.Hour)
		g.Record = []byte{byte(i)}
		if err := s.putGrant(g, now); err != nil {
			t.Fatal(err)
		}
		want = append(want, g)
	}
	seen := map[[IDSize]byte]bool{}
	if err := s.forEachGrant(func(g entry) error {
		if seen[g.ID] {
			t.Fatalf("grant %x listed twice", g.ID[:2])
		}
		seen[g.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("listed %d of %d grants", len(seen), n)
	}
	g := want[7]
	if err := s.deleteGrant(&g.Owner, &g.Recipient, &g.PathHash, want[8].ID); !errors.Is(err, ErrChanged) {
		t.Fatalf("delete with another id: %v", err)
	}
	if err := s.deleteGrant(&g.Owner, &g.Recipient, &g.PathHash, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.get(&g.Owner, &g.Recipient, &g.PathHash); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("deleted grant still there: %v", err)
	}
	if _, err := s.getTombstone(&g.Owner, &g.Recipient, &g.PathHash); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("a hand-off left a tombstone: %v", err)
	}
	// The mark stays: the same grant cannot be stored again.
	if err := s.putGrant(g, now); !errors.Is(err, ErrStale) {
		t.Fatalf("re-storing a moved grant: %v", err)
	}
	stop := errors.New("stop")
	count := 0
	if err := s.forEachGrant(func(entry) error { count++; return stop }); !errors.Is(err, stop) || count != 1 {
		t.Fatalf("early stop: %v after %d", err, count)
	}
}
