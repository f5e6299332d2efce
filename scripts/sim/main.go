// Command sim runs kadre's simulator (internal/sim, issue 15): hundreds or
// thousands of nodes running kadre's real code in this process, on
// go-libp2p's mock network with per-link latency, and prints the figures
// of BENCHMARKS.md §7 as Markdown, and as JSON with -json.
//
//	go run ./scripts/sim -nodes 100                              # steady state
//	go run ./scripts/sim -nodes 100 -phases steady,churn,faults,sybil
//	go run ./scripts/sim -nodes 1000 -background 100000 -phases steady,churn,sybil
//
// scripts/sim.sh runs the sizes of BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kadre/kadre/internal/sim"
)

func main() {
	var cfg sim.Config
	var phases, sybils, jsonOut, cpuProfile string
	flag.IntVar(&cfg.Nodes, "nodes", 100, "honest nodes")
	flag.IntVar(&cfg.Users, "users", 20, "users (owners and recipients), each a client on a machine of its own")
	flag.IntVar(&cfg.Grants, "grants", 100, "grants measured per phase (sybil stages share them)")
	flag.IntVar(&cfg.Decrypts, "decrypts", 200, "decryptions measured per phase (sybil stages share them)")
	flag.IntVar(&cfg.Background, "background", 0, "background grants written straight into the stores")
	flag.IntVar(&cfg.Concurrency, "concurrency", 4, "measured operations at once")
	flag.DurationVar(&cfg.Net.RTT, "rtt", 50*time.Millisecond, "mean round-trip time of a link")
	flag.Float64Var(&cfg.Net.Jitter, "jitter", 0.2, "links' RTTs are uniform in RTT·(1 ± jitter)")
	flag.DurationVar(&cfg.Net.MessageJitter, "message-jitter", 2*time.Millisecond, "mean extra (exponential) delay of each message")
	flag.Float64Var(&cfg.Net.Bandwidth, "bandwidth", 12.5e6, "bytes per second per link")
	flag.DurationVar(&cfg.Refresh, "refresh", 0, "routing-table refresh period (default kadre's)")
	flag.StringVar(&phases, "phases", "steady", "phases, in order, on one network: steady, churn, faults, sybil")
	flag.Float64Var(&cfg.Churn, "churn", 0.3, "fraction of nodes that leave, retire or join (a third each) during the churn phase")
	flag.DurationVar(&cfg.ChurnPhase, "churn-phase", 2*time.Minute, "length of the churn phase")
	flag.DurationVar(&cfg.RetireTimeout, "retire-timeout", 90*time.Second, "bound on one node's hand-offs")
	flag.BoolVar(&cfg.Vanish, "vanish", true, "leaving and dead nodes vanish (dials hang until the dial timeout); false: they exit (dials refused)")
	flag.DurationVar(&cfg.Net.DialTimeout, "dial-timeout", 15*time.Second, "how long a dial to a vanished machine hangs at most (libp2p's swarm default: 15 s)")
	flag.Float64Var(&cfg.Dead, "dead", 0.1, "faults phase: fraction of honest nodes that die")
	flag.Float64Var(&cfg.Slow, "slow", 0.1, "faults phase: fraction of honest nodes that become slow")
	flag.Float64Var(&cfg.Liars, "liars", 0.1, "faults phase: fraction of honest nodes that start lying")
	flag.DurationVar(&cfg.SlowDelay, "slow-delay", 250*time.Millisecond, "one-way latency a slow node adds")
	flag.StringVar(&sybils, "sybils", "0.05,0.1,0.2,0.3", "sybil stages: the attacker's fractions of the network")
	flag.IntVar(&cfg.SybilNets, "sybil-nets", 0, "IPv4 /24s the attacker's nodes share (0: one each)")
	flag.Float64Var(&cfg.Ground, "ground", 0.5, "fraction of sybils ground next to the users' public points")
	flag.IntVar(&cfg.CaptureTrials, "capture-trials", 400, "placements per sybil stage for the capture rate")
	flag.IntVar(&cfg.SampleTrials, "sample-trials", 20, "samples per sybil stage for the attacker's sampled share")
	flag.DurationVar(&cfg.Idle, "idle", 0, "measure the idle network's traffic this long")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed (0: from the clock)")
	flag.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile")
	timeout := flag.Duration("timeout", 2*time.Hour, "give up after this long")
	gogc := flag.Int("gogc", 400, "the garbage collector's GOGC (memory is cheaper than CPU here)")
	maxRSS := flag.Float64("max-rss-gib", 12, "stop (and report what was measured) if the process's resident memory exceeds this")
	flag.Parse()
	debug.SetGCPercent(*gogc)
	cfg.Phases = strings.Split(phases, ",")
	cfg.Sybils = nil
	for _, f := range strings.Split(sybils, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			log.Fatalf("-sybils: %v", err)
		}
		cfg.Sybils = append(cfg.Sybils, v)
	}
	start := time.Now()
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%7s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, args...))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, *timeout)
	defer cancel2()
	go func() {
		for range time.Tick(5 * time.Second) {
			if gib := rssGiB(); gib > *maxRSS {
				cfg.Logf("resident memory %.1f GiB > %.1f GiB: stopping", gib, *maxRSS)
				cancel2()
				return
			}
		}
	}()
	rep, err := sim.Run(ctx, cfg)
	if rep != nil {
		rep.Markdown(os.Stdout)
		if jsonOut != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(jsonOut, b, 0o644); werr != nil {
				log.Print(werr)
			}
		}
	}
	if err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// rssGiB is the process's resident memory (VmRSS: anonymous, file and
// shared pages, which includes the stores' LMDB maps on tmpfs).
func rssGiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kib, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kib / (1 << 20)
		}
	}
	return 0
}
