// Command abuse runs kadre's abuse cases against real node processes on
// 127.0.0.1 and prints two tables. It exits 1 if any case fails.
//
//	go run ./scripts/abuse                      # builds kadre, starts the nodes
//	go run ./scripts/abuse -target /ip4/127.0.0.1/tcp/4710/p2p/16Uiu2…   # input cases only
//	go run ./scripts/abuse -soak 5m             # every flood of issue 12 for 5 minutes
//
// Malformed and forged input (issue 7), against one node: case, expected
// code, observed code. Every case is followed by an honest recipient's
// re-encryption, which must still succeed; the flood case measures that
// recipient's latency without and during a flood from one peer.
//
// Free identities, many networks, the local endpoint and the disk (issue
// 12, RELIABILITY.md §6), against five nodes: case, attack rate, what the
// node did, the honest recipient's decryption latency during the attack,
// and node RSS growth. While each runs, an honest owner places 3-of-5
// grants and a recipient decrypts; a case fails if either is not served or
// a node's RSS grows more than -rss-bound.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/testnet"
)

func main() {
	target := flag.String("target", "", "multiaddr (with /p2p/) of a running node; empty: build kadre and start one")
	bin := flag.String("bin", "", "kadre binary (default: build ./cmd/node)")
	flood := flag.Duration("flood", 5*time.Second, "flood duration (and of the baseline before it)")
	workers := flag.Int("flood-workers", 128, "concurrent request loops of the flooding peer")
	idle := flag.Int("idle-streams", 48, "silent streams the flooding peer holds open")
	p99max := flag.Duration("flood-p99-max", 250*time.Millisecond, "largest honest p99 during the flood that passes")
	sybils := flag.Int("sybils", 40, "peers that each hold the per-peer maximum of silent streams at once (0: skip the case)")
	crowdCases := flag.Bool("crowd", true, "run issue 12's cases (free identities, networks, endpoint, disk) on five nodes")
	soak := flag.Duration("soak", 0, "run each flood of issue 12 this long (e.g. 5m) against nodes with default settings; 0: 3 s floods against nodes with small limits")
	crowdSize := flag.Int("crowd-size", 0, "identities of the stream crowd (default 100, 600 with -soak)")
	groups := flag.Int("groups", 16, "networks of the many-networks storage flood, run on nodes of capacity 600 (0: skip)")
	only := flag.String("only", "", "run only the issue 12 cases whose name contains this")
	rssBound := flag.Int("rss-bound", 64, "largest growth of a node's anonymous RSS (heap, stacks) in MiB that passes")
	verbose := flag.Bool("v", false, "print progress")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute+12*max(*soak, time.Minute))
	defer cancel()
	code, err := run(ctx, *target, *bin, testnet.AbuseOptions{FloodDuration: *flood, FloodWorkers: *workers,
		FloodIdleStreams: *idle, FloodP99Max: *p99max, SybilPeers: *sybils, Logf: logf(*verbose)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(2)
	}
	if *crowdCases && *target == "" {
		c, err := runCrowd(ctx, *bin, *soak, *crowdSize, *groups, *only, int64(*rssBound)<<20, *verbose)
		if err != nil {
			fmt.Fprintln(os.Stderr, "abuse:", err)
			os.Exit(2)
		}
		code = max(code, c)
	}
	os.Exit(code)
}

// runCrowd runs issue 12's cases on a cluster of five nodes and prints
// their table: with soak, each flood lasts that long against nodes with
// default settings; else 3 s against nodes with small limits. The
// many-networks flood runs on a cluster of its own (capacity 600).
func runCrowd(ctx context.Context, bin string, soak time.Duration, crowdSize, groups int, only string, rssBound int64, verbose bool) (int, error) {
	dir, err := os.MkdirTemp("", "kadre-crowd")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		if bin, err = testnet.BuildKadre(dir); err != nil {
			return 0, err
		}
	}
	o := testnet.CrowdOptions{Bin: bin, Dir: filepath.Join(dir, "run"), Duration: 3 * time.Second, NodeFlags: testnet.QuickCrowdFlags,
		Crowd: crowdSize, Only: only, RSSBound: rssBound, Logf: logf(verbose)}
	settings := "small limits: " + strings.Join(testnet.QuickCrowdFlags, " ")
	if soak > 0 {
		o.Duration, o.NodeFlags, settings = soak, nil, "default settings"
		if o.Crowd == 0 {
			o.Crowd = 600
		}
	}
	la, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nissue 12 cases: 5 nodes, %s; floods of %s; date %s, loadavg %s", settings, o.Duration, time.Now().UTC().Format(time.RFC3339), la)
	start := time.Now()
	rows, err := testnet.RunCrowd(ctx, o)
	if err != nil {
		return 0, err
	}
	if groups > 0 && (only == "" || strings.Contains("storage flood from many networks", only)) {
		m := o
		// Its limits are tiny by construction (the honest owner may keep 20
		// grants a node): 10 s, whatever -soak; the 5-minute storage flood
		// is the one against default settings.
		m.Dir, m.Groups, m.Only, m.NodeFlags = filepath.Join(dir, "many"), groups, "many", testnet.ReserveFlags
		m.Duration = 10 * time.Second
		fmt.Printf("many-networks flood: 5 nodes, %s, %d networks\n", strings.Join(testnet.ReserveFlags, " "), groups)
		more, err := testnet.RunCrowd(ctx, m)
		if err != nil {
			return 0, err
		}
		rows = append(rows, more...)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\trate\twhat the node did\thonest decrypt p50/p99\thonest grants\tRSS growth (anonymous, files)\tresult")
	failed := 0
	for _, r := range rows {
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL: " + oneLine(r.Reason)
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s / %s (n=%d)\t%s\t%+.1f MiB (%+.1f, %+.1f)\t%s\n", r.Case, r.Rate, oneLine(r.NodeDid), testnet.Ms(r.Honest.Pct(50)),
			testnet.Ms(r.Honest.Pct(99)), len(r.Honest), r.HonestGrants, float64(r.RSSGrowth)/(1<<20), float64(r.AnonGrowth)/(1<<20), float64(r.FileGrowth)/(1<<20), verdict)
	}
	tw.Flush()
	fmt.Printf("%d cases, %d failed, %s\n", len(rows), failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

func logf(on bool) func(string, ...any) {
	if !on {
		return nil
	}
	return func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
}

func run(ctx context.Context, target, bin string, o testnet.AbuseOptions) (int, error) {
	var ai peer.AddrInfo
	var node *testnet.Node
	if target != "" {
		ais, err := dht.ParseAddrs([]string{target})
		if err != nil {
			return 0, err
		}
		ai = ais[0]
	} else {
		dir, err := os.MkdirTemp("", "kadre-abuse")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		if bin == "" {
			if bin, err = testnet.BuildKadre(dir); err != nil {
				return 0, err
			}
		}
		port, err := testnet.FreePort()
		if err != nil {
			return 0, err
		}
		node = &testnet.Node{Name: "target", Bin: bin, Dir: filepath.Join(dir, "node"), Port: port}
		if err := node.Start(); err != nil {
			return 0, err
		}
		defer node.Stop()
		ai = node.AddrInfo()
		fmt.Printf("node %s (pid %d, default settings: -peer-rate 200)\n", ai.ID, node.PID())
	}
	la, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("date %s, loadavg %s", time.Now().UTC().Format(time.RFC3339), la)
	start := time.Now()
	res, fr, err := testnet.RunAbuse(ctx, ai, o)
	if err != nil {
		return 0, err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\texpected\tobserved\tresult\treason")
	failed := 0
	for _, r := range res {
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Case, r.Expected, r.Observed, verdict, oneLine(r.Reason))
	}
	tw.Flush()
	if fr != nil {
		fmt.Printf("\nflood (%s): attacker outcomes %s\n", fr.Duration, testnet.Summarize(fr.Attacker))
		fmt.Printf("honest re-encrypt latency without the flood: %s\n", fr.Baseline.Summary())
		fmt.Printf("honest re-encrypt latency during the flood:  %s, errors: %s\n", fr.During.Summary(), testnet.Summarize(fr.HonestErrors))
		fmt.Printf("silent streams: %s\n", testnet.Summarize(fr.IdleStreams))
	}
	if node != nil {
		if !node.Alive() {
			fmt.Println("the node died")
			failed++
		}
	}
	fmt.Printf("\n%d cases, %d failed, %s\n", len(res), failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
