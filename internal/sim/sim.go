// Package sim runs kadre's real code — dht.Host with its private Kademlia,
// dht.Service, the LMDB store, and the client library — on hundreds or
// thousands of in-process machines joined by go-libp2p's mock network,
// with per-link latency, jitter and bandwidth, connection handshakes, dead
// machines that never answer, and stream deadlines (issue 15). Time is
// real. Scenarios: a steady network, churn (nodes leave, join, and retire
// with hand-off), faulty nodes (dead, slow, lying), and sybils that try to
// capture grants and to eclipse discovery.
//
// What is simulated and what is not is in BENCHMARKS.md §7.
package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Config is one simulation run.
type Config struct {
	// Nodes is the number of honest nodes the network starts with.
	Nodes int
	// Users is the number of owners and recipients (each a client on a
	// machine of its own). Default 20.
	Users int
	// Grants and Decrypts are the operations measured in each phase.
	Grants, Decrypts int
	// Background grants are made with the real policy code (real kfrags
	// and signatures) and written straight into their holders' stores,
	// with their pairs' holder maps on the storers: the load of a network
	// that holds that many grants, without placing each one through the
	// network.
	Background int
	// Concurrency is how many measured operations run at once. Default 4.
	Concurrency int
	Net         NetConfig
	// Refresh is the routing-table refresh period. Default kadre's
	// (dht.DefaultRefreshPeriod).
	Refresh time.Duration

	// Phases run in order on one network: "steady", "churn", "faults",
	// "sybil". Default steady.
	Phases []string
	// Churn is the fraction of the nodes that leave, retire (hand-off) or
	// join, a third each, over ChurnPhase. Default 0.3 over 2 minutes;
	// RetireTimeout bounds one node's hand-offs (default 90 s).
	Churn         float64
	ChurnPhase    time.Duration
	RetireTimeout time.Duration
	// Vanish makes leaving nodes (churn) and dead ones (faults) machines
	// that are gone: dials to them hang until the dialer's deadline or the
	// dial timeout. Otherwise they exit cleanly and dials are refused at
	// once. Retiring nodes always exit cleanly.
	Vanish bool
	// Dead, Slow and Liars are the fractions of honest nodes the faults
	// phase kills, slows by SlowDelay one way (default 250 ms), and turns
	// into liars. Defaults 0.1 each.
	Dead, Slow, Liars float64
	SlowDelay         time.Duration
	// Sybils are the attacker's fractions of the network, one stage each
	// (the attacker adds nodes to reach it). Default 0.05, 0.1, 0.2, 0.3.
	Sybils []float64
	// SybilNets is how many IPv4 /24s the attacker's nodes share; 0 puts
	// each on a /24 of its own (an attacker with as many networks as
	// nodes, the formula's case).
	SybilNets int
	// Ground is the fraction of sybils ground to be the nodes closest to
	// the public points of the users' pairs (the old locators, the users'
	// own keys) rather than placed at random. Default 0.5.
	Ground float64
	// CaptureTrials is the number of placements per sybil stage that
	// measure the capture rate; SampleTrials the samples that measure the
	// attacker's share of what placement chooses from. Defaults 400, 20.
	CaptureTrials, SampleTrials int
	// Idle is how long the network is measured without operations (the
	// background traffic of routing-table refreshes). 0 skips it.
	Idle time.Duration

	// Dir is the root of the nodes' stores (default a new directory in
	// /dev/shm, removed at the end).
	Dir  string
	Logf func(format string, args ...any)
	Seed uint64
}

func (c *Config) defaults() {
	if c.Users == 0 {
		c.Users = 20
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if len(c.Phases) == 0 {
		c.Phases = []string{"steady"}
	}
	if c.Churn == 0 {
		c.Churn = 0.3
	}
	if c.ChurnPhase == 0 {
		c.ChurnPhase = 2 * time.Minute
	}
	if c.RetireTimeout == 0 {
		c.RetireTimeout = 90 * time.Second
	}
	if c.Dead == 0 && c.Slow == 0 && c.Liars == 0 {
		c.Dead, c.Slow, c.Liars = 0.1, 0.1, 0.1
	}
	if c.SlowDelay == 0 {
		c.SlowDelay = 250 * time.Millisecond
	}
	if len(c.Sybils) == 0 {
		c.Sybils = []float64{0.05, 0.1, 0.2, 0.3}
	}
	if c.Ground == 0 {
		c.Ground = 0.5
	}
	if c.CaptureTrials == 0 {
		c.CaptureTrials = 400
	}
	if c.SampleTrials == 0 {
		c.SampleTrials = 20
	}
	if c.Refresh == 0 {
		c.Refresh = dht.DefaultRefreshPeriod
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	c.Net.Seed = c.Seed
}

// Sim is a running simulation.
type Sim struct {
	cfg Config
	net *Net
	dir string
	rng *rand.Rand

	mu     sync.Mutex
	nodes  []*Node
	byPeer map[string]*Node
	users  []*User
	grants []*Grant
	frags  map[policy.RecordID]fragRef
	sybils []*Node
	// sybilSet is sybils as poisoned answers need them.
	sybilSet atomic.Pointer[SybilSet]
	ips      int // honest machines' addresses handed out
	sips     int // the attacker's

	prefixes atomic.Int64
}

type fragRef struct {
	g *Grant
	i int
}

// Run builds the network, runs the phases and reports.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	s := &Sim{cfg: cfg, net: NewNet(cfg.Net), rng: rand.New(rand.NewPCG(cfg.Seed, 15)),
		byPeer: map[string]*Node{}, frags: map[policy.RecordID]fragRef{}}
	s.dir = cfg.Dir
	if s.dir == "" {
		d, err := os.MkdirTemp(shmDir(), "kadre-sim-")
		if err != nil {
			return nil, err
		}
		s.dir = d
		defer os.RemoveAll(d)
	}
	defer s.close()
	rep := &Report{Config: cfg, Started: time.Now()}
	cpu := cpuMeter()
	if err := s.build(ctx, cfg.Nodes); err != nil {
		return nil, err
	}
	rep.Build = s.buildReport(cpu())
	rep.Build.Duration = time.Since(rep.Started)
	cfg.Logf("built %d nodes in %s (routing tables %.1f peers on average)", cfg.Nodes, rep.Build.Duration.Round(time.Second), rep.Build.RoutingTable)
	if cfg.Background > 0 {
		cpu = cpuMeter()
		start := time.Now()
		bg, err := s.preload(ctx, cfg.Background)
		if err != nil {
			return nil, err
		}
		bg.Duration, bg.Cores = time.Since(start), cpu()
		rep.Background = bg
		cfg.Logf("preloaded %d background grants in %s", cfg.Background, bg.Duration.Round(time.Second))
	}
	if err := s.startUsers(ctx, cfg.Users); err != nil {
		return nil, err
	}
	if cfg.Idle > 0 {
		rep.Idle = s.idle(cfg.Idle)
		cfg.Logf("idle: %.1f requests served per node per minute", rep.Idle.ServedPerNodeMinute)
	}
	rep.MemoryStart = s.memory()
	for _, ph := range cfg.Phases {
		var prs []*PhaseReport
		var err error
		switch ph {
		case "steady":
			var pr *PhaseReport
			pr, err = s.steady(ctx)
			prs = append(prs, pr)
		case "churn":
			var pr *PhaseReport
			pr, err = s.churn(ctx)
			prs = append(prs, pr)
		case "faults":
			var pr *PhaseReport
			pr, err = s.faults(ctx)
			prs = append(prs, pr)
		case "sybil":
			prs, err = s.sybilStages(ctx)
		default:
			err = fmt.Errorf("sim: unknown phase %q", ph)
		}
		// A phase that fails keeps the stages it finished (the sybil
		// phase's); each logged its summary as it finished.
		rep.Phases = append(rep.Phases, prs...)
		if err != nil {
			return rep, err
		}
	}
	rep.MemoryEnd = s.memory()
	rep.Finished = time.Now()
	return rep, nil
}

func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (s *Sim) close() {
	for _, u := range s.users {
		u.C.Close()
	}
	var wg sync.WaitGroup
	for _, nd := range s.allNodes() {
		wg.Add(1)
		go func() { defer wg.Done(); nd.Stop() }()
	}
	wg.Wait()
	s.net.Close()
}

func (s *Sim) allNodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Node, 0, len(s.nodes))
	for _, nd := range s.nodes {
		if nd != nil {
			out = append(out, nd)
		}
	}
	return out
}

// alive lists the running nodes of a role (any role if r < 0).
func (s *Sim) alive(r Role) []*Node {
	var out []*Node
	for _, nd := range s.allNodes() {
		if nd.Alive() && (r < 0 || nd.Role() == r) {
			out = append(out, nd)
		}
	}
	return out
}

func (s *Sim) nodeByPeer(p string) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPeer[p]
}

func (s *Sim) track(g *Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants = append(s.grants, g)
	for i, id := range g.ids {
		s.frags[id] = fragRef{g, i}
	}
}

// moved records a hand-off: fragment id is now on to.
func (s *Sim) moved(id policy.RecordID, to peer.ID) {
	s.mu.Lock()
	ref, ok := s.frags[id]
	nd := s.byPeer[to.String()]
	s.mu.Unlock()
	if ok && nd != nil {
		ref.g.mu.Lock()
		ref.g.holders[ref.i] = nd
		ref.g.mu.Unlock()
	}
}

func (s *Sim) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

// bootstrapFor picks three running honest nodes.
func (s *Sim) bootstrapFor() []peer.AddrInfo {
	hs := s.alive(Honest)
	s.mu.Lock()
	s.rng.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	s.mu.Unlock()
	var out []peer.AddrInfo
	for _, nd := range hs[:min(3, len(hs))] {
		out = append(out, nd.E.AddrInfo())
	}
	return out
}

// startNode starts a node of role r with key (nil: a fresh one).
func (s *Sim) startNode(ctx context.Context, r Role, key *rekey.SecretKey) (*Node, error) {
	if key == nil {
		key = rekey.GenerateSecretKey()
	}
	s.mu.Lock()
	index := len(s.nodes)
	var ip []byte
	if r == Sybil {
		s.sips++
		if s.cfg.SybilNets > 0 {
			k := s.sips - 1
			ip = []byte{12, 0, byte(k % s.cfg.SybilNets), byte(1 + k/s.cfg.SybilNets)}
		} else {
			ip = ipFor(11, s.sips)
		}
	} else {
		s.ips++
		ip = ipFor(10, s.ips)
	}
	s.nodes = append(s.nodes, nil)
	s.mu.Unlock()
	boot := s.bootstrapFor()
	nd, err := StartNode(ctx, s.net, index, key, nodeDir(s.dir, index), NodeOptions{
		Role: r, IP: ip, Bootstrap: boot, Refresh: s.cfg.Refresh, Sybils: s.sybilInfos,
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.nodes[index] = nd
	s.byPeer[nd.E.ID.String()] = nd
	if r == Sybil {
		s.sybils = append(s.sybils, nd)
		s.sybilSet.Store(s.sybilSet.Load().With(nd.E.AddrInfo()))
	}
	s.mu.Unlock()
	return nd, nil
}

// sybilInfos is the attacker's nodes, read without a lock: every
// poisoned lookup answer asks.
func (s *Sim) sybilInfos() *SybilSet { return s.sybilSet.Load() }

// build starts n honest nodes: the first alone, then waves that bootstrap
// from nodes already running.
func (s *Sim) build(ctx context.Context, n int) error {
	if _, err := s.startNode(ctx, Honest, nil); err != nil {
		return err
	}
	wave := 4
	for started := 1; started < n; {
		k := min(wave, n-started)
		var wg sync.WaitGroup
		errs := make([]error, k)
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.startNode(ctx, Honest, nil)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		started += k
		wave = min(2*wave, 100)
		if started%100 < k {
			s.cfg.Logf("  %d nodes", started)
		}
	}
	return nil
}

func (s *Sim) startUsers(ctx context.Context, n int) error {
	var wg sync.WaitGroup
	users := make([]*User, n)
	errs := make([]error, n)
	for i := range n {
		var boot []string
		for _, ai := range s.bootstrapFor() {
			boot = append(boot, fmt.Sprintf("%s/p2p/%s", ai.Addrs[0], ai.ID))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			users[i], errs[i] = StartUser(ctx, s.net, i+1, filepath.Join(s.dir, fmt.Sprintf("user-%02d", i+1)), boot)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.users = users
	return nil
}

// pair picks an owner and another user as recipient.
func (s *Sim) pair() (*User, *User) {
	a := s.intn(len(s.users))
	b := s.intn(len(s.users) - 1)
	if b >= a {
		b++
	}
	return s.users[a], s.users[b]
}

func (s *Sim) prefix(kind string) policy.Path {
	return policy.MustNormalizePath(fmt.Sprintf("/%s/%d", kind, s.prefixes.Add(1)))
}

// run runs ops with the given concurrency, spreading their starts over
// at least spread.
func run(ctx context.Context, ops []func(), concurrency int, spread time.Duration) {
	work := make(chan func())
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range work {
				op()
			}
		}()
	}
	start := time.Now()
	for i, op := range ops {
		if spread > 0 {
			at := start.Add(time.Duration(float64(spread) * float64(i) / float64(len(ops))))
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case work <- op:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// grantOps makes k grant operations that record into pr.
func (s *Sim) grantOps(ctx context.Context, k int, pr *PhaseReport) []func() {
	ops := make([]func(), k)
	for i := range ops {
		ops[i] = func() {
			u, to := s.pair()
			_, smp := s.grant(ctx, u, to, s.prefix("g"))
			pr.add(smp)
		}
	}
	return ops
}

// decryptOps makes k decryptions of grants made so far, chosen at random,
// that record into pr with the ground truth of each.
func (s *Sim) decryptOps(ctx context.Context, k int, pr *PhaseReport) []func() {
	ops := make([]func(), k)
	for i := range ops {
		ops[i] = func() {
			s.mu.Lock()
			if len(s.grants) == 0 {
				s.mu.Unlock()
				return
			}
			g := s.grants[s.rng.IntN(len(s.grants))]
			s.mu.Unlock()
			serving := g.Serving()
			smp, _ := s.decrypt(ctx, g)
			pr.addDecrypt(smp, serving >= g.M)
		}
	}
	return ops
}

func (s *Sim) shuffle(ops []func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
}

// steady: grants, then decryptions, on a network where nothing happens.
func (s *Sim) steady(ctx context.Context) (*PhaseReport, error) {
	pr := newPhase("steady", s)
	cpu := cpuMeter()
	run(ctx, s.grantOps(ctx, s.cfg.Grants, pr), s.cfg.Concurrency, 0)
	run(ctx, s.decryptOps(ctx, s.cfg.Decrypts, pr), s.cfg.Concurrency, 0)
	pr.finish(cpu())
	return pr, nil
}

// churn: a third of the churning nodes crash, a third retire (hand off
// their fragments, then stop), a third join, at random times over the
// phase, while users keep granting and decrypting.
func (s *Sim) churn(ctx context.Context) (*PhaseReport, error) {
	pr := newPhase("churn", s)
	pr.Churn = &ChurnReport{}
	cpu := cpuMeter()
	if len(s.grants) == 0 {
		run(ctx, s.grantOps(ctx, s.cfg.Grants, newPhase("", s)), s.cfg.Concurrency, 0)
	}
	base := len(s.alive(Honest))
	events := int(math.Round(s.cfg.Churn * float64(base)))
	kinds := make([]string, events)
	for i := range kinds {
		kinds[i] = [...]string{"leave", "retire", "join"}[i%3]
	}
	s.mu.Lock()
	s.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	s.mu.Unlock()
	span := s.cfg.ChurnPhase
	var wg sync.WaitGroup
	var cmu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for i, kind := range kinds {
			at := start.Add(time.Duration(float64(span) * 0.8 * float64(i) / float64(max(1, len(kinds)))))
			time.Sleep(time.Until(at))
			if ctx.Err() != nil {
				return
			}
			switch kind {
			case "join":
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.startNode(ctx, Honest, nil); err == nil {
						cmu.Lock()
						pr.Churn.Joined++
						cmu.Unlock()
					}
				}()
			case "leave":
				if nd := s.victim(); nd != nil {
					s.leave(nd)
					cmu.Lock()
					pr.Churn.Left++
					cmu.Unlock()
				}
			case "retire":
				nd := s.victim()
				if nd == nil {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					held, _, _ := nd.Store.Counts()
					rctx, cancel := context.WithTimeout(ctx, s.cfg.RetireTimeout)
					rstart := time.Now()
					rep, err := nd.Svc.Retire(rctx)
					cancel()
					d := time.Since(rstart)
					if rep != nil {
						for _, mv := range rep.Moved {
							s.moved(mv.GrantID, mv.To)
						}
					}
					nd.Exit()
					cmu.Lock()
					defer cmu.Unlock()
					pr.Churn.Retired++
					pr.Churn.Held += int(held)
					if rep != nil {
						pr.Churn.Moved += len(rep.Moved)
						pr.Churn.Kept += len(rep.Kept)
					}
					if err != nil {
						pr.Churn.RetireTimeouts++
					}
					pr.Churn.RetireTime = append(pr.Churn.RetireTime, ms(d))
				}()
			}
		}
	}()
	ops := append(s.grantOps(ctx, s.cfg.Grants/2, pr), s.decryptOps(ctx, s.cfg.Decrypts, pr)...)
	s.shuffle(ops)
	run(ctx, ops, s.cfg.Concurrency, span)
	wg.Wait()
	pr.finish(cpu())
	return pr, nil
}

// leave stops a node without hand-off: it vanishes or exits (Vanish).
func (s *Sim) leave(nd *Node) {
	if s.cfg.Vanish {
		nd.Stop()
	} else {
		nd.Exit()
	}
}

// victim picks a running honest node that is not retiring, and marks it
// as leaving.
func (s *Sim) victim() *Node {
	hs := s.alive(Honest)
	if len(hs) <= 10 {
		return nil
	}
	for range 100 {
		nd := hs[s.intn(len(hs))]
		nd.mu.Lock()
		free := !nd.retiring
		nd.retiring = true
		nd.mu.Unlock()
		if free {
			return nd
		}
	}
	return nil
}

// faults: some nodes die without notice, some become slow, some start
// lying; then decryptions of the grants made before (whose holders
// include them) and new grants.
func (s *Sim) faults(ctx context.Context) (*PhaseReport, error) {
	pr := newPhase("faults", s)
	cpu := cpuMeter()
	if len(s.grants) == 0 {
		run(ctx, s.grantOps(ctx, s.cfg.Grants, newPhase("", s)), s.cfg.Concurrency, 0)
	}
	hs := s.alive(Honest)
	s.mu.Lock()
	s.rng.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	s.mu.Unlock()
	nDead := int(math.Round(s.cfg.Dead * float64(len(hs))))
	nSlow := int(math.Round(s.cfg.Slow * float64(len(hs))))
	nLiar := int(math.Round(s.cfg.Liars * float64(len(hs))))
	pr.Faults = &FaultReport{Dead: nDead, Slow: nSlow, Liars: nLiar, SlowDelay: s.cfg.SlowDelay}
	for i, nd := range hs {
		switch {
		case i < nDead:
			s.leave(nd)
		case i < nDead+nSlow:
			nd.E.SetSlow(s.cfg.SlowDelay)
		case i < nDead+nSlow+nLiar:
			nd.SetRole(Liar)
		}
	}
	ops := append(s.grantOps(ctx, s.cfg.Grants/2, pr), s.decryptOps(ctx, s.cfg.Decrypts, pr)...)
	s.shuffle(ops)
	run(ctx, ops, s.cfg.Concurrency, 0)
	pr.finish(cpu())
	return pr, nil
}

// locator is the old design's public point of a pair (SHA-256 of the two
// keys): what a grinding attacker aims at.
func locator(owner, recipient policy.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte("kadre/locator/v1\x00"))
	h.Write(owner[:])
	h.Write(recipient[:])
	return h.Sum(nil)
}

// publicPoints are the public values tied to grants from owner to
// recipient (dht/attack_test.go's): the old locator, and each user's peer
// ID and key.
func publicPoints(owner, recipient *User) [][]byte {
	return [][]byte{locator(owner.ID.IdentityKey, recipient.ID.IdentityKey),
		[]byte(owner.E.ID), owner.ID.IdentityKey[:], []byte(recipient.E.ID), recipient.ID.IdentityKey[:]}
}

// grind returns a key whose node is closer to point than every peer of
// others (the attacker's tool of dht/attack_test.go).
func grind(point []byte, others []peer.ID) *rekey.SecretKey {
	kp := sha256.Sum256(point)
	dist := func(p peer.ID) [32]byte {
		h := sha256.Sum256([]byte(p))
		for i := range h {
			h[i] ^= kp[i]
		}
		return h
	}
	less := func(a, b [32]byte) bool { return bytes.Compare(a[:], b[:]) < 0 }
	var far, zero [32]byte
	for i := range far {
		far[i] = 0xff
	}
	bound := far
	for _, p := range others {
		// A point that is a node's own DHT position cannot be beaten
		// there: the node itself is at distance 0.
		if d := dist(p); d != zero && less(d, bound) {
			bound = d
		}
	}
	// About len(others) tries are expected; the cap keeps a point no
	// identity can beat from stalling a run: the closest found is used.
	var best *rekey.SecretKey
	bestDist := far
	for range 1000 * (len(others) + 1) {
		sk := rekey.GenerateSecretKey()
		id, err := dht.PeerIDOf(policy.PublicKeyOf(sk.PublicKey()))
		if err != nil {
			continue
		}
		d := dist(id)
		if less(d, bound) {
			return sk
		}
		if less(d, bestDist) {
			best, bestDist = sk, d
		}
	}
	return best
}

// sybilStages adds the attacker's nodes stage by stage and measures, at
// each fraction f: the attacker's share of placement's samples, the
// capture rate over many placements against the formula, and grants and
// decryptions under attack. The attacker is user 1, the recipient of
// user 0's grants: a share Ground of his nodes are ground to be the nodes
// closest to the pair's public points (to capture the victim's grants, and
// to eclipse the pair), the others have random identities (to capture
// anyone's). Every sybil answers DHT lookups with sybils only.
func (s *Sim) sybilStages(ctx context.Context) ([]*PhaseReport, error) {
	var out []*PhaseReport
	honest := len(s.alive(Honest))
	victim, attacker := s.users[0], s.users[1]
	pts := publicPoints(victim, attacker)
	var ground int
	for _, f := range s.cfg.Sybils {
		pr := newPhase(fmt.Sprintf("sybil f=%.2f", f), s)
		cpu := cpuMeter()
		want := int(math.Ceil(f * float64(honest) / (1 - f)))
		s.mu.Lock()
		have := len(s.sybils)
		s.mu.Unlock()
		var ids []peer.ID
		for _, nd := range s.alive(-1) {
			ids = append(ids, nd.E.ID)
		}
		add := max(0, want-have)
		g := max(0, int(math.Round(s.cfg.Ground*float64(want)))-ground)
		keys := make([]*rekey.SecretKey, add)
		for i := range keys {
			if i < g {
				keys[i] = grind(pts[(ground+i)%len(pts)], ids)
			}
		}
		ground += min(g, add)
		pr.SybilsNotJoined = s.startSybils(ctx, keys)
		s.mu.Lock()
		nSybil := len(s.sybils)
		s.mu.Unlock()
		if nSybil == have && add > 0 {
			return out, fmt.Errorf("sim: none of %d sybils joined", add)
		}
		fNet := float64(nSybil) / float64(honest+nSybil)
		s.cfg.Logf("%s: %d sybils run (%d more could not join), %s", pr.Name, nSybil, pr.SybilsNotJoined, time.Since(pr.start).Round(time.Second))
		// The users' next commands start clients that meet the network as
		// it is now.
		if err := s.restartUsers(ctx); err != nil {
			return out, err
		}
		for _, who := range []string{"victim", "others"} {
			c := &CaptureReport{Who: who, F: fNet, Sybils: nSybil, Honest: honest, Ground: ground, M: 3, N: 5}
			pair := func() (*User, *User) {
				if who == "victim" {
					return victim, attacker
				}
				for {
					if u, to := s.pair(); u != victim && u != attacker {
						return u, to
					}
				}
			}
			s.measureCapture(ctx, c, pair)
			pr.Captures = append(pr.Captures, c)
			s.cfg.Logf("%s: capture (%s) %d/%d, %s", pr.Name, who, c.Captured, c.Trials, time.Since(pr.start).Round(time.Second))
		}
		// Operations under attack.
		ops := append(s.grantOps(ctx, s.cfg.Grants/len(s.cfg.Sybils), pr), s.decryptOps(ctx, s.cfg.Decrypts/len(s.cfg.Sybils), pr)...)
		s.shuffle(ops)
		run(ctx, ops, s.cfg.Concurrency, 0)
		pr.finish(cpu())
		out = append(out, pr)
	}
	return out, nil
}

// startSybils starts a sybil with each key (nil: a fresh identity), 25 at
// a time, and returns how many did not join. A sybil with a fresh
// identity that meets only busy bootstrap peers tries again, twice, with
// another identity and other peers (a ground identity is not reused once
// its machine was torn down); one that still fails is the attacker's loss,
// not the simulation's.
func (s *Sim) startSybils(ctx context.Context, keys []*rekey.SecretKey) int {
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 25)
	for _, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for range 3 {
				if _, err = s.startNode(ctx, Sybil, key); err == nil || ctx.Err() != nil || key != nil {
					break
				}
			}
			if err != nil {
				failed.Add(1)
				s.cfg.Logf("sybil not joined: %v", err)
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// restartUsers restarts every user's client (User.Restart).
func (s *Sim) restartUsers(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.users))
	for i, u := range s.users {
		var boot []string
		for _, ai := range s.bootstrapFor() {
			boot = append(boot, fmt.Sprintf("%s/p2p/%s", ai.Addrs[0], ai.ID))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.Restart(ctx, s.net, boot)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// measureCapture measures the attacker's share of the samples the owners
// of pair() draw placements from, and the rate at which placements by
// them give m or more fragments to the attacker. The samples are taken
// among the placements (before every k-th), as the attacker's nodes
// enter routing tables over time.
func (s *Sim) measureCapture(ctx context.Context, c *CaptureReport, pair func() (*User, *User)) {
	var mu sync.Mutex
	var sampled, sybilSampled, samples int
	sample := func(u *User) {
		h, err := u.C.Host(ctx)
		if err != nil {
			return
		}
		ps, err := h.Sample(ctx, 0, nil)
		if err != nil {
			return
		}
		k := 0
		for _, p := range ps {
			if nd := s.nodeByPeer(p.String()); nd != nil && nd.Role() == Sybil {
				k++
			}
		}
		mu.Lock()
		sampled += len(ps)
		sybilSampled += k
		samples++
		mu.Unlock()
	}
	hist := make([]int, 6)
	var sizes []float64
	trials := s.cfg.CaptureTrials / 2
	every := max(1, trials/max(1, s.cfg.SampleTrials))
	cops := make([]func(), trials)
	for i := range cops {
		cops[i] = func() {
			u, to := pair()
			if i%every == 0 {
				sample(u)
			}
			holders, n, _ := s.placeOnly(ctx, u, to, s.prefix("cap"))
			mu.Lock()
			defer mu.Unlock()
			if len(holders) < 5 {
				c.Failed++
				return
			}
			k := 0
			for _, h := range holders {
				if h != nil && h.Role() == Sybil {
					k++
				}
			}
			hist[k]++
			c.Trials++
			sizes = append(sizes, float64(n))
		}
	}
	run(ctx, cops, 4*s.cfg.Concurrency, 0)
	if sampled > 0 {
		c.FSampled = float64(sybilSampled) / float64(sampled)
		c.SampleSize = float64(sampled) / float64(samples)
	}
	c.Histogram = hist
	for k := c.M; k <= c.N; k++ {
		c.Captured += hist[k]
	}
	c.SampledPerPlacement = distOf(sizes).Mean
	c.finish()
}

// idle measures the requests nodes serve while no one operates: the
// routing-table refreshes.
func (s *Sim) idle(d time.Duration) *IdleReport {
	nodes := s.alive(-1)
	before := make([]CounterSnapshot, len(nodes))
	for i, nd := range nodes {
		before[i] = nd.E.Stats.Snapshot()
	}
	cpu := cpuMeter()
	time.Sleep(d)
	cores := cpu()
	var served, bytes, reqs int64
	for i, nd := range nodes {
		c := nd.E.Stats.Snapshot().Sub(before[i])
		served += c.Served
		bytes += c.ServedBytes + c.BytesOut
		reqs += c.Requests
	}
	per := float64(len(nodes)) * d.Minutes()
	return &IdleReport{Duration: d, ServedPerNodeMinute: float64(served) / per, RequestsPerNodeMinute: float64(reqs) / per,
		BytesPerNodeMinute: float64(bytes) / per, Cores: cores}
}

func (s *Sim) buildReport(cores float64) *BuildReport {
	nodes := s.alive(-1)
	rt := 0
	for _, nd := range nodes {
		rt += nd.Host.RoutingTableSize()
	}
	return &BuildReport{Nodes: len(nodes), RoutingTable: float64(rt) / float64(len(nodes)), Cores: cores}
}

// memory measures the process and the stores, per running node.
func (s *Sim) memory() *MemoryReport {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	nodes := s.alive(-1)
	var disk int64
	filepath.Walk(s.dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				disk += st.Blocks * 512
			} else {
				disk += fi.Size()
			}
		}
		return nil
	})
	n := float64(max(1, len(nodes)))
	rt, conns := 0, 0
	for _, nd := range nodes {
		rt += nd.Host.RoutingTableSize()
		conns += nd.Host.ConnectedPeers()
	}
	grants := 0
	for _, nd := range nodes {
		if g, _, err := nd.Store.Counts(); err == nil {
			grants += int(g)
		}
	}
	return &MemoryReport{Nodes: len(nodes), Users: len(s.users),
		HeapPerNode: float64(m.HeapInuse) / n, StackPerNode: float64(m.StackInuse) / n, SysPerNode: float64(m.Sys) / n, RSSPerNode: rss() / n,
		GoroutinesPerNode: float64(runtime.NumGoroutine()) / n, StorePerNode: float64(disk) / n,
		RoutingTable: float64(rt) / n, Connections: float64(conns) / n, FragmentsPerNode: float64(grants) / n}
}

// cpuMeter starts measuring the process's CPU time; the function it
// returns gives the cores used on average since.
func cpuMeter() func() float64 {
	t0, w0 := cpuTime(), time.Now()
	return func() float64 {
		return (cpuTime() - t0).Seconds() / time.Since(w0).Seconds()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var _ = sort.Ints

// rss is the process's resident memory in bytes (VmRSS), 0 if unknown.
func rss() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kib float64
			fmt.Sscan(strings.TrimPrefix(line, "VmRSS:"), &kib)
			return kib * 1024
		}
	}
	return 0
}
