// Command bench-agent measures, side by side in one run, decrypting many
// small files under one grant on a testnet of real `kadre run` processes
// on loopback addresses of their own: one `kadre decrypt` per file (the
// way before the agent), the CLI's many-file mode alone, the CLI's
// many-file mode through a running agent, and the agent's batch API
// called directly; then the nodes' CPU per capsule during the batch
// against a bare rekey.Reencrypt measured in this process.
//
//	go run ./scripts/bench-agent                    # 10 nodes, 1,000 files
//	go run ./scripts/bench-agent -files 200 -loop 50
//
// Every output is compared with its plaintext; the nodes run with kadre's
// default settings (the per-peer rate of 200 requests/s included).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/internal/testnet"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

func main() {
	nodes := flag.Int("nodes", 10, "kadre nodes")
	files := flag.Int("files", 1000, "small files under one grant")
	loop := flag.Int("loop", 0, "files decrypted one command each (default: -files)")
	size := flag.Int("size", 200, "bytes per file")
	keep := flag.Bool("keep", false, "keep the work directory")
	profile := flag.String("profile", "", "write a CPU profile of every node during the batch API call to this directory")
	flag.Parse()
	if *loop == 0 {
		*loop = *files
	}
	if err := run(*nodes, *files, *loop, *size, *keep, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench-agent:", err)
		os.Exit(1)
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func run(nNodes, nFiles, nLoop, size int, keep bool, profile string) error {
	work, err := os.MkdirTemp("", "kadre-bench-agent")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work directory:", work)
	}
	fmt.Printf("bench-agent: %d nodes, %d files of %d bytes, loop over %d; %s, load average %s\n",
		nNodes, nFiles, size, nLoop, time.Now().UTC().Format(time.RFC3339), loadavg())
	bin, err := testnet.BuildKadre(work)
	if err != nil {
		return err
	}
	cl, err := testnet.StartCluster(testnet.ClusterOptions{Bin: bin, Dir: filepath.Join(work, "nodes"), Size: nNodes, Metrics: true})
	if err != nil {
		return err
	}
	defer cl.Stop()
	if err := cl.WaitConverged(context.Background(), 60*time.Second); err != nil {
		return err
	}
	cli := cl.NewCLI(bin)
	must := func(home string, args ...string) (string, error) {
		out, err := cli.Run(home, args...)
		if err == nil && out.Code != 0 {
			err = fmt.Errorf("kadre %s: exit %d: %s%s", strings.Join(args, " "), out.Code, out.Stdout, out.Stderr)
		}
		return out.Stdout, err
	}
	alice, bob := filepath.Join(work, "alice"), filepath.Join(work, "bob")
	if _, err := must(alice, "keygen"); err != nil {
		return err
	}
	out, err := must(bob, "keygen")
	if err != nil {
		return err
	}
	bobID := strings.TrimSpace(out)
	if _, err := must(alice, "grant", "-to", bobID, "-path", "/bench", "-m", "3", "-n", "5"); err != nil {
		return err
	}
	plainDir := filepath.Join(work, "plain")
	os.MkdirAll(plainDir, 0o700)
	contents := map[string][]byte{}
	for i := range nFiles {
		name := fmt.Sprintf("f%04d.txt", i)
		b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(b, name)
		contents[name] = b
		os.WriteFile(filepath.Join(plainDir, name), b, 0o600)
	}
	if _, err := must(alice, "encrypt", "-path", "/bench", "-r", plainDir); err != nil {
		return err
	}
	encDir := filepath.Join(work, "enc")
	os.MkdirAll(encDir, 0o700)
	for name := range contents {
		if err := os.Rename(filepath.Join(plainDir, name+".kadre"), filepath.Join(encDir, name+".kadre")); err != nil {
			return err
		}
	}
	check := func(dir string, names []string) error {
		for _, name := range names {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, contents[name]) {
				return fmt.Errorf("%s: wrong output (%v)", filepath.Join(dir, name), err)
			}
		}
		return nil
	}
	var all []string
	for name := range contents {
		all = append(all, name)
	}
	rest := func() { time.Sleep(3 * time.Second) } // the nodes' per-peer buckets refill

	// 1. One command per file.
	loopDir := filepath.Join(work, "loop")
	os.MkdirAll(loopDir, 0o700)
	start := time.Now()
	for _, name := range all[:nLoop] {
		if _, err := must(bob, "decrypt", "-no-agent", "-o", filepath.Join(loopDir, name), filepath.Join(encDir, name+".kadre")); err != nil {
			return err
		}
	}
	tLoop := time.Since(start)
	if err := check(loopDir, all[:nLoop]); err != nil {
		return err
	}
	perFile := tLoop / time.Duration(nLoop)
	rest()

	// 2. The CLI's many-file mode, alone.
	start = time.Now()
	if _, err := must(bob, "decrypt", "-no-agent", "-r", "-o", filepath.Join(work, "many"), encDir); err != nil {
		return err
	}
	tMany := time.Since(start)
	if err := check(filepath.Join(work, "many"), all); err != nil {
		return err
	}
	rest()

	// 3. The same through a running agent (started before, not counted).
	ag, err := cli.StartAgent(bob)
	if err != nil {
		return err
	}
	defer ag.Stop()
	if _, err := must(bob, "status"); err != nil { // the agent has joined
		return err
	}
	rest()
	start = time.Now()
	if _, err := must(bob, "decrypt", "-r", "-o", filepath.Join(work, "agent"), encDir); err != nil {
		return err
	}
	tAgent := time.Since(start)
	if err := check(filepath.Join(work, "agent"), all); err != nil {
		return err
	}
	rest()

	// 4. The agent's batch API, as a program calls it; the nodes' CPU
	// meanwhile.
	remote, err := agent.Discover(context.Background(), bob)
	if err != nil || remote == nil {
		return fmt.Errorf("no agent: %v", err)
	}
	req := agent.BatchRequest{}
	for _, name := range all {
		b, err := os.ReadFile(filepath.Join(encDir, name+".kadre"))
		if err != nil {
			return err
		}
		req.Files = append(req.Files, agent.BatchFile{Name: name, Data: b})
	}
	body, _ := json.Marshal(req)
	// The nodes' CPU when idle (DHT upkeep), to subtract.
	idle0, idleStart := nodesCPU(cl), time.Now()
	time.Sleep(3 * time.Second)
	idleRate := float64(nodesCPU(cl)-idle0) / float64(time.Since(idleStart))
	cpu0 := nodesCPU(cl)
	profiled := profileNodes(cl, profile)
	start = time.Now()
	hreq, _ := http.NewRequest("POST", remote.URL+"/v1/decrypt-batch", bytes.NewReader(body))
	hreq.Header.Set("Authorization", "Bearer "+remote.Token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return err
	}
	var br agent.BatchResponse
	err = json.NewDecoder(resp.Body).Decode(&br)
	resp.Body.Close()
	tAPI := time.Since(start)
	nodeCPU := nodesCPU(cl) - cpu0
	profiled()
	if err != nil || br.OK != nFiles {
		return fmt.Errorf("batch API: %d of %d files (%v)", br.OK, nFiles, err)
	}
	for _, r := range br.Results {
		if !bytes.Equal(r.Plaintext, contents[r.Name]) {
			return fmt.Errorf("batch API: %s differs", r.Name)
		}
	}
	capsules := nFiles * 3 // m cfrags per file; the batch asks m holders per file
	bare := bareReencrypt(8000)
	idleCPU := time.Duration(idleRate * float64(tAPI))
	perCapsule := (nodeCPU - idleCPU) / time.Duration(capsules)

	fmt.Println()
	fmt.Printf("| way | files | wall | per file | vs. one command per file |\n| --- | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| one `kadre decrypt` per file | %d | %s | %s | 1.0× |\n", nLoop, round(tLoop), round(perFile))
	loopAll := perFile * time.Duration(nFiles)
	row := func(what string, d time.Duration) {
		fmt.Printf("| %s | %d | %s | %s | %.1f× faster |\n", what, nFiles, round(d), round(d/time.Duration(nFiles)), float64(loopAll)/float64(d))
	}
	row("`kadre decrypt -r`, alone", tMany)
	row("`kadre decrypt -r` through `kadre agent`", tAgent)
	row("`POST /v1/decrypt-batch` to the agent", tAPI)
	fmt.Printf("\n(one command per file over %d files: %s projected from the %d timed)\n", nFiles, round(loopAll), nLoop)
	fmt.Printf("target: ≤ 5 s through the agent: CLI %s, API %s: %s\n", round(tAgent), round(tAPI), verdict(tAgent <= 5*time.Second && tAPI <= 5*time.Second))
	fmt.Printf("\nnode CPU during the batch API call: %s, less %s of idle upkeep (%.1f%% of a core, measured just before), for %d capsules = %s per capsule (all of the nodes' work: Noise, yamux, frames, lookups)\n",
		round(nodeCPU), round(idleCPU), 100*idleRate, capsules, perCapsule.Round(time.Microsecond))
	fmt.Printf("bare rekey.Reencrypt in this process: %s\n", bare.Round(time.Microsecond))
	fmt.Printf("ratio %.2f, target ≤ 1.3: %s\n", float64(perCapsule)/float64(bare), verdict(float64(perCapsule) <= 1.3*float64(bare)))
	fmt.Printf("load average at the end: %s\n", loadavg())
	return nil
}

// profileNodes starts a 3 s CPU profile of every node (into dir) and
// returns a function that waits for them.
func profileNodes(cl *testnet.Cluster, dir string) func() {
	if dir == "" {
		return func() {}
	}
	os.MkdirAll(dir, 0o755)
	done := make(chan struct{}, len(cl.Nodes))
	for i, n := range cl.Nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := http.Get("http://" + n.MetricsAddr() + "/debug/pprof/profile?seconds=3")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.pprof", i)))
			if err != nil {
				return
			}
			defer f.Close()
			io.Copy(f, resp.Body)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	return func() {
		for range cl.Nodes {
			<-done
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// nodesCPU is the CPU time used so far by every node process.
func nodesCPU(cl *testnet.Cluster) time.Duration {
	var sum time.Duration
	for _, n := range cl.Nodes {
		if d, err := testnet.CPUTime(n.PID()); err == nil {
			sum += d
		}
	}
	return sum
}

// bareReencrypt is the CPU time of one rekey.Reencrypt (a parsed capsule
// and a verified kfrag), one goroutine, n times.
func bareReencrypt(n int) time.Duration {
	seed := bytes.Repeat([]byte{7}, 32)
	owner, _ := rekey.NewKeyring(seed)
	seed[0] = 8
	bob, _ := rekey.NewKeyring(seed)
	gs, err := policy.NewGrants(owner, policy.GrantParams{Recipient: policy.IdentityOf(bob), Prefix: policy.MustNormalizePath("/b"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(time.Now().Add(time.Hour).Unix())})
	if err != nil {
		panic(err)
	}
	vkf, err := policy.VerifyGrantKFrag(gs[0])
	if err != nil {
		panic(err)
	}
	capsule, _, err := rekey.Encrypt(policy.DelegatingKey(owner, policy.MustNormalizePath("/b"), 0).PublicKey(), []byte("k"))
	if err != nil {
		panic(err)
	}
	for range 200 { // warm up
		rekey.Reencrypt(capsule, vkf)
	}
	c0 := testnet.SelfCPUTime()
	for range n {
		rekey.Reencrypt(capsule, vkf)
	}
	return (testnet.SelfCPUTime() - c0) / time.Duration(n)
}
