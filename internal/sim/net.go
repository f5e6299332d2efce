package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	cmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/kadre/kadre/dht"
)

// NetConfig is the simulated network: every pair of endpoints is joined by
// a link of its own whose round-trip time is drawn once, uniformly in
// RTT·(1 ± Jitter), and every message waits an extra exponential delay of
// mean MessageJitter on top (queueing). Links carry Bandwidth bytes/s.
type NetConfig struct {
	RTT           time.Duration
	Jitter        float64
	MessageJitter time.Duration
	Bandwidth     float64
	// Handshake is how many round trips a new connection costs before its
	// first stream (TCP's SYN/ACK and Noise's XX; identify's round trip is
	// simulated, as a real exchange). Default 2.
	Handshake int
	// DialTimeout bounds a dial to a dead endpoint (a machine that is gone
	// answers nothing: the dial waits until the caller's deadline or this).
	// Default 15 s, libp2p's swarm dial timeout for public addresses.
	DialTimeout time.Duration
	Seed        uint64
}

func (c *NetConfig) defaults() {
	if c.RTT == 0 {
		c.RTT = 50 * time.Millisecond
	}
	if c.Handshake == 0 {
		c.Handshake = 2
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 15 * time.Second
	}
}

// Net is go-libp2p's mock network with kadre's costs: per-link latency
// and bandwidth, connection handshakes, dead endpoints that never answer,
// deadlines on streams (mocknet's are no-ops), and counters of what every
// endpoint sends.
type Net struct {
	cfg NetConfig
	mn  mocknet.Mocknet

	// No lock is held on a message's path: every stream open and flush
	// looks its peer up, and a global lock there serializes the whole
	// network behind each new link (a writer waiting on an RWMutex stops
	// its readers), which at 1,000 nodes under sybils' lookups left
	// thousands of dials queued.
	peers sync.Map // peer.ID → *Endpoint

	lmu   sync.Mutex
	links map[[2]peer.ID]*pairLink
}

// pairLink is the link of one pair of endpoints, made on first use; its
// lock is held only by the pair's own dials.
type pairLink struct {
	a, b *Endpoint
	mu   sync.Mutex
	l    mocknet.Link
}

// NewNet starts an empty network.
func NewNet(cfg NetConfig) *Net {
	cfg.defaults()
	return &Net{cfg: cfg, mn: mocknet.New(), links: map[[2]peer.ID]*pairLink{}}
}

// Close stops every endpoint.
func (n *Net) Close() error { return n.mn.Close() }

// Endpoint is one simulated machine: a node or a user's client.
type Endpoint struct {
	net   *Net
	ID    peer.ID
	IP    net.IP
	Addr  ma.Multiaddr
	inner host.Host
	host  *simHost
	cm    *cmgr.BasicConnMgr

	dead atomic.Bool
	// refuse: the machine is up but kadre no longer runs on it, so dials
	// are refused at once (TCP RST) instead of hanging.
	refuse atomic.Bool
	// slow is extra one-way latency on every link of this endpoint.
	slow atomic.Int64 // time.Duration

	// intercept, if set, replaces the handler of a protocol (behaviours:
	// lying nodes, sybils); it is looked up for every stream, so a node
	// can turn liar while it runs.
	imu       sync.RWMutex
	intercept map[protocol.ID]func(s network.Stream, real network.StreamHandler)

	Stats Counters
	rec   atomic.Pointer[recorder]
}

// Counters count what an endpoint sent on the streams it opened, and what
// it answered on the streams others opened.
type Counters struct {
	Requests, BytesOut, BytesIn atomic.Int64 // on streams it opened
	RPCs                        atomic.Int64 // of Requests, kadre RPCs (the others are DHT lookups' queries)
	Served, ServedBytes         atomic.Int64 // on streams others opened (requests read)
	Dials                       atomic.Int64 // new connections it opened
}

// CounterSnapshot is a copy of Counters.
type CounterSnapshot struct {
	Requests, RPCs, BytesOut, BytesIn, Served, ServedBytes, Dials int64
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() CounterSnapshot {
	return CounterSnapshot{c.Requests.Load(), c.RPCs.Load(), c.BytesOut.Load(), c.BytesIn.Load(), c.Served.Load(), c.ServedBytes.Load(), c.Dials.Load()}
}

// Sub is c − o.
func (c CounterSnapshot) Sub(o CounterSnapshot) CounterSnapshot {
	return CounterSnapshot{c.Requests - o.Requests, c.RPCs - o.RPCs, c.BytesOut - o.BytesOut, c.BytesIn - o.BytesIn,
		c.Served - o.Served, c.ServedBytes - o.ServedBytes, c.Dials - o.Dials}
}

// AddEndpoint creates a machine with identity key priv at ip. slow adds
// one-way latency to every link it has.
func (n *Net) AddEndpoint(priv crypto.PrivKey, ip net.IP, slow time.Duration) (*Endpoint, error) {
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/%s/tcp/4001", ip))
	if err != nil {
		return nil, err
	}
	inner, err := n.mn.AddPeer(priv, addr)
	if err != nil {
		return nil, err
	}
	cm, err := cmgr.NewConnManager(128, 192, cmgr.WithGracePeriod(10*time.Second))
	if err != nil {
		inner.Close()
		return nil, err
	}
	inner.Network().Notify(cm.Notifee())
	e := &Endpoint{net: n, ID: inner.ID(), IP: ip, Addr: addr, inner: inner, cm: cm,
		intercept: map[protocol.ID]func(network.Stream, network.StreamHandler){}}
	e.slow.Store(int64(slow))
	e.host = &simHost{Host: inner, e: e}
	n.peers.Store(e.ID, e)
	return e, nil
}

// Host is the endpoint's libp2p host, to give dht.Config.Host.
func (e *Endpoint) Host() host.Host { return e.host }

// AddrInfo is how others reach the endpoint.
func (e *Endpoint) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: e.ID, Addrs: []ma.Multiaddr{e.Addr}}
}

// P2pAddr is the endpoint's multiaddr with /p2p/<id>.
func (e *Endpoint) P2pAddr() string { return fmt.Sprintf("%s/p2p/%s", e.Addr, e.ID) }

// Kill stops the machine's host: peers see its connections close. With
// refuse, the machine stays up without kadre (a node that exited), and
// later dials to it are refused at once; without, the machine is gone,
// and later dials hang until the dialer gives up (the dial timeout).
func (e *Endpoint) Kill(refuse bool) {
	e.refuse.Store(refuse)
	if e.dead.Swap(true) {
		return
	}
	e.cm.Close()
	e.inner.Close()
	for _, pl := range e.net.linksOf(e.ID, true) {
		pl.mu.Lock()
		if pl.l != nil {
			e.net.mn.Unlink(pl.l)
			pl.l = nil
		}
		pl.mu.Unlock()
	}
}

// linksOf returns the pair links of endpoint id; with drop, it also
// forgets them (the next dial makes a new one).
func (n *Net) linksOf(id peer.ID, drop bool) []*pairLink {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	var out []*pairLink
	for k, pl := range n.links {
		if k[0] == id || k[1] == id {
			out = append(out, pl)
			if drop {
				delete(n.links, k)
			}
		}
	}
	return out
}

// endpoint is the machine with identity id, or nil.
func (n *Net) endpoint(id peer.ID) *Endpoint {
	if v, ok := n.peers.Load(id); ok {
		return v.(*Endpoint)
	}
	return nil
}

// Dead reports whether the machine was killed.
func (e *Endpoint) Dead() bool { return e.dead.Load() }

// Intercept replaces the handler of protocol pid with fn, which gets each
// inbound stream and the real handler (to serve what it does not forge);
// nil restores the real handler.
func (e *Endpoint) Intercept(pid protocol.ID, fn func(s network.Stream, real network.StreamHandler)) {
	e.imu.Lock()
	defer e.imu.Unlock()
	if fn == nil {
		delete(e.intercept, pid)
		return
	}
	e.intercept[pid] = fn
}

func (e *Endpoint) interceptor(pid protocol.ID) func(network.Stream, network.StreamHandler) {
	e.imu.RLock()
	defer e.imu.RUnlock()
	return e.intercept[pid]
}

// SetSlow adds d of one-way latency to every link of the endpoint, the
// ones it has and the ones it will have.
func (e *Endpoint) SetSlow(d time.Duration) {
	n := e.net
	e.slow.Store(int64(d))
	for _, pl := range n.linksOf(e.ID, false) {
		pl.mu.Lock()
		if pl.l != nil {
			pl.l.SetOptions(mocknet.LinkOptions{Latency: n.rtt(pl.a, pl.b) / 2, Bandwidth: n.cfg.Bandwidth})
		}
		pl.mu.Unlock()
	}
}

func pairKey(a, b peer.ID) [2]peer.ID {
	if a > b {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}

// rtt is the drawn round-trip time of the link between a and b.
func (n *Net) rtt(a, b *Endpoint) time.Duration {
	k := pairKey(a.ID, b.ID)
	h := fnv.New64a()
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], n.cfg.Seed)
	h.Write(s[:])
	h.Write([]byte(k[0]))
	h.Write([]byte(k[1]))
	u := float64(h.Sum64()>>11)/float64(1<<53)*2 - 1 // uniform in [-1, 1)
	d := time.Duration(float64(n.cfg.RTT) * (1 + n.cfg.Jitter*u))
	return d + 2*time.Duration(a.slow.Load()) + 2*time.Duration(b.slow.Load())
}

// RTTBetween is the link's round-trip time without message jitter.
func (n *Net) RTTBetween(a, b *Endpoint) time.Duration { return n.rtt(a, b) }

var (
	errDead    = errors.New("sim: dial timed out (the machine does not answer)")
	errRefused = errors.New("sim: connection refused")
)

// prepare makes from ready to open a stream to to: a link (created on
// first use), and, when they are not connected, the handshake's round
// trips. A dead machine is never reached: the dial waits until ctx ends
// or the dial timeout passes.
func (n *Net) prepare(ctx context.Context, from *Endpoint, to peer.ID) (newConn bool, err error) {
	dst := n.endpoint(to)
	if dst == nil {
		return false, fmt.Errorf("sim: no machine %s", to)
	}
	if from.dead.Load() {
		return false, errors.New("sim: this machine is dead")
	}
	if dst.dead.Load() {
		if dst.refuse.Load() {
			return false, errRefused
		}
		// As the swarm: the dial gives up after the context's dial
		// timeout (network.WithDialPeerTimeout) if that is shorter.
		t := time.NewTimer(min(n.cfg.DialTimeout, network.GetDialPeerTimeout(ctx)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %w", errDead, ctx.Err())
		case <-t.C:
			return false, errDead
		}
	}
	if from.inner.Network().Connectedness(to) == network.Connected {
		return false, nil
	}
	k := pairKey(from.ID, to)
	n.lmu.Lock()
	pl := n.links[k]
	if pl == nil {
		pl = &pairLink{a: from, b: dst}
		n.links[k] = pl
	}
	n.lmu.Unlock()
	pl.mu.Lock()
	if pl.l == nil {
		l, err := n.mn.LinkPeers(from.ID, to)
		if err != nil {
			pl.mu.Unlock()
			return false, err
		}
		l.SetOptions(mocknet.LinkOptions{Latency: n.rtt(from, dst) / 2, Bandwidth: n.cfg.Bandwidth})
		pl.l = l
	}
	pl.mu.Unlock()
	d := time.Duration(n.cfg.Handshake) * n.rtt(from, dst)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
	}
	if dst.dead.Load() {
		return false, errDead
	}
	from.Stats.Dials.Add(1)
	return true, nil
}

// messageDelay is the extra delay of one message.
func (n *Net) messageDelay() time.Duration {
	if n.cfg.MessageJitter <= 0 {
		return 0
	}
	return time.Duration(rand.ExpFloat64() * float64(n.cfg.MessageJitter))
}

// simHost is an endpoint's host as kadre sees it: mocknet's basic host,
// with dials through Net.prepare and every stream wrapped.
type simHost struct {
	host.Host
	e *Endpoint
}

func (h *simHost) Connect(ctx context.Context, pi peer.AddrInfo) error {
	start := time.Now()
	fresh, err := h.e.net.prepare(ctx, h.e, pi.ID)
	if err != nil {
		h.e.record(start, time.Now(), 0, waitDial, false)
		return err
	}
	err = h.Host.Connect(ctx, pi)
	if fresh {
		h.e.record(start, time.Now(), h.e.net.cfg.Handshake+1, waitDial, err == nil)
	}
	return err
}

func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	start := time.Now()
	fresh, err := h.e.net.prepare(ctx, h.e, p)
	if err != nil {
		h.e.record(start, time.Now(), 0, waitDial, false)
		return nil, err
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if fresh {
		h.e.record(start, time.Now(), h.e.net.cfg.Handshake+1, waitDial, err == nil)
	}
	if err != nil {
		return nil, err
	}
	return newStream(s, h.e, true), nil
}

func (h *simHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		ws := newStream(s, h.e, false)
		if fn := h.e.interceptor(pid); fn != nil {
			fn(ws, handler)
			return
		}
		handler(ws)
	})
}

func (h *simHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(newStream(s, h.e, false)) })
}

func (h *simHost) ConnManager() connmgr.ConnManager { return h.e.cm }

func (h *simHost) Close() error {
	h.e.cm.Close()
	return h.Host.Close()
}

// stream wraps a mocknet stream: it adds each message's jitter, enforces
// deadlines (mocknet ignores them; kadre relies on them to cut off hung
// peers), and counts requests and bytes.
type stream struct {
	network.Stream
	e   *Endpoint
	out bool
	rpc bool // kadre's RPC protocol

	mu    sync.Mutex
	phase int       // what the last operation was: 0 none, phaseRead, phaseWrite
	start time.Time // when the current request began (streams opened here)
	// lastWrite is when the last write entered the link.
	lastWrite time.Time
	timer     *time.Timer
	// expired is set once a deadline passed; the stream is reset then.
	expired atomic.Bool
}

const (
	phaseRead = 1 + iota
	phaseWrite
)

func newStream(s network.Stream, e *Endpoint, out bool) *stream {
	return &stream{Stream: s, e: e, out: out, rpc: s.Protocol() == dht.RPCProtocol}
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	first := s.phase != phaseWrite
	if first {
		s.phase = phaseWrite
		s.start = time.Now()
	}
	s.mu.Unlock()
	if first {
		if s.out {
			s.e.Stats.Requests.Add(1)
			if s.rpc {
				s.e.Stats.RPCs.Add(1)
			}
			if r := s.e.rec.Load(); r != nil {
				r.mu.Lock()
				r.peers[s.Conn().RemotePeer()] = true
				r.mu.Unlock()
			}
		}
		if d := s.e.net.messageDelay(); d > 0 {
			time.Sleep(d)
		}
	}
	if s.expired.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := s.Stream.Write(p)
	s.mu.Lock()
	s.lastWrite = time.Now()
	s.mu.Unlock()
	if s.out {
		s.e.Stats.BytesOut.Add(int64(n))
	}
	if err != nil && s.expired.Load() {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}

func (s *stream) Read(p []byte) (int, error) {
	if s.expired.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := s.Stream.Read(p)
	if n > 0 {
		s.mu.Lock()
		prev, start := s.phase, s.start
		s.phase = phaseRead
		s.mu.Unlock()
		if s.out {
			s.e.Stats.BytesIn.Add(int64(n))
			if prev == phaseWrite {
				s.e.record(start, time.Now(), 1, s.kind(), true)
			}
		} else {
			if prev != phaseRead {
				s.e.Stats.Served.Add(1)
			}
			s.e.Stats.ServedBytes.Add(int64(n))
		}
	}
	if err != nil && n == 0 {
		s.unanswered()
	}
	if err != nil && s.expired.Load() {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}

// kind names the stream's protocol for the record of waits.
func (s *stream) kind() string {
	if s.rpc {
		return waitRPC
	}
	return waitDHT
}

// unanswered records a request that got no answer (the stream failed or
// was given up while the request was out).
func (s *stream) unanswered() {
	if !s.out {
		return
	}
	s.mu.Lock()
	prev, start := s.phase, s.start
	if prev == phaseWrite {
		s.phase = 0
	}
	s.mu.Unlock()
	if prev == phaseWrite {
		s.e.record(start, time.Now(), 0, s.kind(), false)
	}
}

func (s *stream) setDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		s.expired.Store(true)
		go s.Stream.Reset()
		return
	}
	s.timer = time.AfterFunc(d, func() {
		s.expired.Store(true)
		s.Stream.Reset()
	})
}

func (s *stream) SetDeadline(t time.Time) error      { s.setDeadline(t); return nil }
func (s *stream) SetReadDeadline(t time.Time) error  { s.setDeadline(t); return nil }
func (s *stream) SetWriteDeadline(t time.Time) error { s.setDeadline(t); return nil }

// Close and CloseWrite wait until the last message written has arrived:
// mocknet delivers what is buffered at once when a stream closes, so a
// small request followed by CloseWrite (every kadre RPC) would otherwise
// cross the link without its latency.
func (s *stream) Close() error {
	s.flush()
	s.stopTimer()
	return s.Stream.Close()
}

func (s *stream) CloseWrite() error {
	s.flush()
	return s.Stream.CloseWrite()
}

func (s *stream) flush() {
	s.mu.Lock()
	last := s.lastWrite
	s.mu.Unlock()
	if last.IsZero() {
		return
	}
	n := s.e.net
	remote := n.endpoint(s.Conn().RemotePeer())
	if remote == nil {
		return
	}
	if d := time.Until(last.Add(n.rtt(s.e, remote) / 2)); d > 0 {
		time.Sleep(d)
	}
}

func (s *stream) Reset() error {
	s.unanswered()
	s.stopTimer()
	return s.Stream.Reset()
}

func (s *stream) stopTimer() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
}

// recorder keeps the network waits of one operation: each request's round
// trip, and each new connection's handshake, as intervals with a weight
// in round trips.
type recorder struct {
	mu    sync.Mutex
	ivs   []interval
	peers map[peer.ID]bool // the machines sent a request
}

type interval struct {
	start, end time.Time
	weight     int
	kind       string // waitDial, waitDHT, waitRPC
	answered   bool
}

// Kinds of waits.
const (
	waitDial = "dial"
	waitDHT  = "dht"
	waitRPC  = "rpc"
)

// StallTime is how long a wait must last to count as a stall: twenty
// times the round trip, a timeout rather than the network's latency.
const stallRTTs = 20

func (e *Endpoint) record(start, end time.Time, w int, kind string, answered bool) {
	if r := e.rec.Load(); r != nil {
		r.mu.Lock()
		r.ivs = append(r.ivs, interval{start, end, w, kind, answered})
		r.mu.Unlock()
	}
}

// Waits are what an operation waited for.
type Waits struct {
	// RoundTrips is the longest chain of answered waits that followed one
	// another, in round trips (a new connection counts its handshake's
	// and identify's).
	RoundTrips int
	// Peers is the number of machines sent a request.
	Peers int
	// Stalls counts, by kind (dial, dht, rpc), the waits of at least
	// stallRTTs round trips, answered or not: timeouts.
	Stalls map[string]int
	// Unanswered counts the requests and dials that got no answer.
	Unanswered int
}

// Measure runs op with e's waits recorded.
func (e *Endpoint) Measure(op func()) Waits {
	r := &recorder{peers: map[peer.ID]bool{}}
	e.rec.Store(r)
	op()
	e.rec.Store(nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	w := Waits{Peers: len(r.peers), Stalls: map[string]int{}}
	var answered []interval
	stall := stallRTTs * e.net.cfg.RTT
	for _, iv := range r.ivs {
		if iv.end.Sub(iv.start) >= stall {
			w.Stalls[iv.kind]++
		}
		if iv.answered {
			answered = append(answered, iv)
		} else {
			w.Unanswered++
		}
	}
	w.RoundTrips = chain(answered)
	return w
}

// chain is the largest total weight of intervals none of which overlap
// (weighted interval scheduling): the round trips an operation waited
// for one after another.
func chain(ivs []interval) int {
	if len(ivs) == 0 {
		return 0
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].end.Before(ivs[j].end) })
	best := make([]int, len(ivs)+1)
	for i, iv := range ivs {
		// The last interval that ends before iv starts.
		j := sort.Search(i, func(k int) bool { return ivs[k].end.After(iv.start) })
		best[i+1] = max(best[i], best[j]+iv.weight)
	}
	return best[len(ivs)]
}

// ipFor returns the address of the i-th machine of a kind, each on an
// IPv4 /24 of its own: base.x.y.1 with x.y = i.
func ipFor(base byte, i int) net.IP {
	return net.IPv4(base, byte(i>>8), byte(i), 1).To4()
}

// libp2pKeyOf converts kadre's identity key for mocknet.
func libp2pKeyOf(b []byte) (crypto.PrivKey, error) { return crypto.UnmarshalSecp256k1PrivateKey(b) }

var _ = math.MaxInt
