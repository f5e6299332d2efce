package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var kadreBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kadre-e2e-abuse")
	if err != nil {
		panic(err)
	}
	kadreBin, err = BuildKadre(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestAbuseQuick runs every abuse case against a real node process, with a
// short flood: each must be refused with its code while the node keeps
// serving an honest recipient.
func TestAbuseQuick(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Name: "target", Bin: kadreBin, Dir: filepath.Join(t.TempDir(), "node"), Port: port}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(n.LogPath)
			t.Logf("node log:\n%s", b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, fr, err := RunAbuse(ctx, n.AddrInfo(), AbuseOptions{
		FloodDuration: 1500 * time.Millisecond, FloodWorkers: 64, FloodIdleStreams: 40, SybilPeers: 24,
		// Generous: the test shares the machine with other packages' tests.
		FloodP99Max: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 25 {
		t.Fatalf("only %d cases ran", len(res))
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s: expected %s, observed %s (%s)", r.Case, r.Expected, r.Observed, r.Reason)
		} else {
			t.Logf("ok  %-58s %s", r.Case, r.Observed)
		}
	}
	if fr == nil || len(fr.Baseline) == 0 || len(fr.During) == 0 {
		t.Fatal("the flood measured nothing")
	}
	t.Logf("flood: attacker %s; idle streams %s; honest %s without, %s during",
		Summarize(fr.Attacker), Summarize(fr.IdleStreams), fr.Baseline.Summary(), fr.During.Summary())
	if !n.Alive() {
		t.Fatal("the node died")
	}
}

// TestCrowdQuick runs issue 12's cases (free identities, many networks,
// the local endpoint, the disk) against five node processes, with 3 s
// floods, while an honest owner places 3-of-5 grants and a recipient
// decrypts.
func TestCrowdQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rows, err := RunCrowd(ctx, CrowdOptions{Bin: kadreBin, Dir: t.TempDir(), Duration: 3 * time.Second, NodeFlags: QuickCrowdFlags,
		Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 8 {
		t.Fatalf("only %d cases ran", len(rows))
	}
	for _, r := range rows {
		if !r.Pass {
			t.Errorf("%s: %s (%s | %s)", r.Case, r.Reason, r.Rate, r.NodeDid)
		}
	}
}
