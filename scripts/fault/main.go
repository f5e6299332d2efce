// Command fault is kadre's crash test (issue 7): a workload of grants
// (3-of-5) and decryptions on a testnet of real `kadre run` processes on
// 127.0.0.1 while random nodes are killed with SIGKILL and restarted from
// their data directories on the same ports. It then checks that every
// acknowledged fragment (a node-signed receipt reached the owner) is still
// held: first over the network (the holder re-encrypts for the recipient
// with exactly that fragment), then in the stores themselves after the
// nodes stopped.
//
//	go run ./scripts/fault                 # 1000 grants, 10 nodes, ≤ 2 down at once
//	go run ./scripts/fault -grants 50      # smoke run
//	go run ./scripts/fault -max-down 4     # more than n−m down: measure what happens
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/testnet"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/store"
)

type options struct {
	bin        string
	grants     int
	nodes      int
	workers    int
	owners     int
	recipients int
	killEvery  time.Duration
	downMin    time.Duration
	downMax    time.Duration
	maxDown    int
	retries    int
	keep       bool
	timeout    time.Duration
	seed       uint64
}

const m, n = 3, 5

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "kadre binary (default: build ./cmd/node)")
	flag.IntVar(&o.grants, "grants", 1000, "grants placed (3-of-5) and decrypted")
	flag.IntVar(&o.nodes, "nodes", 10, "node processes")
	flag.IntVar(&o.workers, "workers", 4, "grants in progress at once")
	flag.IntVar(&o.owners, "owners", 10, "owners (grants rotate over owners × recipients)")
	flag.IntVar(&o.recipients, "recipients", 20, "recipients, each with its own client host")
	flag.DurationVar(&o.killEvery, "kill-every", time.Second, "mean time between kills")
	flag.DurationVar(&o.downMin, "down-min", time.Second, "shortest time a killed node stays down")
	flag.DurationVar(&o.downMax, "down-max", 3*time.Second, "longest time a killed node stays down")
	flag.IntVar(&o.maxDown, "max-down", n-m, "nodes down at once at most (n−m = 2 keeps every grant decryptable)")
	flag.IntVar(&o.retries, "retries", 2, "decryption retries (1 s apart) after a failed first attempt")
	flag.BoolVar(&o.keep, "keep", false, "keep data directories and logs")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the kill schedule (0: random)")
	flag.Parse()
	if o.grants < 1 || o.grants > 100_000 || o.nodes < n || o.nodes > 50 || o.workers < 1 || o.workers > 64 ||
		o.maxDown < 0 || o.maxDown >= o.nodes || o.owners < 1 || o.recipients < 1 || o.downMax < o.downMin {
		fmt.Fprintln(os.Stderr, "fault: flags out of range")
		os.Exit(2)
	}
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ok, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

type recip struct {
	c  *client.Client
	id policy.Identity
}

type grantRec struct {
	owner    *client.Client
	r        *recip
	prefix   policy.Path
	pathHash policy.PathHash
	holders  []peer.ID         // per fragment; "" if no receipt
	ids      []policy.RecordID // per fragment: the acknowledged grant ID
	placeErr error
	file     []byte // a kadre file under the prefix
	// first attempt, then after retries
	firstErr, finalErr error
	attempts           int
	outcomes           map[string]int // per-node outcomes of the failed first attempt
}

func (g *grantRec) acked() int {
	k := 0
	for _, h := range g.holders {
		if h != "" {
			k++
		}
	}
	return k
}

// chaos kills and restarts nodes.
type chaos struct {
	o       options
	c       *testnet.Cluster
	rng     *rand.Rand
	mu      sync.Mutex
	down    map[int]bool // killed, not yet back
	kills   int
	starts  int
	failed  []string
	maxSeen int
	wg      sync.WaitGroup
	events  []string
}

func (ch *chaos) run(ctx context.Context, stop <-chan struct{}) {
	for k := 0; k < 1_000_000; k++ {
		wait := time.Duration(float64(ch.o.killEvery) * (0.5 + ch.rng.Float64()))
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		ch.mu.Lock()
		if len(ch.down) >= ch.o.maxDown {
			ch.mu.Unlock()
			continue
		}
		var up []int
		for i := range ch.c.Nodes {
			if !ch.down[i] {
				up = append(up, i)
			}
		}
		i := up[ch.rng.IntN(len(up))]
		ch.down[i] = true
		ch.maxSeen = max(ch.maxSeen, len(ch.down))
		downFor := ch.o.downMin + time.Duration(ch.rng.Int64N(int64(ch.o.downMax-ch.o.downMin)+1))
		ch.mu.Unlock()
		node := ch.c.Nodes[i]
		if err := node.Kill(); err != nil {
			ch.note("kill %s: %v", node.Name, err)
		}
		ch.mu.Lock()
		ch.kills++
		ch.mu.Unlock()
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			time.Sleep(downFor)
			err := node.Start()
			ch.mu.Lock()
			defer ch.mu.Unlock()
			if err != nil {
				ch.failed = append(ch.failed, fmt.Sprintf("%s: %v", node.Name, err))
				// Try once more; a node that cannot restart stays counted as down.
				if err := node.Start(); err != nil {
					return
				}
			}
			ch.starts++
			delete(ch.down, i)
		}()
	}
}

func (ch *chaos) note(format string, args ...any) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.events = append(ch.events, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) (bool, error) {
	dir, err := os.MkdirTemp("", "kadre-fault")
	if err != nil {
		return false, err
	}
	if o.keep {
		fmt.Println("data and logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		if o.bin, err = testnet.BuildKadre(dir); err != nil {
			return false, err
		}
	}
	la, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("date %s, loadavg %s", time.Now().UTC().Format(time.RFC3339), la)
	fmt.Printf("fault: %d grants %d-of-%d, %d nodes, %d workers, kill -9 every ~%s, down %s..%s, at most %d down at once, seed %d\n",
		o.grants, m, n, o.nodes, o.workers, o.killEvery, o.downMin, o.downMax, o.maxDown, o.seed)
	c, err := testnet.StartCluster(testnet.ClusterOptions{Bin: o.bin, Dir: filepath.Join(dir, "nodes"), Size: o.nodes, Metrics: true})
	if err != nil {
		return false, err
	}
	defer c.Stop()
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		return false, err
	}
	var boot []string
	for _, n := range c.Seeds(3) {
		boot = append(boot, n.P2PAddr())
	}
	user := func(name string) (*client.Client, error) {
		home := filepath.Join(dir, "users", name)
		if _, err := client.CreateIdentity(home, nil, false); err != nil {
			return nil, err
		}
		u, err := client.Open(client.Options{Home: home, Bootstrap: boot,
			Placement: dht.PlaceOptions{PerNodeTimeout: 3 * time.Second}})
		if err != nil {
			return nil, err
		}
		_, err = u.Host(ctx)
		return u, err
	}
	owners := make([]*client.Client, o.owners)
	for i := range owners {
		if owners[i], err = user(fmt.Sprint("owner", i)); err != nil {
			return false, err
		}
		defer owners[i].Close()
	}
	rs := make([]*recip, o.recipients)
	for i := range rs {
		u, err := user(fmt.Sprint("recipient", i))
		if err != nil {
			return false, err
		}
		defer u.Close()
		rs[i] = &recip{c: u, id: u.Identity()}
	}

	ch := &chaos{o: o, c: c, rng: rand.New(rand.NewPCG(o.seed, 1)), down: map[int]bool{}}
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() { ch.run(ctx, stopChaos); close(chaosDone) }()

	recs := make([]*grantRec, o.grants)
	var next atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.grants {
					return
				}
				recs[i] = workload(ctx, o, c, i, owners[i%len(owners)], rs[(i/len(owners))%len(rs)])
				if d := done.Add(1); d%100 == 0 {
					ch.mu.Lock()
					fmt.Printf("  %d grants done in %s, %d kills so far\n", d, time.Since(start).Round(time.Second), ch.kills)
					ch.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	workDur := time.Since(start)
	close(stopChaos)
	<-chaosDone
	ch.wg.Wait()
	// Every node up again.
	for i, node := range c.Nodes {
		if !node.Alive() {
			if err := node.Start(); err != nil {
				return false, fmt.Errorf("final restart of node %d: %w", i, err)
			}
		}
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	time.Sleep(2 * time.Second)

	// Workload figures.
	var placedFull, placedPartial, placedNone, ackedFrags int
	var firstOK, finalOK, decryptable int
	failReasons := map[string]int{}
	placeReasons := map[string]int{}
	for _, g := range recs {
		if g == nil {
			continue
		}
		a := g.acked()
		ackedFrags += a
		switch {
		case a == n:
			placedFull++
		case a > 0:
			placedPartial++
		default:
			placedNone++
		}
		if g.placeErr != nil {
			placeReasons[short(g.placeErr)]++
		}
		if a >= m {
			decryptable++
			if g.firstErr == nil {
				firstOK++
			} else {
				failReasons[short(g.firstErr)+" | "+testnet.Summarize(g.outcomes)]++
			}
			if g.finalErr == nil {
				finalOK++
			}
		}
	}
	fmt.Printf("\nworkload: %d grants in %s; %d kills, %d restarts, at most %d nodes down at once, restart failures %d\n",
		o.grants, workDur.Round(time.Millisecond), ch.kills, ch.starts, ch.maxSeen, len(ch.failed))
	for _, f := range ch.failed {
		fmt.Println("  restart failure:", f)
	}
	fmt.Printf("placement: %d grants with all %d fragments acknowledged, %d partly (%d..%d), %d with none; %d fragments acknowledged\n",
		placedFull, n, placedPartial, 1, n-1, placedNone, ackedFrags)
	printCounts("placement errors", placeReasons)
	fmt.Printf("decryption during the faults (grants with ≥ %d acknowledged fragments): %d of %d on the first attempt (%.2f %%), %d of %d with up to %d retries (%.2f %%)\n",
		m, firstOK, decryptable, pct(firstOK, decryptable), finalOK, decryptable, o.retries, pct(finalOK, decryptable))
	printCounts("first-attempt failures (error | per-node outcomes)", failReasons)

	// Verification 1: every acknowledged fragment, asked of its holder by
	// a fresh client host of its recipient: the workload's hosts carry
	// libp2p dial backoffs from the faults (see the placement errors),
	// which say nothing about the fragments.
	hosts := map[*recip]*dht.Host{}
	for _, r := range rs {
		h, err := testnet.NewClient(ctx, r.c.Keyring().Identity(), c.Bootstrap(3))
		if err != nil {
			return false, fmt.Errorf("fresh recipient host: %w", err)
		}
		defer h.Close()
		hosts[r] = h
	}
	var netOK, netLost, netUnreachable int
	lostWhy := map[string]int{}
	var vmu sync.Mutex
	type job struct {
		g *grantRec
		j int
	}
	jobs := make(chan job)
	var vwg sync.WaitGroup
	for range 8 {
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			for jb := range jobs {
				g, j := jb.g, jb.j
				ownerK := g.owner.Identity().IdentityKey
				var err error
				var cf *dht.CFrag
				level, lerr := g.level()
				for try := 0; try < 3 && lerr == nil; try++ {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					cf, err = hosts[g.r].Reencrypt(cctx, g.holders[j], ownerK, g.r.id, []dht.Level{level})
					cancel()
					if err == nil || isRefusal(err) {
						break
					}
					time.Sleep(time.Second)
				}
				if lerr != nil {
					err = lerr
				}
				vmu.Lock()
				switch {
				case err == nil && cf.Grant.ID() == g.ids[j]:
					netOK++
				case err == nil:
					netLost++
					lostWhy["holder answered with another fragment"]++
				case isRefusal(err):
					netLost++
					lostWhy[short(err)]++
				default:
					netUnreachable++
					lostWhy["unreachable: "+short(err)]++
				}
				vmu.Unlock()
			}
		}()
	}
	for _, g := range recs {
		if g == nil {
			continue
		}
		for j, h := range g.holders {
			if h != "" {
				jobs <- job{g, j}
			}
		}
	}
	close(jobs)
	vwg.Wait()
	fmt.Printf("\nverification over the network: %d acknowledged fragments; %d served by their holder with exactly that kfrag, %d lost (refused or another fragment), %d holders unreachable after 3 tries\n",
		ackedFrags, netOK, netLost, netUnreachable)
	printCounts("not served", lostWhy)

	// Verification 2: the stores themselves, after a graceful stop.
	if err := c.Stop(); err != nil {
		fmt.Println("stopping the nodes:", err)
	}
	byNode := map[peer.ID][]struct {
		g *grantRec
		j int
	}{}
	for _, g := range recs {
		if g == nil {
			continue
		}
		for j, h := range g.holders {
			if h != "" {
				byNode[h] = append(byNode[h], struct {
					g *grantRec
					j int
				}{g, j})
			}
		}
	}
	var stOK, stMissing int
	stWhy := map[string]int{}
	for id, items := range byNode {
		node := c.ByID(id)
		if node == nil {
			stMissing += len(items)
			stWhy["holder is not a testnet node"] += len(items)
			continue
		}
		st, err := store.Open(filepath.Join(node.Dir, "store"), store.Options{})
		if err != nil {
			return false, fmt.Errorf("open the store of %s: %w", node.Name, err)
		}
		for _, it := range items {
			g := it.g
			rec, err := st.Grant(policy.NewStorageKey(g.owner.Identity().IdentityKey, g.r.id.IdentityKey, g.pathHash))
			var got *policy.Grant
			if err == nil {
				got, err = policy.ParseGrant(rec)
			}
			switch {
			case err != nil:
				stMissing++
				stWhy[short(err)]++
			case got.ID() != g.ids[it.j]:
				stMissing++
				stWhy["another fragment stored"]++
			default:
				stOK++
			}
		}
		st.Close()
	}
	fmt.Printf("verification in the stores (nodes stopped): %d of %d acknowledged fragments present with the acknowledged grant ID, %d missing\n",
		stOK, ackedFrags, stMissing)
	printCounts("missing", stWhy)

	lost := max(netLost, stMissing)
	goal := "goal 100 %"
	if o.maxDown > n-m {
		goal = fmt.Sprintf("no goal: up to %d > n−m nodes down", o.maxDown)
	}
	fmt.Printf("\nRESULT: acknowledged fragments lost: %d (goal 0); decryption with at most %d nodes down at once: %.2f %% first attempt, %.2f %% with retries (%s)\n",
		lost, o.maxDown, pct(firstOK, decryptable), pct(finalOK, decryptable), goal)
	return lost == 0 && netUnreachable == 0 && (o.maxDown > n-m || finalOK == decryptable), nil
}

// level is the request level of the grant in its file: the path hash
// and the capsule of the granted prefix's level.
func (g *grantRec) level() (dht.Level, error) {
	h, err := kfile.ReadHeader(bytes.NewReader(g.file))
	if err != nil {
		return dht.Level{}, err
	}
	capsule, _, err := h.Level(len(g.prefix.Prefixes()) - 1)
	return dht.Level{PathHash: g.pathHash, Capsule: capsule}, err
}

// workload places one grant and decrypts a file under it as the recipient.
func workload(ctx context.Context, o options, c *testnet.Cluster, i int, owner *client.Client, r *recip) *grantRec {
	g := &grantRec{owner: owner, r: r, prefix: policy.MustNormalizePath(fmt.Sprintf("/fault/g%d", i)),
		holders: make([]peer.ID, n), ids: make([]policy.RecordID, n)}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := owner.Grant(pctx, client.GrantRequest{To: r.id, Prefix: g.prefix, M: m, N: n, Expires: time.Now().Add(24 * time.Hour)})
	cancel()
	if errors.Is(err, dht.ErrPlacement) {
		if h, herr := owner.Host(ctx); herr == nil {
			err = fmt.Errorf("%w [%s]", err, view(c, h))
		}
	}
	g.placeErr = err
	if res != nil && res.Record != nil {
		ph, _ := hex.DecodeString(res.Record.PathHash)
		g.pathHash = policy.PathHash(ph)
		for _, h := range res.Record.Holders {
			id, perr := peer.Decode(h.Peer)
			gid, herr := hex.DecodeString(h.GrantID)
			if perr == nil && herr == nil && len(gid) == 32 {
				g.holders[h.Fragment], g.ids[h.Fragment] = id, policy.RecordID(gid)
			}
		}
	}
	var f bytes.Buffer
	if err := owner.Encrypt(&f, strings.NewReader("fault"), policy.MustNormalizePath(g.prefix.String()+"/file.txt")); err != nil {
		g.firstErr, g.finalErr = err, err
		return g
	}
	g.file = f.Bytes()
	for try := 0; try <= o.retries; try++ {
		if try > 0 {
			time.Sleep(time.Second)
		}
		g.attempts++
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		fk, err := r.c.DecryptKey(cctx, bytes.NewReader(g.file), client.DecryptOptions{})
		cancel()
		if try == 0 {
			g.firstErr = err
			if err != nil && fk != nil {
				g.outcomes = map[string]int{}
				for _, e := range fk.Nodes {
					g.outcomes[string(dht.Classify(e))]++
				}
			}
		}
		g.finalErr = err
		if err == nil {
			break
		}
	}
	return g
}

// view says how the client sees the testnet: nodes running, connected to
// the client, in the client's dial backoff, in its routing table.
func view(c *testnet.Cluster, h *dht.Host) string {
	var alive, connected, backoff, inRT int
	rt := map[peer.ID]bool{}
	for _, p := range h.RoutingTablePeers() {
		rt[p] = true
	}
	sw, _ := h.Libp2p().Network().(*swarm.Swarm)
	for _, node := range c.Nodes {
		if node.Alive() {
			alive++
		}
		if h.Libp2p().Network().Connectedness(node.ID) == network.Connected {
			connected++
		}
		if sw != nil && sw.Backoff().Backoff(node.ID, node.AddrInfo().Addrs[0]) {
			backoff++
		}
		if rt[node.ID] {
			inRT++
		}
	}
	return fmt.Sprintf("nodes running %d, connected to the client %d, in its dial backoff %d, in its routing table %d", alive, connected, backoff, inRT)
}

func isRefusal(err error) bool {
	var re *proto.RemoteError
	return errors.As(err, &re) || errors.Is(err, dht.ErrBadProof)
}

func short(err error) string {
	s := err.Error()
	if len(s) > 220 {
		s = s[:220] + "…"
	}
	return s
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

func printCounts(title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	fmt.Printf("  %s:\n", title)
	for i, k := range keys {
		if i == 10 {
			fmt.Printf("    … %d more kinds\n", len(keys)-10)
			break
		}
		fmt.Printf("    %5d  %s\n", m[k], k)
	}
}
