package sim

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The quick variant of the simulation (issue 15): 100 nodes of kadre's
// real code on the mock network, a steady phase, 30 % churn, and one sybil
// stage. It asserts what can be asserted honestly at this size: every
// grant places its five fragments, every decryption succeeds in steady
// state and, under churn, whenever m of its holders are up and honest;
// a decryption with its map cached is one round trip; and the attacker
// captures grants at the rate the formula predicts for his share of the
// samples placement draws from (a 99.9 % interval, so that chance fails
// the test about once in a thousand runs). Wall-clock latency is logged,
// never asserted. The full sizes are scripts/sim.sh (BENCHMARKS.md).
func TestQuickSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("the simulation takes about a minute")
	}
	cfg := Config{
		Nodes: 100, Users: 12, Grants: 12, Decrypts: 24, Concurrency: 6,
		Net:           NetConfig{RTT: 20 * time.Millisecond, Jitter: 0.2, MessageJitter: time.Millisecond},
		Phases:        []string{"steady", "churn", "sybil"},
		Churn:         0.3,
		ChurnPhase:    10 * time.Second,
		RetireTimeout: 10 * time.Second,
		Sybils:        []float64{0.2},
		CaptureTrials: 140,
		SampleTrials:  8,
		Logf:          t.Logf,
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Markdown(&b)
	t.Log("\n" + b.String())
	if os.Getenv("KADRE_SIM_REPORT") != "" {
		os.WriteFile(os.Getenv("KADRE_SIM_REPORT"), []byte(b.String()), 0o644)
	}
	phase := func(name string) *PhaseReport {
		for _, p := range rep.Phases {
			if strings.HasPrefix(p.Name, name) {
				return p
			}
		}
		t.Fatalf("no phase %s", name)
		return nil
	}
	steady := phase("steady")
	if g := steady.Op("grant"); g == nil || g.OK != g.Count || g.Count != cfg.Grants {
		t.Errorf("steady: grants %+v, want all %d placed", g, cfg.Grants)
	}
	if steady.EligibleOK != steady.Eligible || steady.Eligible != cfg.Decrypts {
		t.Errorf("steady: %d of %d decryptions succeeded (%d eligible)", steady.EligibleOK, cfg.Decrypts, steady.Eligible)
	}
	if w := steady.Op("decrypt-warm"); w != nil && w.OK > 0 && w.RoundTrips.P50 != 1 {
		t.Errorf("steady: a decryption with a cached map took %v round trips at p50, want 1", w.RoundTrips.P50)
	}
	churn := phase("churn")
	if churn.Churn.Left+churn.Churn.Retired+churn.Churn.Joined < 27 {
		t.Errorf("churn: only %+v", churn.Churn)
	}
	if churn.EligibleOK != churn.Eligible || churn.Eligible == 0 {
		t.Errorf("churn: %d of %d decryptions with m holders up succeeded", churn.EligibleOK, churn.Eligible)
	}
	// The victim's grants (surrounded by ground sybils) and everyone
	// else's: each within the formula's interval at the attacker's share
	// of the samples.
	for _, c := range phase("sybil").Captures {
		if c.Trials < cfg.CaptureTrials/2*9/10 {
			t.Fatalf("sybil: capture %+v", c)
		}
		lo, hi := ClopperPearson(c.Captured, c.Trials, 0.001)
		p := CaptureProbability(c.N, c.M, c.FSampled)
		t.Logf("capture (%s): %d of %d placements (rate %.4f, 99.9%% interval [%.4f, %.4f]); formula %.4f at the sampled share %.3f, %.4f at the network share %.3f",
			c.Who, c.Captured, c.Trials, c.Rate, lo, hi, p, c.FSampled, c.Formula, c.F)
		if p < lo || p > hi || math.IsNaN(p) {
			t.Errorf("capture (%s): rate %.4f [%.4f, %.4f] does not contain the formula's %.4f", c.Who, c.Rate, lo, hi, p)
		}
	}
}

func TestCaptureFormula(t *testing.T) {
	// Issue 11's figures for 3-of-5.
	for _, c := range []struct{ f, p float64 }{{0.05, 0.00116}, {0.1, 0.00856}, {0.2, 0.05792}, {0.3, 0.16308}} {
		if got := CaptureProbability(5, 3, c.f); math.Abs(got-c.p) > 5e-6 {
			t.Errorf("P(f=%.2f) = %.6f, want %.5f", c.f, got, c.p)
		}
	}
	// The exact interval of 0 of 100 is [0, 1 − 0.025^(1/100)].
	if lo, hi := ClopperPearson(0, 100, 0.05); lo != 0 || math.Abs(hi-0.03622) > 1e-4 {
		t.Errorf("0/100: [%f, %f]", lo, hi)
	}
	if lo, hi := ClopperPearson(14, 100, 0.05); math.Abs(lo-0.0787) > 1e-3 || math.Abs(hi-0.2237) > 1e-3 {
		t.Errorf("14/100: [%f, %f]", lo, hi)
	}
}

func TestChain(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	iv := func(a, b, w int) interval { return interval{at(a), at(b), w, waitRPC, true} }
	ivs := []interval{
		iv(0, 50, 1), iv(0, 50, 1), iv(10, 60, 1), // one parallel wave
		iv(50, 100, 1), iv(60, 110, 1), // a second
		iv(100, 250, 3), // a new connection
		iv(250, 300, 1),
	}
	if got := chain(ivs); got != 6 {
		t.Fatalf("chain = %d, want 6", got)
	}
}
