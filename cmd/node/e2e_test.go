package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/testnet"
	"github.com/kadre/kadre/node"
)

// End-to-end tests: the real kadre binary, real node processes on
// 127.0.0.1 (the harness of internal/testnet), the CLI as a separate
// process for every command.

var kadreBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kadre-e2e")
	if err != nil {
		panic(err)
	}
	kadreBin, err = testnet.BuildKadre(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cluster struct {
	t *testing.T
	*testnet.Cluster
	cli *testnet.CLI
}

// startCluster starts size nodes, each with its local endpoint, and a CLI
// that bootstraps from all of them (tests stop some).
func startCluster(t *testing.T, size int, extra ...string) *cluster {
	t.Helper()
	tc, err := testnet.StartCluster(testnet.ClusterOptions{Bin: kadreBin, Dir: t.TempDir(), Size: size, Metrics: true, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tc.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := tc.WaitConverged(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, Cluster: tc, cli: tc.NewCLI(kadreBin)}
}

func (c *cluster) node(peerID string) *testnet.Node {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.ID.String() == peerID {
			return n
		}
	}
	c.t.Fatalf("no node %s", peerID)
	return nil
}

type result struct {
	stdout, stderr string
	code           int
}

// kadre runs one CLI command as a process.
func (c *cluster) kadre(home string, args ...string) result {
	c.t.Helper()
	cli := c.cli
	if cli == nil {
		cli = &testnet.CLI{Bin: kadreBin}
	}
	r, err := cli.Run(home, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
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

	var g client.GrantRecord
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
	if out := c.must(alice, "grants"); !strings.Contains(out, "revoked (5 of 5 fragments deleted, dead)") {
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
	port, err := testnet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	first := &testnet.Node{Name: "shared", Bin: kadreBin, Dir: d, Port: port}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Stop() })
	r = (&cluster{t: t}).kadre(dir, "run", "-data-dir", d, "-listen", "/ip4/127.0.0.1/tcp/0", "-metrics-addr", "")
	if r.code == 0 || !strings.Contains(r.stderr, "in use by another process") {
		t.Fatalf("second node on one data dir: %+v", r)
	}
}

// The README's first command runs this script; run it here too, on ports
// of its own.
func TestTestnetDemo(t *testing.T) {
	dir := t.TempDir()
	port, err := testnet.FreePortBlock(200) // libp2p at port+i, endpoints at port+100+i
	if err != nil {
		t.Fatal(err)
	}
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
	for _, want := range []string{"Q3 report", "decrypted: identical", "carol read dave's file, signed by dave", "signed by writer",
		"the grant is dead", "key epoch of /docs is now 1", "granted /docs again at epoch 1 to 1 of 1", "kadre: hint: the owner revoked this grant",
		"carol: both identical", "demo complete"} {
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
	var g client.GrantRecord
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
		c.node(h.Peer).Kill()
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

// Holders retire with `kadre retire`; their fragments move and the
// recipient still decrypts after two more original holders die.
func TestCLIRetire(t *testing.T) {
	c := startCluster(t, 8)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	var g client.GrantRecord
	if err := json.Unmarshal([]byte(c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-json")), &g); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	plain, enc := filepath.Join(work, "a.txt"), filepath.Join(work, "a.kadre")
	os.WriteFile(plain, []byte("handed off"), 0o600)
	c.must(alice, "encrypt", "-path", "/docs/a.txt", "-o", enc, plain)
	// The local endpoints of a holder: JSON status and Prometheus metrics.
	holder := c.node(g.Holders[0].Peer)
	var st node.Status
	getJSON(t, holder, "/status", &st)
	if st.PeerID != holder.ID.String() || st.Grants != 1 || st.RoutingTable < 5 {
		t.Fatalf("status: %+v", st)
	}
	// `kadre status -node` finds the endpoint and its token through the
	// data directory (node.json, endpoint.cookie).
	if err := json.Unmarshal([]byte(c.must(bob, "status", "-node", "-data-dir", holder.Dir, "-json")), &st); err != nil || st.PeerID != holder.ID.String() {
		t.Fatalf("status -node: %+v, %v", st, err)
	}
	// Without the token, or from a web page, the endpoint refuses.
	for _, r := range []struct {
		method, path, origin string
		want                 int
	}{{"GET", "/status", "", 401}, {"GET", "/metrics", "", 401}, {"POST", "/retire", "", 401},
		{"POST", "/retire", "https://example.com", 403}, {"GET", "/debug/pprof/", "", 401}} {
		req, _ := http.NewRequest(r.method, "http://"+holder.MetricsAddr()+r.path, strings.NewReader("x"))
		req.Header.Set("Content-Type", "text/plain")
		if r.origin != "" {
			req.Header.Set("Origin", r.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Fatalf("%s %s without token (origin %q): %s, want %d", r.method, r.path, r.origin, resp.Status, r.want)
		}
	}
	metrics := get(t, holder, "/metrics")
	for _, want := range []string{`kadre_requests_total{outcome="ok",type="store_grant"} 1`, "kadre_grants 1", "kadre_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics)
		}
	}
	for _, h := range g.Holders[:2] {
		n := c.node(h.Peer)
		out := c.must(bob, "retire", "-data-dir", n.Dir)
		if !strings.Contains(out, "retiring: 1 fragment handed off") || !strings.Contains(out, "0 kept") {
			t.Fatalf("retire: %q", out)
		}
		if err := n.Wait(30 * time.Second); err != nil {
			t.Fatalf("retired node: %v\n%s", err, n.Log())
		}
	}
	for _, h := range g.Holders[2:4] {
		c.node(h.Peer).Kill()
	}
	if got := c.must(bob, "decrypt", enc); got != "handed off" {
		t.Fatalf("decrypted %q", got)
	}
	// Of the five holders by the map, the two that took the hand-offs and
	// the one left alive answer.
	out := c.must(alice, "grants", "-refresh", "-json")
	var gs []client.GrantStatus
	if err := json.Unmarshal([]byte(out), &gs); err != nil || len(gs) != 1 {
		t.Fatalf("grants -refresh: %v\n%s", err, out)
	}
	answered := 0
	for _, ok := range gs[0].Reachable {
		if ok {
			answered++
		}
	}
	if answered != 3 || len(gs[0].Reachable) != 5 {
		t.Fatalf("grants -refresh: %d of %d holders answer, want 3 of 5\n%s", answered, len(gs[0].Reachable), out)
	}
}

// get reads path from n's local endpoint with the token of its cookie.
func get(t *testing.T, n *testnet.Node, path string) string {
	t.Helper()
	resp, err := n.Endpoint(context.Background(), "GET", path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return string(b)
}

func getJSON(t *testing.T, n *testnet.Node, path string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, n, path)), v); err != nil {
		t.Fatal(err)
	}
}

// A holder stops, is backed up with `kadre backup`, restored with `kadre
// restore` into a new data directory and started from there: the same
// peer, and the recipient decrypts through it.
func TestCLIBackupRestore(t *testing.T) {
	c := startCluster(t, 3)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	var g client.GrantRecord
	if err := json.Unmarshal([]byte(c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-m", "1", "-n", "1", "-json")), &g); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	plain, enc := filepath.Join(work, "a.txt"), filepath.Join(work, "a.kadre")
	os.WriteFile(plain, []byte("restored"), 0o600)
	c.must(alice, "encrypt", "-path", "/docs/a.txt", "-o", enc, plain)
	holder := c.node(g.Holders[0].Peer)
	backup := filepath.Join(work, "node.backup")
	c.cli.Env = append(c.cli.Env, "KADRE_BACKUP_PASSPHRASE=correct horse battery")
	if r := c.kadre(alice, "backup", "-data-dir", holder.Dir, "-o", backup); r.code == 0 || !strings.Contains(r.stderr, "stop it first") {
		t.Fatalf("backup of a running node: %+v", r)
	}
	if err := holder.Stop(); err != nil {
		t.Fatal(err)
	}
	if out := c.must(alice, "backup", "-data-dir", holder.Dir, "-o", backup); !strings.Contains(out, "1 grant") {
		t.Fatalf("backup: %s", out)
	}
	restored := filepath.Join(work, "restored")
	if out := c.must(alice, "restore", "-data-dir", restored, "-i", backup); !strings.Contains(out, "1 grant") {
		t.Fatalf("restore: %s", out)
	}
	holder.Dir = restored
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if holder.ID.String() != g.Holders[0].Peer {
		t.Fatalf("the restored node is %s, the holder was %s", holder.ID, g.Holders[0].Peer)
	}
	if got := c.must(bob, "decrypt", enc); got != "restored" {
		t.Fatalf("decrypted %q", got)
	}
}
