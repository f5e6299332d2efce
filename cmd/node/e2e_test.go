package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests: the real kadre binary, real node processes on
// 127.0.0.1, the CLI as a separate process for every command.

var kadreBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kadre-e2e")
	if err != nil {
		panic(err)
	}
	kadreBin = filepath.Join(dir, "kadre")
	build := exec.Command("go", "build", "-o", kadreBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build kadre:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type nodeProc struct {
	dir   string
	cmd   *exec.Cmd
	peer  string
	addrs []string
	log   *bytes.Buffer
}

// startNodeProc runs `kadre run` and waits until it wrote node.json.
func startNodeProc(t *testing.T, dir string, bootstrap []string, listen string, extra ...string) *nodeProc {
	t.Helper()
	if listen == "" {
		listen = "/ip4/127.0.0.1/tcp/0"
	}
	os.Remove(filepath.Join(dir, nodeInfoFile))
	args := append([]string{"run", "-data-dir", dir, "-listen", listen, "-metrics-addr", "",
		"-bootstrap", strings.Join(bootstrap, ","), "-refresh-interval", "10s"}, extra...)
	cmd := exec.Command(kadreBin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nodeProc{dir: dir, cmd: cmd, log: &log}
	t.Cleanup(func() { n.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, nodeInfoFile))
		if err == nil {
			var info struct {
				PeerID string   `json:"peer_id"`
				Addrs  []string `json:"addrs"`
			}
			if json.Unmarshal(b, &info) == nil && info.PeerID != "" {
				n.peer, n.addrs = info.PeerID, info.Addrs
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node in %s did not start:\n%s", dir, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (n *nodeProc) stop(t *testing.T) {
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("node %s exited with %v:\n%s", n.peer, err, n.log.String())
		}
	case <-time.After(15 * time.Second):
		n.cmd.Process.Kill()
		<-done
		t.Errorf("node %s did not stop within 15 s of SIGTERM", n.peer)
	}
}

// kill sends SIGKILL.
func (n *nodeProc) kill() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
}

type cluster struct {
	t     *testing.T
	nodes []*nodeProc
	boot  []string
}

func startCluster(t *testing.T, size int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	for i := 0; i < size; i++ {
		n := startNodeProc(t, filepath.Join(base, fmt.Sprintf("node%d", i)), c.boot, "", extra...)
		c.nodes = append(c.nodes, n)
		if i < 2 {
			c.boot = append(c.boot, n.addrs...)
		}
	}
	// The CLI may bootstrap from any node: tests stop some of them.
	c.boot = nil
	for _, n := range c.nodes {
		c.boot = append(c.boot, n.addrs...)
	}
	// Every node finds every other one within a few refreshes; the first
	// CLI call also waits for its own routing table.
	time.Sleep(500 * time.Millisecond)
	return c
}

func (c *cluster) node(peer string) *nodeProc {
	for _, n := range c.nodes {
		if n.peer == peer {
			return n
		}
	}
	c.t.Fatalf("no node %s", peer)
	return nil
}

type result struct {
	stdout, stderr string
	code           int
}

// kadre runs one CLI command as a process.
func (c *cluster) kadre(home string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(kadreBin, args...)
	cmd.Env = append(os.Environ(), "KADRE_HOME="+home, "KADRE_BOOTSTRAP="+strings.Join(c.boot, ","), "KADRE_PASSPHRASE=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *cluster) must(home string, args ...string) string {
	c.t.Helper()
	r := c.kadre(home, args...)
	if r.code != 0 {
		c.t.Fatalf("kadre %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestCLIGrantRevoke(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	if !strings.HasPrefix(bobID, "kadre1") {
		t.Fatalf("keygen printed %q", bobID)
	}
	if got := strings.TrimSpace(c.must(bob, "identity")); got != bobID {
		t.Fatalf("identity %q, keygen said %q", got, bobID)
	}
	if r := c.kadre(bob, "keygen"); r.code == 0 || !strings.Contains(r.stderr, "kadre: hint:") {
		t.Fatalf("second keygen: %+v", r)
	}

	var st struct {
		Nodes []struct {
			Reachable bool `json:"reachable"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(c.must(alice, "status", "-json")), &st); err != nil {
		t.Fatal(err)
	}
	reachable := 0
	for _, n := range st.Nodes {
		if n.Reachable {
			reachable++
		}
	}
	if reachable < 5 {
		t.Fatalf("status sees %d reachable nodes", reachable)
	}

	var g grantRecord
	if err := json.Unmarshal([]byte(c.must(alice, "grant", "-to", bobID, "-path", "/docs/", "-m", "3", "-n", "5", "-expires", "7d", "-json")), &g); err != nil {
		t.Fatal(err)
	}
	if g.Path != "/docs" || len(g.Holders) != 5 {
		t.Fatalf("grant: %+v", g)
	}
	seen := map[string]bool{}
	for _, h := range g.Holders {
		if seen[h.Peer] {
			t.Fatalf("two fragments on %s", h.Peer)
		}
		seen[h.Peer] = true
		c.node(h.Peer)
	}
	if out := c.must(alice, "grants"); !strings.Contains(out, "/docs") || !strings.Contains(out, "3-of-5") || !strings.Contains(out, "live") {
		t.Fatalf("grants:\n%s", out)
	}
	// A grant longer than the nodes keep is refused with a hint.
	if r := c.kadre(alice, "grant", "-to", bobID, "-path", "/long", "-expires", "400d"); r.code == 0 || !strings.Contains(r.stderr, "kadre: error:") {
		t.Fatalf("400-day grant: %+v", r)
	}

	out := c.must(alice, "revoke", "-to", bobID, "-path", "/docs")
	if !strings.Contains(out, "the grant is dead") {
		t.Fatalf("revoke:\n%s", out)
	}
	if out := c.must(alice, "grants"); !strings.Contains(out, "revoked (5 receipts, dead)") {
		t.Fatalf("grants after revoke:\n%s", out)
	}
}

func TestRunConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "node.json")
	os.WriteFile(cfg, []byte(`{"data_dir": "x", "listn": ["/ip4/127.0.0.1/tcp/0"]}`), 0o600)
	r := (&cluster{t: t}).kadre(dir, "run", "-config", cfg)
	if r.code == 0 || !strings.Contains(r.stderr, `unknown field "listn"`) || !strings.Contains(r.stderr, "kadre: hint:") {
		t.Fatalf("unknown config key: %+v", r)
	}
	r = (&cluster{t: t}).kadre(dir, "run", "-data-dir", filepath.Join(dir, "d"), "-max-grant-duration", "10s")
	if r.code == 0 || !strings.Contains(r.stderr, "max_grant_duration") {
		t.Fatalf("invalid duration: %+v", r)
	}
	// A second node on the same data directory is refused clearly.
	d := filepath.Join(dir, "shared")
	startNodeProc(t, d, nil, "")
	r = (&cluster{t: t}).kadre(dir, "run", "-data-dir", d, "-listen", "/ip4/127.0.0.1/tcp/0", "-metrics-addr", "")
	if r.code == 0 || !strings.Contains(r.stderr, "in use by another process") {
		t.Fatalf("second node on one data dir: %+v", r)
	}
}

// The README's first command runs this script; run it here too, on ports
// of its own.
func TestTestnetDemo(t *testing.T) {
	dir := t.TempDir()
	port := 30000 + os.Getpid()%20000
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("../../scripts/testnet.sh", args...)
		cmd.Env = append(os.Environ(), "KADRE_TESTNET_DIR="+dir, fmt.Sprintf("KADRE_TESTNET_PORT=%d", port))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("testnet.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { run("down") })
	run("up", "6")
	out := run("demo")
	for _, want := range []string{"Q3 report", "decrypted: identical", "the grant is dead", "kadre: hint: the owner revoked this grant", "demo complete"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	if status := run("status"); strings.Count(status, `"peer_id"`) != 6 {
		t.Fatalf("status after the demo:\n%s", status)
	}
}

func TestCLIDecrypt(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob, eve := t.TempDir(), t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	c.must(eve, "keygen")
	var g grantRecord
	if err := json.Unmarshal([]byte(c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-json")), &g); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	plain := filepath.Join(work, "plan.txt")
	secret := bytes.Repeat([]byte("the plan, in detail. "), 10000) // several chunks
	os.WriteFile(plain, secret, 0o600)
	enc := filepath.Join(work, "plan.kadre")
	c.must(alice, "encrypt", "-path", "/docs/2026/plan.txt", "-o", enc, plain)

	decrypt := func(home string) result {
		out := filepath.Join(work, "out.txt")
		os.Remove(out)
		r := c.kadre(home, "decrypt", "-o", out, enc)
		if r.code == 0 {
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("decrypted content differs (%v)", err)
			}
		} else if _, err := os.Stat(out); err == nil {
			t.Fatal("a failed decryption left an output file")
		}
		return r
	}
	if r := decrypt(bob); r.code != 0 {
		t.Fatalf("bob: %+v", r)
	}
	if r := decrypt(alice); r.code != 0 {
		t.Fatalf("alice (owner, offline): %+v", r)
	}
	if r := decrypt(eve); r.code == 0 || !strings.Contains(r.stderr, "not granted") || !strings.Contains(r.stderr, "kadre: hint: no grant covers") {
		t.Fatalf("eve: %+v", r)
	}
	// Two holders die (kill -9): three remain, enough.
	for _, h := range g.Holders[:2] {
		c.node(h.Peer).kill()
	}
	if r := decrypt(bob); r.code != 0 {
		t.Fatalf("bob with 3 holders: %+v", r)
	}
	// A flipped byte in the body is detected.
	b, _ := os.ReadFile(enc)
	b[len(b)-100] ^= 1
	tampered := filepath.Join(work, "tampered.kadre")
	os.WriteFile(tampered, b, 0o600)
	if r := c.kadre(bob, "decrypt", "-o", filepath.Join(work, "t.txt"), tampered); r.code == 0 || !strings.Contains(r.stderr, "corrupt") {
		t.Fatalf("tampered file: %+v", r)
	}
	if r := c.kadre(bob, "decrypt", plain); r.code == 0 || !strings.Contains(r.stderr, "not a kadre file") {
		t.Fatalf("plain file: %+v", r)
	}
	// Revoked: refused, and said so.
	c.kadre(alice, "revoke", "-to", bobID, "-path", "/docs")
	if r := decrypt(bob); r.code == 0 || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("bob after revocation: %+v", r)
	}
}

// metricsAddr reads the node's local endpoint address from its log.
func (n *nodeProc) metricsAddr(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(n.log.String(), "\n") {
		if strings.Contains(line, `msg="metrics and status"`) {
			if i := strings.Index(line, "addr="); i >= 0 {
				return strings.Fields(line[i+len("addr="):])[0]
			}
		}
	}
	t.Fatalf("no metrics address in the log of %s", n.peer)
	return ""
}

// Holders retire with `kadre retire`; their fragments move and the
// recipient still decrypts after two more original holders die.
func TestCLIRetire(t *testing.T) {
	c := startCluster(t, 8, "-metrics-addr", "127.0.0.1:0")
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	var g grantRecord
	if err := json.Unmarshal([]byte(c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-json")), &g); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	plain, enc := filepath.Join(work, "a.txt"), filepath.Join(work, "a.kadre")
	os.WriteFile(plain, []byte("handed off"), 0o600)
	c.must(alice, "encrypt", "-path", "/docs/a.txt", "-o", enc, plain)
	// The local endpoints of a holder: JSON status and Prometheus metrics.
	holder := c.node(g.Holders[0].Peer)
	var st status
	getJSON(t, "http://"+holder.metricsAddr(t)+"/status", &st)
	if st.PeerID != holder.peer || st.Grants != 1 || st.RoutingTable < 5 {
		t.Fatalf("status: %+v", st)
	}
	metrics := get(t, "http://"+holder.metricsAddr(t)+"/metrics")
	for _, want := range []string{`kadre_requests_total{outcome="ok",type="store_grant"} 1`, "kadre_grants 1", "kadre_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics)
		}
	}
	for _, h := range g.Holders[:2] {
		n := c.node(h.Peer)
		out := c.must(bob, "retire", "-metrics-addr", n.metricsAddr(t))
		if !strings.Contains(out, "retiring") {
			t.Fatalf("retire: %q", out)
		}
		done := make(chan error, 1)
		go func() { done <- n.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("retired node exited with %v:\n%s", err, n.log.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("retired node did not stop:\n%s", n.log.String())
		}
		if !strings.Contains(n.log.String(), "moved=1") {
			t.Fatalf("the node did not hand its fragment off:\n%s", n.log.String())
		}
	}
	for _, h := range g.Holders[2:4] {
		c.node(h.Peer).kill()
	}
	if got := c.must(bob, "decrypt", enc); got != "handed off" {
		t.Fatalf("decrypted %q", got)
	}
	if out := c.must(alice, "grants", "-refresh"); !strings.Contains(out, "announced") {
		t.Fatalf("grants -refresh:\n%s", out)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatal(err)
	}
}
