package sim

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Report is what a run measured.
type Report struct {
	Config            Config `json:"-"`
	Started, Finished time.Time
	Build             *BuildReport
	Background        *BackgroundReport `json:",omitempty"`
	Idle              *IdleReport       `json:",omitempty"`
	MemoryStart       *MemoryReport
	MemoryEnd         *MemoryReport
	Phases            []*PhaseReport
}

// BuildReport describes the network once built.
type BuildReport struct {
	Nodes        int
	Duration     time.Duration
	RoutingTable float64 // peers per routing table, mean
	Cores        float64 // CPU cores used while building
}

// BackgroundReport describes the preloaded grants.
type BackgroundReport struct {
	Grants, Pairs, MapPages int
	Duration                time.Duration
	Cores                   float64
}

// IdleReport is the traffic of a network where nobody operates.
type IdleReport struct {
	Duration                                                       time.Duration
	ServedPerNodeMinute, RequestsPerNodeMinute, BytesPerNodeMinute float64
	Cores                                                          float64
}

// MemoryReport is the process's memory and the stores' size, per running
// node (the users' few clients are counted in).
type MemoryReport struct {
	Nodes, Users                                int
	HeapPerNode, StackPerNode, SysPerNode       float64 // bytes
	GoroutinesPerNode                           float64
	StorePerNode                                float64 // bytes of LMDB files on tmpfs
	RSSPerNode                                  float64 // the process's resident memory
	RoutingTable, Connections, FragmentsPerNode float64
}

// OpStats summarizes one kind of operation.
type OpStats struct {
	Kind       string
	Count, OK  int
	Latency    Dist // ms, successful operations
	RoundTrips Dist // the longest chain of network waits, successful operations
	Requests   Dist // requests sent by the user's machine (DHT and kadre RPC)
	RPCs       Dist // of which kadre RPCs
	Peers      Dist // machines sent a request
	Bytes      Dist // bytes sent and received by the user's machine
	Dials      Dist // new connections opened
	// Stalls are the mean waits per operation that lasted 20 round trips
	// or more (timeouts), by kind: dial, dht (a lookup's query), rpc.
	Stalls     map[string]float64
	Unanswered Dist
	Errors     map[string]int
}

// CaptureReport is one sybil stage's capture measurement, for the victim
// owner (whose pair the ground sybils surround) or for the other owners.
type CaptureReport struct {
	Who                    string
	Honest, Sybils, Ground int
	M, N                   int
	// F is the attacker's share of the network, FSampled its share of
	// the samples placement chooses from (SampleSize nodes on average).
	F, FSampled, SampleSize float64
	SampledPerPlacement     float64
	Trials, Failed          int
	Histogram               []int // placements by number of sybil holders
	Captured                int   // placements with at least M sybil holders
	Rate, Lo, Hi            float64
	// Formula is P at F, FormulaSampled at FSampled, Finite the
	// hypergeometric value for the sample sizes seen.
	Formula, FormulaSampled, Finite float64
	// Within says whether the formula at FSampled lies in [Lo, Hi].
	Within bool
}

func (c *CaptureReport) finish() {
	if c.Trials == 0 {
		return
	}
	c.Rate = float64(c.Captured) / float64(c.Trials)
	c.Lo, c.Hi = ClopperPearson(c.Captured, c.Trials, 0.05)
	c.Formula = CaptureProbability(c.N, c.M, c.F)
	c.FormulaSampled = CaptureProbability(c.N, c.M, c.FSampled)
	s := int(c.SampleSize + 0.5)
	c.Finite = CaptureProbabilityFinite(c.N, c.M, s, int(c.FSampled*float64(s)+0.5))
	c.Within = c.Lo <= c.FormulaSampled && c.FormulaSampled <= c.Hi
}

// ChurnReport counts the churn events.
type ChurnReport struct {
	Left, Retired, Joined int
	Held                  int       // fragments the retiring nodes held when they began
	Moved, Kept           int       // fragments handed off, and refused by every node tried (lost)
	RetireTimeouts        int       // retirements cut off by the timeout
	RetireTime            []float64 // ms per retirement
}

// FaultReport says what the faults phase broke.
type FaultReport struct {
	Dead, Slow, Liars int
	SlowDelay         time.Duration
}

// PhaseReport is one phase's measurements.
type PhaseReport struct {
	Name  string
	Nodes int // running at the end
	mu    sync.Mutex
	ops   map[string][]Sample
	Ops   []*OpStats
	// Decryptions of grants with at least m honest holders up when they
	// started (Eligible) must succeed; the others may fail.
	Eligible, EligibleOK     int
	Ineligible, IneligibleOK int
	Captures                 []*CaptureReport `json:",omitempty"`
	Churn                    *ChurnReport     `json:",omitempty"`
	Faults                   *FaultReport     `json:",omitempty"`
	// SybilsNotJoined is how many of a sybil stage's new nodes could not
	// join (their bootstrap peers did not answer in time; Sim.startSybils).
	SybilsNotJoined int `json:",omitempty"`
	Cores           float64
	Duration        time.Duration
	// Load is the machine's load average (1 min) at the phase's end: other
	// work on the machine delays the simulation's.
	Load  float64
	start time.Time
	sim   *Sim
}

func newPhase(name string, s *Sim) *PhaseReport {
	return &PhaseReport{Name: name, ops: map[string][]Sample{}, start: time.Now(), sim: s}
}

func (p *PhaseReport) add(smp Sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops[smp.Kind] = append(p.ops[smp.Kind], smp)
}

func (p *PhaseReport) addDecrypt(smp Sample, eligible bool) {
	p.add(smp)
	p.mu.Lock()
	defer p.mu.Unlock()
	if eligible {
		p.Eligible++
		if smp.Err == nil {
			p.EligibleOK++
		}
	} else {
		p.Ineligible++
		if smp.Err == nil {
			p.IneligibleOK++
		}
	}
}

// finish closes the phase's figures and logs its summary.
func (p *PhaseReport) finish(cores float64) {
	p.mu.Lock()
	p.Cores, p.Duration, p.Load = cores, time.Since(p.start), loadAverage()
	p.Nodes = len(p.sim.alive(-1))
	kinds := make([]string, 0, len(p.ops))
	for k := range p.ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		p.Ops = append(p.Ops, opStats(k, p.ops[k]))
	}
	p.mu.Unlock()
	p.sim.cfg.Logf("%s", p.Summary())
}

// Op returns the stats of one kind, nil if none ran.
func (p *PhaseReport) Op(kind string) *OpStats {
	for _, o := range p.Ops {
		if o.Kind == kind {
			return o
		}
	}
	return nil
}

func opStats(kind string, ss []Sample) *OpStats {
	o := &OpStats{Kind: kind, Count: len(ss), Errors: map[string]int{}, Stalls: map[string]float64{}}
	var lat, rt, req, rpcs, peers, by, dials, unans []float64
	for _, s := range ss {
		for k, v := range s.Stalls {
			o.Stalls[k] += float64(v) / float64(len(ss))
		}
		unans = append(unans, float64(s.Unanswered))
		if s.Err != nil {
			o.Errors[errClass(s.Err)]++
			continue
		}
		o.OK++
		lat = append(lat, ms(s.Duration))
		rt = append(rt, float64(s.RoundTrips))
		req = append(req, float64(s.Net.Requests))
		rpcs = append(rpcs, float64(s.Net.RPCs))
		peers = append(peers, float64(s.Peers))
		by = append(by, float64(s.Net.BytesOut+s.Net.BytesIn))
		dials = append(dials, float64(s.Net.Dials))
	}
	o.Latency, o.RoundTrips, o.Requests, o.RPCs, o.Peers, o.Bytes, o.Dials = distOf(lat), distOf(rt), distOf(req), distOf(rpcs), distOf(peers), distOf(by), distOf(dials)
	o.Unanswered = distOf(unans)
	return o
}

// Summary is one line per phase for logs.
func (p *PhaseReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, %.2f cores, load %.1f):", p.Name, p.Duration.Round(time.Second), p.Cores, p.Load)
	for _, o := range p.Ops {
		fmt.Fprintf(&b, " %s %d/%d p50 %.0f ms p99 %.0f ms %.0f/%.0f RTT %.0f req", o.Kind, o.OK, o.Count,
			o.Latency.P50, o.Latency.P99, o.RoundTrips.P50, o.RoundTrips.P99, o.Requests.Mean)
		for k, v := range o.Errors {
			fmt.Fprintf(&b, " [%s ×%d]", k, v)
		}
		b.WriteString(";")
	}
	if p.Eligible+p.Ineligible > 0 {
		fmt.Fprintf(&b, " decrypt eligible %d/%d, other %d/%d;", p.EligibleOK, p.Eligible, p.IneligibleOK, p.Ineligible)
	}
	for _, c := range p.Captures {
		fmt.Fprintf(&b, " capture (%s) %d/%d = %.4f [%.4f, %.4f] vs P(f=%.3f sampled)=%.4f, P(f=%.3f)=%.4f;", c.Who, c.Captured, c.Trials, c.Rate, c.Lo, c.Hi,
			c.FSampled, c.FormulaSampled, c.F, c.Formula)
	}
	if p.SybilsNotJoined > 0 {
		fmt.Fprintf(&b, " %d sybils did not join;", p.SybilsNotJoined)
	}
	if c := p.Churn; c != nil {
		fmt.Fprintf(&b, " churn left %d retired %d joined %d, moved %d kept %d;", c.Left, c.Retired, c.Joined, c.Moved, c.Kept)
	}
	return b.String()
}

// Markdown writes the report as the tables of BENCHMARKS.md.
func (r *Report) Markdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "nodes %d, users %d, RTT %s ±%.0f%% (+exp. %s per message), %d measured grants and %d decryptions per phase, %d background grants, concurrency %d, seed %d\n\n",
		c.Nodes, c.Users, c.Net.RTT, 100*c.Net.Jitter, c.Net.MessageJitter, c.Grants, c.Decrypts, c.Background, c.Concurrency, c.Seed)
	if b := r.Build; b != nil {
		fmt.Fprintf(w, "build: %d nodes in %s, routing tables %.1f peers, %.2f cores\n", b.Nodes, b.Duration.Round(time.Second), b.RoutingTable, b.Cores)
	}
	if b := r.Background; b != nil {
		fmt.Fprintf(w, "background: %d grants (%d pairs, %d map pages written) in %s, %.2f cores\n", b.Grants, b.Pairs, b.MapPages, b.Duration.Round(time.Second), b.Cores)
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(w, "idle (%s): %.1f requests served and %.1f sent per node per minute, %.0f bytes per node per minute, %.2f cores\n",
			i.Duration, i.ServedPerNodeMinute, i.RequestsPerNodeMinute, i.BytesPerNodeMinute, i.Cores)
	}
	for _, m := range []*MemoryReport{r.MemoryStart, r.MemoryEnd} {
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "memory (%d nodes): heap %.2f MiB, stacks %.2f MiB, Go runtime total %.2f MiB, resident %.2f MiB, store %.2f MiB per node; %.0f goroutines, routing table %.1f, connections %.1f, fragments %.1f per node\n",
			m.Nodes, m.HeapPerNode/(1<<20), m.StackPerNode/(1<<20), m.SysPerNode/(1<<20), m.RSSPerNode/(1<<20), m.StorePerNode/(1<<20), m.GoroutinesPerNode, m.RoutingTable, m.Connections, m.FragmentsPerNode)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| phase | operation | ok | p50 ms | p99 ms | p50 RTT | p99 RTT | requests (RPC) | nodes asked | KiB | new conns | stalls dial/dht/rpc | errors |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, p := range r.Phases {
		for _, o := range p.Ops {
			var errs []string
			for k, v := range o.Errors {
				errs = append(errs, fmt.Sprintf("%s ×%d", k, v))
			}
			sort.Strings(errs)
			fmt.Fprintf(w, "| %s | %s | %d/%d | %.0f | %.0f | %.0f | %.0f | %.0f (%.0f) | %.0f | %.1f | %.1f | %.2f/%.2f/%.2f | %s |\n", p.Name, o.Kind, o.OK, o.Count,
				o.Latency.P50, o.Latency.P99, o.RoundTrips.P50, o.RoundTrips.P99, o.Requests.Mean, o.RPCs.Mean, o.Peers.Mean, o.Bytes.Mean/1024, o.Dials.Mean,
				o.Stalls[waitDial], o.Stalls[waitDHT], o.Stalls[waitRPC], strings.Join(errs, ", "))
		}
	}
	fmt.Fprintln(w)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "- %s: %s, %d nodes at the end, %.2f cores used (machine load %.1f)", p.Name, p.Duration.Round(time.Second), p.Nodes, p.Cores, p.Load)
		if p.Eligible+p.Ineligible > 0 {
			fmt.Fprintf(w, "; decryptions with ≥ m honest holders up: %d/%d succeeded; with fewer: %d/%d", p.EligibleOK, p.Eligible, p.IneligibleOK, p.Ineligible)
		}
		if c := p.Churn; c != nil {
			rt := distOf(c.RetireTime)
			fmt.Fprintf(w, "; churn: %d left, %d retired (of the %d fragments they held, %d handed off and %d refused everywhere; %d retirements cut off by the timeout, p50 %.1f s each), %d joined",
				c.Left, c.Retired, c.Held, c.Moved, c.Kept, c.RetireTimeouts, rt.P50/1000, c.Joined)
		}
		if f := p.Faults; f != nil {
			fmt.Fprintf(w, "; faults: %d dead, %d slow (+%s one way), %d liars", f.Dead, f.Slow, f.SlowDelay, f.Liars)
		}
		fmt.Fprintln(w)
	}
	var caps []*CaptureReport
	for _, p := range r.Phases {
		caps = append(caps, p.Captures...)
	}
	if len(caps) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| f (network) | ground | owners | f (sampled) | sample | placements | sybil holders 0/1/2/3/4/5 | captured | rate [95% CI] | P(f sampled) | P(f network) | in CI |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, c := range caps {
			h := make([]string, len(c.Histogram))
			for i, v := range c.Histogram {
				h[i] = fmt.Sprint(v)
			}
			fmt.Fprintf(w, "| %.3f (%d/%d) | %d | %s | %.3f | %.0f | %d | %s | %d | %.4f [%.4f, %.4f] | %.4f | %.4f | %v |\n",
				c.F, c.Sybils, c.Sybils+c.Honest, c.Ground, c.Who, c.FSampled, c.SampleSize, c.Trials, strings.Join(h, "/"), c.Captured, c.Rate, c.Lo, c.Hi,
				c.FormulaSampled, c.Formula, c.Within)
		}
	}
}

// loadAverage is the machine's 1-minute load average, 0 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}
