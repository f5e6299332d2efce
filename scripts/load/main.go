// Command load is kadre's load generator (issue 5) and sustained-load
// check (issue 7). Everything runs against real `kadre run` processes on
// 127.0.0.1.
//
//	go run ./scripts/load -mode rpc       # one node, C clients, re-encrypt RPCs
//	go run ./scripts/load -mode testnet   # 20 nodes: grant (3-of-5), lookup, collect latency
//	go run ./scripts/load -mode rpc -duration 5m -rss-interval 5s   # sustained
//
// The rpc mode first measures the crypto-only ceiling in this process
// (rekey.Reencrypt, with and without rekey.ParseCapsule, and the handler's
// whole cryptographic path without I/O) with GOMAXPROCS workers for the
// same duration, then drives the node with C client hosts, each the
// recipient of its own 1-of-1 grant stored on the node, and reports req/s,
// p50/p99 and errors next to the ceiling.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/testnet"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

type options struct {
	mode          string
	bin           string
	clients       int
	inflight      int
	duration      time.Duration
	cryptoDur     time.Duration
	warmup        time.Duration
	peerRate      float64
	rssInterval   time.Duration
	nodes         int
	samples       int
	keep          bool
	rate          float64
	profile       string
	rounds        int
	target        string
	targetPID     int
	targetMetrics string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "rpc", "rpc (one node, re-encrypt load), testnet (grant/lookup latency on -nodes nodes) or all")
	flag.StringVar(&o.bin, "bin", "", "kadre binary (default: build ./cmd/node)")
	flag.IntVar(&o.clients, "clients", 32, "client hosts, each the recipient of its own grant (rpc)")
	flag.IntVar(&o.inflight, "inflight", 1, "requests in flight per client (rpc)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured load duration (rpc)")
	flag.DurationVar(&o.cryptoDur, "crypto-duration", 0, "duration of each crypto-only variant (default: -duration, at most 10s)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before the measurement (rpc)")
	flag.Float64Var(&o.peerRate, "peer-rate", 1e6, "the node's -peer-rate for the load run (kadre's default is 200/s, burst 400)")
	flag.DurationVar(&o.rssInterval, "rss-interval", 0, "sample the node's RSS, goroutines and heap this often during the load (0: every duration/10, at least 1s)")
	flag.IntVar(&o.nodes, "nodes", 20, "testnet size (testnet)")
	flag.IntVar(&o.samples, "samples", 200, "grants placed and lookups made (testnet)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories and logs")
	flag.StringVar(&o.target, "target", "", "multiaddr (with /p2p/) of a running node to load instead of starting one (rpc)")
	flag.IntVar(&o.targetPID, "target-pid", 0, "process id of -target, for its CPU and RSS")
	flag.StringVar(&o.targetMetrics, "target-metrics", "", "host:port of -target's metrics endpoint, for its heap and goroutines")
	flag.IntVar(&o.rounds, "rounds", 5, "alternate crypto-only and load slices this many times (rpc)")
	flag.StringVar(&o.profile, "profile", "", "run the node in this process instead and write a CPU profile of the measured window here (rpc)")
	flag.Float64Var(&o.rate, "rate", 0, "total requests per second to aim at (0: as fast as the clients get answers)")
	flag.Parse()
	if o.cryptoDur == 0 {
		o.cryptoDur = min(o.duration, 10*time.Second)
	}
	if o.rssInterval == 0 {
		o.rssInterval = max(time.Second, o.duration/10)
	}
	if o.clients < 1 || o.inflight < 1 || o.duration <= 0 || o.duration > time.Hour || o.samples < 1 || o.samples > 100_000 || o.nodes < 5 || o.nodes > 100 || o.rounds < 1 || o.rounds > 1000 {
		fmt.Fprintln(os.Stderr, "load: flags out of range (clients, inflight ≥ 1; duration ≤ 1h; 5 ≤ nodes ≤ 100; 1 ≤ samples ≤ 100000)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.duration+o.warmup+3*o.cryptoDur+20*time.Minute)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "kadre-load")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("data and logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		if o.bin, err = testnet.BuildKadre(dir); err != nil {
			return err
		}
	}
	la, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("date %s, GOMAXPROCS %d, NumCPU %d, loadavg %s", time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), runtime.NumCPU(), la)
	switch o.mode {
	case "rpc":
		return rpcLoad(ctx, o, dir)
	case "testnet":
		return testnetLoad(ctx, o, dir)
	case "all":
		if err := rpcLoad(ctx, o, filepath.Join(dir, "rpc")); err != nil {
			return err
		}
		return testnetLoad(ctx, o, filepath.Join(dir, "testnet"))
	}
	return fmt.Errorf("unknown -mode %q", o.mode)
}

// cryptoOnly runs fn on GOMAXPROCS goroutines for d and returns the ops
// done, the CPU time they took (this process's user+system time) and the
// wall time.
func cryptoOnly(d time.Duration, fn func() error) (int64, time.Duration, time.Duration, error) {
	cpu0 := testnet.SelfCPUTime()
	var ops atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100_000_000; n++ {
				if n%16 == 0 && time.Now().After(stop) {
					return
				}
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	return ops.Load(), testnet.SelfCPUTime() - cpu0, time.Since(start), nil
}

type recipient struct {
	keys  *rekey.Keyring
	id    policy.Identity
	grant *policy.Grant
	file  *testnet.File
	host  host.Host
}

func rpcLoad(ctx context.Context, o options, dir string) error {
	node, err := startTarget(ctx, o, dir)
	if err != nil {
		return err
	}
	defer node.stop()

	owner := testnet.NewKeyring()
	ownerK := policy.IdentityOf(owner).IdentityKey
	oh, err := testnet.NewClient(ctx, owner.Identity(), []peer.AddrInfo{node.AddrInfo()})
	if err != nil {
		return err
	}
	defer oh.Close()
	rs := make([]*recipient, o.clients)
	for i := range rs {
		r := &recipient{keys: testnet.NewKeyring()}
		r.id = policy.IdentityOf(r.keys)
		gs, err := testnet.Grants(owner, r.id, "/docs", 1, 1, 1, 24*time.Hour)
		if err != nil {
			return err
		}
		r.grant = gs[0]
		if _, err := oh.StoreGrant(ctx, node.ID, r.grant); err != nil {
			return fmt.Errorf("store grant %d: %w", i, err)
		}
		if r.file, err = testnet.EncryptFor(owner, r.id.IdentityKey, "/docs/q3/report.txt"); err != nil {
			return err
		}
		if r.host, err = testnet.NewRawHost(ctx, r.keys.Identity(), node.AddrInfo()); err != nil {
			return err
		}
		defer r.host.Close()
		rs[i] = r
	}
	// One verified round trip and decryption: the load is the real thing.
	vh, err := testnet.NewClient(ctx, rs[0].keys.Identity(), []peer.AddrInfo{node.AddrInfo()})
	if err != nil {
		return err
	}
	cf, err := vh.Reencrypt(ctx, node.ID, ownerK, rs[0].id, rs[0].file.Levels)
	vh.Close()
	if err != nil {
		return fmt.Errorf("verified re-encryption: %w", err)
	}
	col := &dht.Collection{CFrags: []*dht.CFrag{cf}}
	key, err := col.Decrypt(rs[0].keys.Receiving(), rs[0].file.Levels[cf.Level].Capsule, rs[0].file.Wrapped[cf.Level])
	if err != nil || !bytes.Equal(key, rs[0].file.DataKey) {
		return fmt.Errorf("decryption of the served cfrag failed: %v", err)
	}
	fmt.Printf("setup: %d recipients with a 1-of-1 grant of /docs on the node; requests carry 4 levels, the node serves level %d; one cfrag verified and decrypted\n", len(rs), cf.Level)

	// Crypto-only ceiling, same process, same cores, node idle: three
	// variants, measured in slices between the load's slices.
	vkf, err := policy.VerifyGrantKFrag(rs[0].grant)
	if err != nil {
		return err
	}
	capsule := rs[0].file.Levels[cf.Level].Capsule
	capBytes := capsule.Bytes()
	record := rs[0].grant.Bytes()
	remote := rs[0].id.IdentityKey[:]
	ph := rs[0].file.Levels[cf.Level].PathHash
	type variant struct {
		name string
		fn   func() error
	}
	variants := []variant{
		{"rekey.Reencrypt", func() error { _, err := rekey.Reencrypt(capsule, vkf); return err }},
		{"rekey.ParseCapsule + rekey.Reencrypt", func() error {
			c, err := rekey.ParseCapsule(capBytes)
			if err != nil {
				return err
			}
			_, err = rekey.Reencrypt(c, vkf)
			return err
		}},
		{"handler crypto, no I/O (ParseGrant + CheckServable + ParseCapsule + Reencrypt + encode)", func() error {
			g, err := policy.ParseGrant(record)
			if err != nil {
				return err
			}
			if err := policy.CheckServable(g, ownerK, ph, remote, time.Now()); err != nil {
				return err
			}
			c, err := rekey.ParseCapsule(capBytes)
			if err != nil {
				return err
			}
			cf, err := rekey.Reencrypt(c, vkf)
			if err != nil {
				return err
			}
			_ = cf.Bytes()
			_ = g.PublicBytes()
			return nil
		}},
	}
	// The load: crypto-only slices of every variant and load slices
	// alternate (-rounds), so that whatever else the machine runs weighs on
	// both alike. The clients pause during the crypto-only slices.
	reqs := make([]*proto.Envelope, len(rs))
	for i, r := range rs {
		reqs[i] = testnet.ReencryptRequest(ownerK, r.file.Levels)
	}
	var measuring, paused, stopping atomic.Bool
	paused.Store(true)
	type result struct {
		lat      testnet.Lat
		outcomes map[string]int
		sample   string
	}
	results := make([]*result, len(rs)*o.inflight)
	var wg sync.WaitGroup
	for w := range results {
		r := rs[w%len(rs)]
		req := reqs[w%len(rs)]
		res := &result{outcomes: map[string]int{}}
		results[w] = res
		wg.Add(1)
		go func() {
			defer wg.Done()
			var every time.Duration
			if o.rate > 0 {
				every = time.Duration(float64(len(results)) / o.rate * float64(time.Second))
			}
			next := time.Now()
			for n := 0; n < 1<<30; n++ {
				if stopping.Load() || ctx.Err() != nil {
					return
				}
				if paused.Load() {
					time.Sleep(2 * time.Millisecond)
					next = time.Now()
					continue
				}
				if every > 0 {
					next = next.Add(every)
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					} else if d < -time.Second {
						next = time.Now() // fell behind: do not burst to catch up
					}
				}
				measured := measuring.Load()
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := testnet.Call(cctx, r.host, node.ID, req)
				cancel()
				d := time.Since(start)
				out := testnet.Outcome(resp, err)
				if out == "ok" && resp.GetReencryptResponse() == nil {
					out = "unexpected answer"
				}
				if !measured {
					continue
				}
				res.outcomes[out]++
				if out == "ok" {
					if len(res.lat) < 20_000_000 {
						res.lat = append(res.lat, d)
					}
				} else if res.sample == "" {
					res.sample = fmt.Sprint(err, resp.GetError().GetReason())
				}
			}
		}()
	}
	// RSS/goroutine/heap sampler over the measured window.
	type sample struct {
		at               time.Duration
		rss              int64
		goroutines, heap float64
	}
	var samples []sample
	samplerDone := make(chan struct{})
	paused.Store(false)
	time.Sleep(o.warmup)
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	mStart := time.Now()
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(o.rssInterval)
		defer t.Stop()
		take := func() {
			s := sample{at: time.Since(mStart).Round(time.Second)}
			s.rss, _ = testnet.RSS(node.PID())
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s.goroutines, _ = node.Metric(sctx, "go_goroutines")
			s.heap, _ = node.Metric(sctx, "go_memstats_heap_inuse_bytes")
			cancel()
			samples = append(samples, s)
			if o.duration >= time.Minute {
				fmt.Printf("  t=%-6s rss %6.1f MiB  goroutines %5.0f  heap in use %6.1f MiB\n", s.at, float64(s.rss)/(1<<20), s.goroutines, s.heap/(1<<20))
			}
		}
		for {
			take()
			select {
			case <-t.C:
				if stopping.Load() {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	var wall, nodeCPU, selfCPU time.Duration
	ops := make([]int64, len(variants))
	cryptoCPU := make([]time.Duration, len(variants))
	cryptoWall := make([]time.Duration, len(variants))
	for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
		paused.Store(true)
		time.Sleep(20 * time.Millisecond) // requests in flight finish
		for i, v := range variants {
			n, cpu, el, err := cryptoOnly(o.cryptoDur/time.Duration(o.rounds), v.fn)
			if err != nil {
				stopping.Store(true)
				return fmt.Errorf("%s: %w", v.name, err)
			}
			ops[i] += n
			cryptoCPU[i] += cpu
			cryptoWall[i] += el
		}
		n0, _ := testnet.CPUTime(node.PID())
		s0 := testnet.SelfCPUTime()
		t0 := time.Now()
		measuring.Store(true)
		paused.Store(false)
		time.Sleep(o.duration / time.Duration(o.rounds))
		measuring.Store(false)
		wall += time.Since(t0)
		n1, _ := testnet.CPUTime(node.PID())
		nodeCPU += n1 - n0
		selfCPU += testnet.SelfCPUTime() - s0
	}
	stopping.Store(true)
	wg.Wait()
	if o.profile != "" {
		pprof.StopCPUProfile()
	}
	<-samplerDone
	ceilings := make([]float64, len(variants))
	cpuPerOp := make([]time.Duration, len(variants))
	for i, v := range variants {
		ceilings[i] = float64(ops[i]) / cryptoWall[i].Seconds()
		cpuPerOp[i] = cryptoCPU[i] / time.Duration(max(ops[i], 1))
		fmt.Printf("crypto-only %-88s %7.0f ops/s, %4.0f µs CPU/op (%d workers, %s in %d slices)\n", v.name, ceilings[i],
			float64(cpuPerOp[i])/float64(time.Microsecond), runtime.GOMAXPROCS(0), cryptoWall[i].Round(time.Millisecond), o.rounds)
	}

	var all testnet.Lat
	outcomes := map[string]int{}
	var errSample string
	for _, r := range results {
		all = append(all, r.lat...)
		for k, v := range r.outcomes {
			outcomes[k] += v
		}
		if errSample == "" {
			errSample = r.sample
		}
	}
	errs := 0
	for k, v := range outcomes {
		if k != "ok" {
			errs += v
		}
	}
	rps := float64(len(all)) / wall.Seconds()
	nodeCores := nodeCPU.Seconds() / wall.Seconds()
	selfCores := selfCPU.Seconds() / wall.Seconds()
	pace := "closed loop"
	if o.rate > 0 {
		pace = fmt.Sprintf("paced at %g req/s", o.rate)
	}
	fmt.Printf("\nre-encrypt RPC load: %d clients × %d in flight (%s), %s measured in %d slices after %s warm-up\n", len(rs), o.inflight, pace, wall.Round(time.Millisecond), o.rounds, o.warmup)
	fmt.Printf("  throughput     %8.0f req/s  (%d ok, %d errors: %s)\n", rps, len(all), errs, testnet.Summarize(outcomes))
	if errSample != "" {
		fmt.Printf("  an error: %s\n", errSample)
	}
	fmt.Printf("  latency        p50 %s  p99 %s  max %s\n", testnet.Ms(all.Pct(50)), testnet.Ms(all.Pct(99)), testnet.Ms(all.Max()))
	fmt.Printf("  CPU            node %.2f cores (%.0f µs/req), load generator %.2f cores (%.0f µs/req)\n",
		nodeCores, nodeCores*1e6/rps, selfCores, selfCores*1e6/rps)
	nodePerReq := nodeCores * 1e6 / rps
	for i, v := range variants {
		fmt.Printf("  ratio to crypto-only %-88s %5.1f %% of its throughput; its CPU/op is %4.1f %% of the node's CPU/req\n",
			v.name, 100*rps/ceilings[i], 100*float64(cpuPerOp[i])/float64(time.Microsecond)/nodePerReq)
	}
	if len(samples) > 0 {
		minR, maxR := samples[0].rss, samples[0].rss
		minG, maxG := samples[0].goroutines, samples[0].goroutines
		minH, maxH := samples[0].heap, samples[0].heap
		for _, s := range samples {
			minR, maxR = min(minR, s.rss), max(maxR, s.rss)
			minG, maxG = min(minG, s.goroutines), max(maxG, s.goroutines)
			minH, maxH = min(minH, s.heap), max(maxH, s.heap)
		}
		last := samples[len(samples)-1]
		fmt.Printf("  node RSS       min %.1f MiB  max %.1f MiB  last %.1f MiB  (%d samples every %s)\n",
			mib(minR), mib(maxR), mib(last.rss), len(samples), o.rssInterval)
		fmt.Printf("  node heap      min %.1f MiB  max %.1f MiB  last %.1f MiB (go_memstats_heap_inuse_bytes)\n", minH/(1<<20), maxH/(1<<20), last.heap/(1<<20))
		fmt.Printf("  node goroutines min %.0f  max %.0f  last %.0f\n", minG, maxG, last.goroutines)
	}
	if !node.Alive() {
		return errors.New("the node died during the load")
	}
	return nil
}

// target is the node under load: a `kadre run` process this program
// started, a node in this process (-profile), or a running node (-target).
type target struct {
	ID      peer.ID
	proc    *testnet.Node
	ai      peer.AddrInfo
	pid     int           // 0: unknown (a -target without -target-pid)
	metrics *testnet.Node // for /metrics; nil: none
	stop    func()
}

func (t *target) AddrInfo() peer.AddrInfo { return t.ai }
func (t *target) PID() int {
	if t.proc != nil {
		return t.proc.PID()
	}
	return t.pid
}
func (t *target) Alive() bool {
	if t.proc != nil {
		return t.proc.Alive()
	}
	if t.pid != 0 {
		return syscall.Kill(t.pid, 0) == nil
	}
	return true
}
func (t *target) Metric(ctx context.Context, name string) (float64, error) {
	if t.metrics == nil {
		return 0, errors.New("no metrics endpoint")
	}
	return t.metrics.Metric(ctx, name)
}

func startTarget(ctx context.Context, o options, dir string) (*target, error) {
	if o.target != "" {
		ais, err := dht.ParseAddrs([]string{o.target})
		if err != nil {
			return nil, err
		}
		t := &target{ID: ais[0].ID, ai: ais[0], pid: o.targetPID, stop: func() {}}
		if o.targetMetrics != "" {
			_, port, err := net.SplitHostPort(o.targetMetrics)
			if err != nil {
				return nil, fmt.Errorf("-target-metrics: %w", err)
			}
			p, _ := strconv.Atoi(port)
			t.metrics = &testnet.Node{MetricsPort: p}
		}
		fmt.Printf("node %s (given; pid %d; its -peer-rate limits each client, kadre's default is 200/s)\n", t.ID, t.pid)
		return t, nil
	}
	if o.profile != "" {
		id := rekey.GenerateSecretKey()
		h, err := dht.New(ctx, dht.Config{Identity: id, Server: true})
		if err != nil {
			return nil, err
		}
		st, err := store.Open(filepath.Join(dir, "store"), store.Options{})
		if err != nil {
			h.Close()
			return nil, err
		}
		svc, err := dht.NewService(h, dht.ServiceConfig{Store: st, Identity: id, PeerRate: o.peerRate})
		if err != nil {
			h.Close()
			st.Close()
			return nil, err
		}
		fmt.Printf("node in this process (-profile), -peer-rate %g; the RSS and CPU figures below are this whole process's\n", o.peerRate)
		return &target{ID: h.ID(), ai: peer.AddrInfo{ID: h.ID(), Addrs: h.Libp2p().Addrs()}, pid: os.Getpid(),
			stop: func() { svc.Close(); h.Close(); st.Close() }}, nil
	}
	port, err := testnet.FreePort()
	if err != nil {
		return nil, err
	}
	mport, err := testnet.FreePort()
	if err != nil {
		return nil, err
	}
	n := &testnet.Node{Name: "node", Bin: o.bin, Dir: filepath.Join(dir, "node"), Port: port, MetricsPort: mport,
		Extra: []string{"-peer-rate", fmt.Sprint(o.peerRate)}}
	if err := n.Start(); err != nil {
		return nil, err
	}
	fmt.Printf("node pid %d, -peer-rate %g (burst %g)\n", n.PID(), o.peerRate, 2*o.peerRate)
	return &target{ID: n.ID, proc: n, metrics: n, ai: n.AddrInfo(), stop: func() { n.Stop() }}, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// placeAndMap places a 3-of-5 grant of /docs from owner to recipient with
// h, as client.Grant does but without its ledger, and returns how long the
// placement took, the signed map page that lists its holders, and them.
func placeAndMap(ctx context.Context, owner *rekey.Keyring, h *dht.Host, to policy.Identity, pair *policy.PairKey) (time.Duration, *policy.HolderMap, []peer.ID, error) {
	expiry := uint64(time.Now().Add(24 * time.Hour).Unix())
	grants, err := policy.NewGrants(owner, policy.GrantParams{Recipient: to, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 3, Shares: 5, Sequence: uint64(time.Now().UnixMilli()), Expiry: expiry})
	if err != nil {
		return 0, nil, nil, err
	}
	t0 := time.Now()
	pl, err := h.Place(ctx, grants, dht.PlaceOptions{})
	d := time.Since(t0)
	if err != nil {
		return 0, nil, nil, err
	}
	g := grants[0]
	e := policy.MapEntry{PathHash: g.PathHash, Sequence: g.Sequence, Expiry: expiry, Threshold: 3, Shares: 5,
		DelegatingKey: g.DelegatingKey, VerifyingKey: g.VerifyingKey}
	for i, p := range pl.Holders {
		node, err := dht.PublicKeyOf(p)
		if err != nil {
			return 0, nil, nil, err
		}
		e.Holders = append(e.Holders, policy.MapHolder{Node: node, GrantID: grants[i].ID()})
	}
	m := &policy.HolderMap{Recipient: to.IdentityKey, Points: pair.Points(), Sequence: 1, IssuedAt: uint64(time.Now().Unix()),
		Pages: 1, Entries: []policy.MapEntry{e}}
	if err := m.Sign(policy.IdentitySigner(owner)); err != nil {
		return 0, nil, nil, err
	}
	return d, m, pl.Holders, nil
}

// testnetLoad measures, on a testnet of o.nodes processes, the latency of
// granting 3-of-5 (client.Grant: sample, place, holder map) and of
// recovering a file's key as the recipient (client.DecryptKey: holder map,
// 3 verified cfrags), with a recipient that has the map cached (warm) and
// one that fetches it first (cold), and of a DHT lookup.
func testnetLoad(ctx context.Context, o options, dir string) error {
	start := time.Now()
	c, err := testnet.StartCluster(testnet.ClusterOptions{Bin: o.bin, Dir: filepath.Join(dir, "nodes"), Size: o.nodes, Metrics: true})
	if err != nil {
		return err
	}
	defer c.Stop()
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		return err
	}
	fmt.Printf("testnet: %d node processes up and converged in %s\n", o.nodes, time.Since(start).Round(time.Millisecond))
	var boot []string
	for _, n := range c.Seeds(3) {
		boot = append(boot, n.P2PAddr())
	}
	open := func(name string) (*client.Client, error) {
		home := filepath.Join(dir, name)
		if _, err := client.CreateIdentity(home, nil, false); err != nil {
			return nil, err
		}
		return client.Open(client.Options{Home: home, Bootstrap: boot})
	}
	bob, err := open("bob")
	if err != nil {
		return err
	}
	defer bob.Close()

	type sample struct {
		owner *client.Client
		file  []byte
	}
	var grant testnet.Lat
	var samples []sample
	grantErrs := map[string]int{}
	for i := 0; i < o.samples && ctx.Err() == nil; i++ {
		owner, err := open(fmt.Sprintf("owner%d", i))
		if err != nil {
			return err
		}
		defer owner.Close()
		if _, err := owner.Host(ctx); err != nil {
			return err
		}
		t0 := time.Now()
		_, err = owner.Grant(ctx, client.GrantRequest{To: bob.Identity(), Prefix: policy.MustNormalizePath("/docs"), M: 3, N: 5,
			Expires: time.Now().Add(24 * time.Hour)})
		if err != nil {
			grantErrs[err.Error()]++
			continue
		}
		grant = append(grant, time.Since(t0))
		var f bytes.Buffer
		if err := owner.Encrypt(&f, strings.NewReader("report"), policy.MustNormalizePath(fmt.Sprintf("/docs/f%d.txt", i))); err != nil {
			return err
		}
		samples = append(samples, sample{owner, f.Bytes()})
	}
	// One long-lived owner granting to a new recipient each time: its
	// host is connected to the network already, as the host of the
	// measurement before the trust model was (one host, 200 placements).
	alice, err := open("alice")
	if err != nil {
		return err
	}
	defer alice.Close()
	if _, err := alice.Host(ctx); err != nil {
		return err
	}
	var warmGrant testnet.Lat
	warmErrs := map[string]int{}
	for i := 0; i < o.samples && ctx.Err() == nil; i++ {
		seed := make([]byte, 32)
		rand.Read(seed)
		k, err := rekey.NewKeyring(seed)
		if err != nil {
			return err
		}
		t0 := time.Now()
		_, err = alice.Grant(ctx, client.GrantRequest{To: policy.IdentityOf(k), Prefix: policy.MustNormalizePath("/docs"), M: 3, N: 5,
			Expires: time.Now().Add(24 * time.Hour)})
		if err != nil {
			warmErrs[err.Error()]++
			continue
		}
		warmGrant = append(warmGrant, time.Since(t0))
	}
	// What a grant waits for, one part at a time, from the warm owner's
	// host: the node-info check, the sample, the storers of a pair's
	// points and the fetch of a map that is not there (these three run at
	// once in a grant), then what must follow one another: the placement
	// (a sample, then the 5 StoreGrants) and the publication of the map
	// that lists its holders.
	ah, err := alice.Host(ctx)
	if err != nil {
		return err
	}
	var pStatus, pSample, pStorers, pFetch, pPlace, pPublish testnet.Lat
	for i := 0; i < o.samples/4 && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if _, err := alice.Status(ctx); err == nil {
			pStatus = append(pStatus, time.Since(t0))
		}
		t0 = time.Now()
		if _, err := ah.Sample(ctx, 0, nil); err == nil {
			pSample = append(pSample, time.Since(t0))
		}
		seed := make([]byte, 32)
		rand.Read(seed)
		k, err := rekey.NewKeyring(seed)
		if err != nil {
			return err
		}
		pair, err := policy.OwnerPairKey(alice.Keyring(), policy.IdentityOf(k).IdentityKey)
		if err != nil {
			return err
		}
		t0 = time.Now()
		near := ah.MapStorers(ctx, pair.Points(), dht.DefaultMapStorers)
		pStorers = append(pStorers, time.Since(t0))
		t0 = time.Now()
		ah.FetchMap(ctx, dht.RefOf(pair), dht.MapOptions{Near: near})
		pFetch = append(pFetch, time.Since(t0))
		// A placement or publication that fails is left out, as a failed
		// part above is: n says how many made it.
		if d, m, holders, err := placeAndMap(ctx, alice.Keyring(), ah, policy.IdentityOf(k), pair); err == nil {
			t0 = time.Now()
			if _, err := ah.PublishMap(ctx, []*policy.HolderMap{m}, holders, dht.MapOptions{Near: near}); err == nil {
				pPlace, pPublish = append(pPlace, d), append(pPublish, time.Since(t0))
			}
		}
	}

	fmt.Printf("\ngrant 3-of-5 (client.Grant: sample, place 5 fragments, publish the holder map; %d samples each, sequential):\n", o.samples)
	fmt.Printf("  one warm owner, a new recipient each time      %s, failures %d %v\n", warmGrant.Summary(), o.samples-len(warmGrant), warmErrs)
	fmt.Printf("  a new owner (new client, new host) each time   %s, failures %d %v\n", grant.Summary(), o.samples-len(grant), grantErrs)
	fmt.Printf("  its parts, one at a time (warm owner):\n")
	fmt.Printf("    node info of the routing table (Status)      %s\n", pStatus.Summary())
	fmt.Printf("    sample (4 random-target lookups at once)     %s\n", pSample.Summary())
	fmt.Printf("    storers of a pair's 3 points (3 lookups)     %s\n", pStorers.Summary())
	fmt.Printf("    fetch of a map none has, storers known       %s\n", pFetch.Summary())
	fmt.Printf("    place 5 fragments (Place: a sample, then 5 StoreGrants at once)  %s\n", pPlace.Summary())
	fmt.Printf("    publish the map of 1 grant, storers known (3 × 8 storers + 5 holders)  %s\n", pPublish.Summary())

	var cold, coldHost, warm, closest testnet.Lat
	keyErrs := map[string]int{}
	// timeKey times one recovery of a file's key, adding it to lat or its
	// error to keyErrs under kind.
	timeKey := func(c *client.Client, file []byte, kind string, lat *testnet.Lat) bool {
		t0 := time.Now()
		_, err := c.DecryptKey(ctx, bytes.NewReader(file), client.DecryptOptions{})
		if err != nil {
			keyErrs[kind+": "+err.Error()]++
			return false
		}
		*lat = append(*lat, time.Since(t0))
		return true
	}
	for _, sm := range samples {
		if ctx.Err() != nil {
			break
		}
		// A new recipient client (new host, no cached map, no home).
		ck, err := client.Open(client.Options{Keyring: bob.Keyring(), Bootstrap: boot})
		if err != nil {
			return err
		}
		if _, err := ck.Host(ctx); err != nil {
			return err
		}
		ok := timeKey(ck, sm.file, "new client", &coldHost)
		ck.Close()
		// Bob's long-lived client: the first file of each owner fetches
		// the owner's map (cold), the second uses the cached one (warm).
		if ok && timeKey(bob, sm.file, "cold", &cold) {
			timeKey(bob, sm.file, "warm", &warm)
		}
	}
	bh, err := bob.Host(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < o.samples && ctx.Err() == nil; i++ {
		key := make([]byte, 32)
		rand.Read(key)
		t0 := time.Now()
		ps, err := bh.ClosestPeers(ctx, key, 20)
		if err == nil && len(ps) >= min(20, o.nodes) {
			closest = append(closest, time.Since(t0))
		}
	}
	fmt.Printf("\nrecover a file's key as the recipient (client.DecryptKey: holder map, 3 verified cfrags, unwrap):\n")
	fmt.Printf("  warm (map cached)                               %s\n", warm.Summary())
	fmt.Printf("  cold (map fetched from its rendezvous points)   %s\n", cold.Summary())
	fmt.Printf("  a new client (new host, map fetched)            %s\n", coldHost.Summary())
	fmt.Printf("  failures: %v\n", keyErrs)
	fmt.Printf("DHT lookup from a client host, ClosestPeers(random key, 20): %s\n", closest.Summary())

	// Revoking: receipts from the 5 holders, the pair's map republished,
	// the prefix's key epoch rotated and its r other recipients granted
	// again at the new epoch.
	fmt.Printf("\nrevoke 3-of-5 with key rotation (client.Revoke: receipts, map, rotate, re-grant r other recipients):\n")
	for _, r := range []int{0, 1, 4} {
		var lat testnet.Lat
		failures := map[string]int{}
		for i := 0; i < max(3, o.samples/20) && ctx.Err() == nil; i++ {
			owner, err := open(fmt.Sprintf("revoker-%d-%d", r, i))
			if err != nil {
				return err
			}
			defer owner.Close()
			recipients := []*client.Client{bob}
			for j := range r {
				o, err := open(fmt.Sprintf("other-%d-%d-%d", r, i, j))
				if err != nil {
					return err
				}
				defer o.Close()
				recipients = append(recipients, o)
			}
			for _, to := range recipients {
				if _, err := owner.Grant(ctx, client.GrantRequest{To: to.Identity(), Prefix: policy.MustNormalizePath("/docs"), M: 3, N: 5,
					Expires: time.Now().Add(24 * time.Hour)}); err != nil {
					return fmt.Errorf("grant before the revocation: %w", err)
				}
			}
			t0 := time.Now()
			res, err := owner.Revoke(ctx, bob.Identity(), policy.MustNormalizePath("/docs"))
			d := time.Since(t0)
			switch {
			case err != nil:
				failures[err.Error()]++
			case !res.Info.Dead || len(res.Regranted) != r:
				failures[fmt.Sprintf("dead %v, %d of %d re-granted", res.Info.Dead, len(res.Regranted), r)]++
			default:
				lat = append(lat, d)
			}
		}
		fmt.Printf("  r = %d   %s, failures %v\n", r, lat.Summary(), failures)
	}
	for _, n := range c.Nodes {
		if !n.Alive() {
			return fmt.Errorf("%s died", n.Name)
		}
	}
	return nil
}
