package dht

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Diversity says how many leading bits of a node's IP address make its
// network group: one grant never has two holders in one group (SPEC.md
// §5.2), so identities on one network buy at most one fragment of a grant.
// The zero value means DefaultDiversity; a negative field turns the rule
// off for that family (every node its own group).
type Diversity struct {
	V4, V6 int
}

// DefaultDiversity groups nodes by IPv4 /24 and IPv6 /48.
var DefaultDiversity = Diversity{V4: 24, V6: 48}

func (d Diversity) orDefault() Diversity {
	if d == (Diversity{}) {
		return DefaultDiversity
	}
	return d
}

// NoDiversity puts every node in a group of its own.
var NoDiversity = Diversity{V4: -1, V6: -1}

// Group returns the network group of peer p under d: the masked IP address
// this host reaches p at, "" if it has no connection to p. With the rule
// off it is p's ID. The address is the connection's remote address, which
// the network vouches for (what p advertises is not trusted), preferring
// a connection this host dialed. One exception: every connection accepted
// on a loopback testnet comes from 127.0.0.1 whatever address the peer
// listens on, so there the loopback address p listens on counts.
func (h *Host) Group(p peer.ID, d Diversity) string {
	d = d.orDefault()
	if d.V4 < 0 && d.V6 < 0 {
		return "peer:" + p.String()
	}
	var ip net.IP
	dialed := false
	for _, c := range h.h.Network().ConnsToPeer(p) {
		cip, err := manet.ToIP(c.RemoteMultiaddr())
		if err != nil {
			continue
		}
		if c.Stat().Direction == network.DirOutbound {
			ip, dialed = cip, true
			break
		}
		if ip == nil {
			ip = cip
		}
	}
	if ip == nil {
		return ""
	}
	if !dialed && ip.IsLoopback() {
		for _, a := range h.h.Peerstore().Addrs(p) {
			if lip, err := manet.ToIP(a); err == nil && lip.IsLoopback() {
				ip = lip
				break
			}
		}
	}
	bits, total := d.V6, 128
	if v4 := ip.To4(); v4 != nil {
		ip, bits, total = v4, d.V4, 32
	}
	if bits < 0 {
		return "peer:" + p.String()
	}
	bits = min(bits, total)
	return ip.Mask(net.CIDRMask(bits, total)).String() + fmt.Sprintf("/%d", bits)
}

// Sample returns a wide sample of the network's nodes: the union of the
// nodes closest to lookups random targets (fresh randomness from rnd, so no
// public value decides it), connected and speaking kadre's DHT, in no
// particular order. A node that grinds its identity near a public point
// gains nothing here: the targets are random, and every sampled node is as
// likely to be chosen (Place shuffles). The routing table is not added: its
// deep buckets hold the nodes nearest this host's own (public) ID, which
// is exactly where an attacker grinds identities (SPEC.md §5.2.1).
func (h *Host) Sample(ctx context.Context, lookups int, rnd io.Reader) ([]peer.ID, error) {
	if lookups <= 0 {
		lookups = DefaultSampleLookups
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	targets := make([][]byte, lookups)
	for i := range targets {
		targets[i] = make([]byte, 32)
		if _, err := io.ReadFull(rnd, targets[i]); err != nil {
			return nil, fmt.Errorf("dht: no randomness for the sample: %w", err)
		}
	}
	var mu sync.Mutex
	seen := map[peer.ID]bool{h.ID(): true}
	var out []peer.ID
	add := func(ps []peer.ID) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	var wg sync.WaitGroup
	var errs []error
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := h.ClosestPeers(ctx, t, DefaultCandidates)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			add(ps)
		}()
	}
	wg.Wait()
	connected := out[:0]
	for _, p := range out {
		if h.h.Network().Connectedness(p) == network.Connected {
			connected = append(connected, p)
		}
	}
	if len(connected) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return connected, nil
}

// shuffle permutes ps uniformly (Fisher–Yates) with randomness from rnd.
func shuffle(ps []peer.ID, rnd io.Reader) error {
	for i := len(ps) - 1; i > 0; i-- {
		j, err := rand.Int(rnd, big.NewInt(int64(i+1)))
		if err != nil {
			return fmt.Errorf("dht: no randomness to shuffle: %w", err)
		}
		k := int(j.Int64())
		ps[i], ps[k] = ps[k], ps[i]
	}
	return nil
}
