package store

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// op is one setup step of a deepest-first case.
type op struct {
	revoke    bool
	owner     byte
	recipient byte
	path      string
	seq       uint64
	expires   time.Duration // relative to t0; ignored for revocations
	at        time.Duration // when the step happens, relative to t0
}

func grantOp(owner, recipient byte, path string, seq uint64) op {
	return op{owner: owner, recipient: recipient, path: path, seq: seq, expires: 24 * time.Hour, at: -time.Hour}
}

func expiredOp(owner, recipient byte, path string, seq uint64) op {
	// Stored while live, expired by the time of the lookup.
	return op{owner: owner, recipient: recipient, path: path, seq: seq, expires: -time.Minute, at: -time.Hour}
}

func revokeOp(owner, recipient byte, path string, seq uint64) op {
	return op{revoke: true, owner: owner, recipient: recipient, path: path, seq: seq, at: -30 * time.Minute}
}

const (
	alice = 'A' // owner asked about
	bob   = 'B' // recipient asking
	carol = 'C' // another owner
	dave  = 'D' // another recipient
)

// TestLookupDeepestFirst pins the rules in the package doc: the deepest live
// grant wins; revoked or expired deeper levels do not hide a live shallower
// one; with nothing live the deepest level that had anything names the
// error; other owners' and other recipients' entries never match.
func TestLookupDeepestFirst(t *testing.T) {
	query := []string{"/", "/a", "/a/b"}
	tests := []struct {
		name      string
		ops       []op
		wantLevel int   // when wantErr is nil
		wantErr   error // ErrNotGranted, ErrRevoked or ErrExpired
		errLevel  int   // lookupError.Level for revoked/expired
	}{
		{name: "root only", ops: []op{grantOp(alice, bob, "/", 1)}, wantLevel: 0},
		{name: "middle only", ops: []op{grantOp(alice, bob, "/a", 1)}, wantLevel: 1},
		{name: "deepest only", ops: []op{grantOp(alice, bob, "/a/b", 1)}, wantLevel: 2},
		{name: "root and deepest", ops: []op{grantOp(alice, bob, "/", 1), grantOp(alice, bob, "/a/b", 1)}, wantLevel: 2},
		{name: "all levels", ops: []op{grantOp(alice, bob, "/", 1), grantOp(alice, bob, "/a", 1), grantOp(alice, bob, "/a/b", 1)}, wantLevel: 2},
		{name: "revoked deeper, live shallower wins", ops: []op{
			grantOp(alice, bob, "/a", 1), grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2),
		}, wantLevel: 1},
		{name: "expired deeper, live root wins", ops: []op{
			grantOp(alice, bob, "/", 1), expiredOp(alice, bob, "/a/b", 1),
		}, wantLevel: 0},
		{name: "revoked and expired deeper, live root wins", ops: []op{
			grantOp(alice, bob, "/", 1), expiredOp(alice, bob, "/a", 1), grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2),
		}, wantLevel: 0},
		{name: "revoked only", ops: []op{grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2)}, wantErr: ErrRevoked, errLevel: 2},
		{name: "revoked before granted", ops: []op{revokeOp(alice, bob, "/a", 5)}, wantErr: ErrRevoked, errLevel: 1},
		{name: "expired only", ops: []op{expiredOp(alice, bob, "/a", 1)}, wantErr: ErrExpired, errLevel: 1},
		{name: "revoked deeper than expired", ops: []op{
			expiredOp(alice, bob, "/a", 1), grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2),
		}, wantErr: ErrRevoked, errLevel: 2},
		{name: "expired deeper than revoked", ops: []op{
			grantOp(alice, bob, "/", 1), revokeOp(alice, bob, "/", 2), expiredOp(alice, bob, "/a/b", 1),
		}, wantErr: ErrExpired, errLevel: 2},
		{name: "regranted after revocation", ops: []op{
			grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2), grantOp(alice, bob, "/a/b", 3),
		}, wantLevel: 2},
		{name: "regranted after revocation then expired", ops: []op{
			grantOp(alice, bob, "/a/b", 1), revokeOp(alice, bob, "/a/b", 2), expiredOp(alice, bob, "/a/b", 3),
		}, wantErr: ErrExpired, errLevel: 2},
		{name: "nothing", wantErr: ErrNotGranted},
		{name: "deeper than asked", ops: []op{grantOp(alice, bob, "/a/b/c", 1)}, wantErr: ErrNotGranted},
		{name: "sibling path", ops: []op{grantOp(alice, bob, "/a/x", 1)}, wantErr: ErrNotGranted},
		{name: "other owner same path hash", ops: []op{
			grantOp(carol, bob, "/", 1), grantOp(carol, bob, "/a", 1), grantOp(carol, bob, "/a/b", 1),
		}, wantErr: ErrNotGranted},
		{name: "other recipient same path hash", ops: []op{
			grantOp(alice, dave, "/", 1), grantOp(alice, dave, "/a/b", 1),
		}, wantErr: ErrNotGranted},
		{name: "other recipient revoked", ops: []op{
			grantOp(alice, dave, "/a/b", 1), revokeOp(alice, dave, "/a/b", 2),
		}, wantErr: ErrNotGranted},
		{name: "other recipient revoked, own root live", ops: []op{
			grantOp(alice, bob, "/", 1), grantOp(alice, dave, "/a/b", 1), revokeOp(alice, dave, "/a/b", 2),
		}, wantLevel: 0},
		{name: "other owner revoked, own deepest live", ops: []op{
			grantOp(alice, bob, "/a/b", 1), grantOp(carol, bob, "/a/b", 1), revokeOp(carol, bob, "/a/b", 2),
		}, wantLevel: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), Options{})
			for _, o := range tt.ops {
				owner, recipient := pk(o.owner), pk(o.recipient)
				now := t0.Add(o.at)
				if o.revoke {
					mustRevoke(t, s, owner, recipient, o.path, o.seq, now)
					continue
				}
				mustPut(t, s, mkGrant(owner, recipient, o.path, o.seq, t0.Add(o.expires)), now)
			}
			owner, recipient := pk(alice), pk(bob)
			m, err := s.lookup(&owner, &recipient, pathHashes(query...), t0)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Lookup: %v, want level %d", err, tt.wantLevel)
				}
				if m.Level != tt.wantLevel {
					t.Fatalf("Level = %d, want %d", m.Level, tt.wantLevel)
				}
				want := query[m.Level]
				if m.Grant.PathHash != ph(want) || m.Grant.Owner != owner || m.Grant.Recipient != recipient {
					t.Fatalf("matched the wrong grant: %+v", m.Grant)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Lookup error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrNotGranted {
				return
			}
			var le *lookupError
			if !errors.As(err, &le) || le.Level != tt.errLevel {
				t.Fatalf("Lookup error = %#v, want level %d", err, tt.errLevel)
			}
		})
	}
}

func TestLookupExpiryBoundary(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/", 1, t0), t0.Add(-time.Hour))
	hs := pathHashes("/")
	if _, err := s.lookup(&owner, &recipient, hs, t0.Add(-time.Second)); err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
	if _, err := s.lookup(&owner, &recipient, hs, t0); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
}

func TestLookupArguments(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	if _, err := s.lookup(&owner, &recipient, nil, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no levels: %v", err)
	}
	if _, err := s.lookup(&owner, &recipient, make([][32]byte, MaxDepth+1), t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too deep: %v", err)
	}
}

// TestLookupMatchesModel compares Lookup with a per-level reference built
// from Get and GetTombstone, on random stores where neighbouring owners and
// recipients (adjacent in key order) hold grants on the same path hashes,
// and on random queries: depths up to 40 (past the small-buffer size),
// repeated path hashes, hits anywhere.
func TestLookupMatchesModel(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 48)
	for i := range pool {
		pool[i] = "/p" + itoa(i)
	}
	owners := []byte{alice - 1, alice, alice + 1}
	recipients := []byte{bob - 1, bob, bob + 1}
	seq := uint64(0)
	for range 400 {
		o, r := pk(owners[rng.IntN(3)]), pk(recipients[rng.IntN(3)])
		p := pool[rng.IntN(len(pool))]
		seq++
		switch rng.IntN(4) {
		case 0:
			mustRevoke(t, s, o, r, p, seq, t0.Add(-time.Hour))
		case 1:
			mustPut(t, s, mkGrant(o, r, p, seq, t0.Add(-time.Minute)), t0.Add(-time.Hour))
		default:
			mustPut(t, s, mkGrant(o, r, p, seq, t0.Add(time.Hour)), t0.Add(-time.Hour))
		}
	}
	owner, recipient := pk(alice), pk(bob)
	reference := func(hs [][32]byte) (int, error) {
		expired := -1
		for i := len(hs) - 1; i >= 0; i-- {
			g, err := s.get(&owner, &recipient, &hs[i])
			if err == nil && g.Expires.After(t0) {
				return i, nil
			}
			if err == nil && expired < 0 {
				expired = i
			}
		}
		for i := len(hs) - 1; i > expired; i-- {
			if _, err := s.getTombstone(&owner, &recipient, &hs[i]); err == nil {
				return i, ErrRevoked
			}
		}
		if expired >= 0 {
			return expired, ErrExpired
		}
		return -1, ErrNotGranted
	}
	for q := range 3000 {
		hs := make([][32]byte, 1+rng.IntN(40))
		for i := range hs {
			if rng.IntN(3) == 0 {
				hs[i] = randHash(rng)
			} else {
				hs[i] = ph(pool[rng.IntN(len(pool))])
			}
		}
		wantLevel, wantErr := reference(hs)
		m, err := s.lookup(&owner, &recipient, hs, t0)
		var le *lookupError
		switch {
		case wantErr == nil:
			if err != nil || m.Level != wantLevel || m.Grant.PathHash != hs[wantLevel] {
				t.Fatalf("query %d: Lookup = level %d, %v; want level %d", q, m.Level, err, wantLevel)
			}
		case wantErr == ErrNotGranted:
			if err != ErrNotGranted {
				t.Fatalf("query %d: Lookup = level %d, %v; want not granted", q, m.Level, err)
			}
		default:
			if !errors.As(err, &le) || le.Err != wantErr || le.Level != wantLevel {
				t.Fatalf("query %d: Lookup = %v; want %v at level %d", q, err, wantErr, wantLevel)
			}
		}
	}
}

func randHash(rng *rand.Rand) [32]byte {
	var h [32]byte
	for i := range h {
		h[i] = byte(rng.Uint32())
	}
	return h
}
