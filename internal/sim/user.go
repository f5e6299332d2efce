package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// User is one person with kadre's client library (package client) on a
// machine of their own: an owner who grants, a recipient who decrypts.
// One operation runs at a time per user, so that the machine's counters
// are the operation's.
type User struct {
	Index int
	Keys  *rekey.Keyring
	ID    policy.Identity
	E     *Endpoint
	C     *client.Client
	home  string

	mu sync.Mutex
	// fetched is when this user last fetched each owner's holder map (a
	// grant made after it is not in the cached map).
	fetched map[int]time.Time
}

// StartUser creates a user with fresh keys and a home directory (the
// grants ledger and the cache of holder maps, as the CLI keeps them), and
// joins the network through boot (multiaddrs with /p2p/).
func StartUser(ctx context.Context, n *Net, index int, home string, boot []string) (*User, error) {
	seed := make([]byte, 32)
	rand.Read(seed)
	keys, err := rekey.NewKeyring(seed)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	u := &User{Index: index, Keys: keys, ID: policy.IdentityOf(keys), home: home, fetched: map[int]time.Time{}}
	if err := u.start(ctx, n, boot); err != nil {
		return nil, err
	}
	return u, nil
}

// start opens the user's client on a new machine and joins.
func (u *User) start(ctx context.Context, n *Net, boot []string) error {
	priv, err := libp2pKeyOf(u.Keys.Identity().Bytes())
	if err != nil {
		return err
	}
	e, err := n.AddEndpoint(priv, ipFor(100, u.Index), 0)
	if err != nil {
		return err
	}
	c, err := client.Open(client.Options{Home: u.home, Keyring: u.Keys, Bootstrap: boot, Host: e.Host(), JoinTimeout: 2 * time.Minute})
	if err != nil {
		return err
	}
	if _, err := c.Host(ctx); err != nil {
		return fmt.Errorf("user %d: %w", u.Index, err)
	}
	u.E, u.C = e, c
	return nil
}

// Restart closes the user's client and starts a new one, as every CLI
// command does: a new host whose routing table is built from the network
// as it is now. The ledger and the map cache stay (the home directory).
func (u *User) Restart(ctx context.Context, n *Net, boot []string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.C.Close()
	u.E.Kill(true)
	return u.start(ctx, n, boot)
}

// Sample is one measured operation.
type Sample struct {
	Kind     string
	Duration time.Duration
	Waits
	Net CounterSnapshot
	Err error
}

// measure runs fn as one operation of u's, alone on u's machine.
func (u *User) measure(kind string, fn func() error) Sample {
	u.mu.Lock()
	defer u.mu.Unlock()
	before := u.E.Stats.Snapshot()
	var err error
	start := time.Now()
	w := u.E.Measure(func() { err = fn() })
	return Sample{Kind: kind, Duration: time.Since(start), Waits: w, Net: u.E.Stats.Snapshot().Sub(before), Err: err}
}

// Grant is one grant the simulation made, and the ground truth of where
// its fragments are.
type Grant struct {
	Owner, To *User
	Prefix    policy.Path
	File      []byte // a file under the prefix, encrypted by the owner
	Plain     []byte
	At        time.Time
	M, N      int

	mu      sync.Mutex
	holders []*Node // by fragment
	ids     []policy.RecordID
}

// Holders copies the current holder of every fragment.
func (g *Grant) Holders() []*Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Node(nil), g.holders...)
}

// Serving counts the fragments whose current holder is up and honest.
func (g *Grant) Serving() int {
	k := 0
	for _, h := range g.Holders() {
		if h != nil && h.Serves() {
			k++
		}
	}
	return k
}

// grant makes a grant of prefix from u to to through the client library:
// placement, holder map, ledger. It encrypts a file under the prefix
// first (offline).
func (s *Sim) grant(ctx context.Context, u, to *User, prefix policy.Path) (*Grant, Sample) {
	g := &Grant{Owner: u, To: to, Prefix: prefix, M: 3, N: 5, Plain: []byte("kadre simulation " + prefix.String())}
	var buf bytes.Buffer
	file, _ := policy.NormalizePath(prefix.String() + "/file.txt")
	if err := u.C.Encrypt(&buf, bytes.NewReader(g.Plain), file); err != nil {
		return nil, Sample{Kind: "grant", Err: err}
	}
	g.File = buf.Bytes()
	var res *client.GrantResult
	smp := u.measure("grant", func() error {
		var err error
		res, err = u.C.Grant(ctx, client.GrantRequest{To: to.ID, Prefix: prefix, M: g.M, N: g.N, Expires: time.Now().Add(7 * 24 * time.Hour)})
		return err
	})
	g.At = time.Now()
	if res == nil || res.Record == nil {
		return nil, smp
	}
	g.holders = make([]*Node, g.N)
	g.ids = make([]policy.RecordID, g.N)
	for _, h := range res.Record.Holders {
		nd := s.nodeByPeer(h.Peer)
		if h.Fragment < g.N && nd != nil {
			g.holders[h.Fragment] = nd
			var id policy.RecordID
			if b, err := hex.DecodeString(h.GrantID); err == nil && len(b) == len(id) {
				copy(id[:], b)
			}
			g.ids[h.Fragment] = id
		}
	}
	s.track(g)
	return g, smp
}

// decrypt has g's recipient decrypt g's file through the network (the
// holder map, cached or fetched, then m cfrags).
func (s *Sim) decrypt(ctx context.Context, g *Grant) (Sample, bool) {
	u := g.To
	u.mu.Lock()
	cold := !u.fetched[g.Owner.Index].After(g.At)
	u.mu.Unlock()
	kind := "decrypt-warm"
	if cold {
		kind = "decrypt-cold"
	}
	var out bytes.Buffer
	smp := u.measure(kind, func() error {
		_, err := u.C.Decrypt(ctx, &out, bytes.NewReader(g.File), client.DecryptOptions{})
		if err == nil && !bytes.Equal(out.Bytes(), g.Plain) {
			err = errors.New("sim: decrypted the wrong plaintext")
		}
		return err
	})
	if smp.Err == nil && cold {
		u.mu.Lock()
		u.fetched[g.Owner.Index] = time.Now()
		u.mu.Unlock()
	}
	return smp, cold
}

// capture places a fresh grant from u to to with the real placement code
// only (dht.Host.Place, no holder map) and returns its holders: the
// capture measurement needs many placements and nothing else.
func (s *Sim) placeOnly(ctx context.Context, u, to *User, prefix policy.Path) ([]*Node, int, error) {
	h, err := u.C.Host(ctx)
	if err != nil {
		return nil, 0, err
	}
	gs, err := policy.NewGrants(u.Keys, policy.GrantParams{Recipient: to.ID, Prefix: prefix, Threshold: 3, Shares: 5,
		Sequence: uint64(time.Now().UnixMilli()), Expiry: uint64(time.Now().Add(24 * time.Hour).Unix())})
	if err != nil {
		return nil, 0, err
	}
	u.mu.Lock()
	pl, err := h.Place(ctx, gs, dht.PlaceOptions{})
	u.mu.Unlock()
	if pl == nil {
		return nil, 0, err
	}
	var out []*Node
	for _, p := range pl.Holders {
		if p != "" {
			out = append(out, s.nodeByPeer(p.String()))
		}
	}
	return out, pl.Sampled, err
}

// errClass names an error for the report: the client's outcome words, or
// the first words of its message.
func errClass(err error) string {
	if err == nil {
		return ""
	}
	var tf *client.TooFewPlacedError
	if errors.As(err, &tf) {
		return fmt.Sprintf("placed %d of %d", tf.Placed, tf.N)
	}
	if errors.Is(err, dht.ErrNotEnoughCFrags) {
		return "not enough cfrags"
	}
	if errors.Is(err, dht.ErrNoMap) {
		return "no holder map"
	}
	if errors.Is(err, dht.ErrMapNotStored) {
		return "map not stored"
	}
	msg := err.Error()
	if i := strings.Index(msg, ":"); i > 0 && i < 60 {
		msg = msg[:i]
	}
	return msg
}
