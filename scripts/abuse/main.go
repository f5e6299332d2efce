// Command abuse runs kadre's abuse cases (issue 7) against a real node
// process on 127.0.0.1 and prints a table: case, expected code, observed
// code, pass/fail. It exits 1 if any case fails.
//
//	go run ./scripts/abuse                      # builds kadre, starts a node
//	go run ./scripts/abuse -target /ip4/127.0.0.1/tcp/4710/p2p/16Uiu2…
//
// Every case is followed by an honest recipient's re-encryption, which
// must still succeed. The flood case measures that recipient's latency
// without and during a flood from one peer.
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
	verbose := flag.Bool("v", false, "print progress")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	code, err := run(ctx, *target, *bin, testnet.AbuseOptions{FloodDuration: *flood, FloodWorkers: *workers,
		FloodIdleStreams: *idle, FloodP99Max: *p99max, SybilPeers: *sybils, Logf: logf(*verbose)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(2)
	}
	os.Exit(code)
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
