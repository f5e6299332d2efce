package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kadre/kadre/internal/testnet"
)

// writeFiles creates n small files under dir (a third of them in a
// subdirectory) and returns their contents by path relative to dir.
func writeFiles(t *testing.T, dir, prefix string, n int) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		rel := fmt.Sprintf("%s%d.txt", prefix, i)
		if i%3 == 0 {
			rel = filepath.Join("sub", rel)
		}
		content := fmt.Sprintf("content of %s, %d", rel, i)
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		files[rel] = content
	}
	return files
}

// summary is `-json` of a many-file run.
type summary struct {
	Files []struct {
		Input  string `json:"input"`
		Output string `json:"output"`
		Path   string `json:"path"`
		OK     bool   `json:"ok"`
		Error  *struct {
			Code, Message, Hint string
		} `json:"error"`
	} `json:"files"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
}

// Many files at once: a directory encrypted under a prefix and decrypted
// elsewhere, the run going on past files that fail, each with its code,
// and no partial output.
func TestCLIManyFiles(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-m", "2", "-n", "3")
	dir := t.TempDir()
	files := writeFiles(t, dir, "f", 40)
	os.WriteFile(filepath.Join(dir, "already.kadre"), []byte("left out of encrypt -r"), 0o600)
	out := c.must(alice, "encrypt", "-path", "/docs", "-r", dir)
	if !strings.Contains(out, "encrypted 40 of 40 files; 0 failed") || strings.Contains(out, "already.kadre →") {
		t.Fatalf("encrypt -r:\n%s", out)
	}
	// The file's path is the prefix and its path inside the directory.
	r := c.kadre(bob, "decrypt", "-o", filepath.Join(t.TempDir(), "x"), filepath.Join(dir, "sub", "f3.txt.kadre"))
	if r.code != 0 || !strings.Contains(r.stderr, "/docs/sub/f3.txt, signed by its owner") {
		t.Fatalf("one file: %+v", r)
	}
	// Again: every output exists, nothing is replaced without -force.
	r = c.kadre(alice, "encrypt", "-path", "/docs", "-r", dir)
	if r.code != 1 || strings.Count(r.stdout, "exists") != 40 || !strings.Contains(r.stderr, "kadre: hint: pass -force") {
		t.Fatalf("encrypt -r again: %+v", r)
	}
	c.must(alice, "encrypt", "-path", "/docs", "-r", "-force", dir)

	// A second directory with files that fail, each its own way.
	mixed := t.TempDir()
	good := filepath.Join(dir, "f1.txt.kadre")
	b, _ := os.ReadFile(good)
	os.WriteFile(filepath.Join(mixed, "good.kadre"), b, 0o600)
	corrupt := bytes.Clone(b)
	corrupt[len(corrupt)-5] ^= 1
	os.WriteFile(filepath.Join(mixed, "corrupt.kadre"), corrupt, 0o600)
	os.WriteFile(filepath.Join(mixed, "junk.kadre"), []byte("not a kadre file"), 0o600)
	other := filepath.Join(t.TempDir(), "o.txt")
	os.WriteFile(other, []byte("not granted"), 0o600)
	c.must(alice, "encrypt", "-path", "/other/o.txt", "-o", filepath.Join(mixed, "other.kadre"), other)

	outDir := filepath.Join(t.TempDir(), "out")
	r = c.kadre(bob, "decrypt", "-r", "-json", "-o", outDir, dir, mixed)
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != 1 {
		t.Fatalf("decrypt -r -json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	// dir's already.kadre is not a kadre file either.
	if s.OK != 41 || s.Failed != 4 || len(s.Files) != 45 {
		t.Fatalf("%d ok, %d failed of %d", s.OK, s.Failed, len(s.Files))
	}
	want := map[string]string{"corrupt.kadre": "CORRUPT", "junk.kadre": "NOT_KADRE_FILE", "other.kadre": "NOT_GRANTED", "already.kadre": "NOT_KADRE_FILE"}
	for _, f := range s.Files {
		base := filepath.Base(f.Input)
		if code, bad := want[base]; bad {
			if f.OK || f.Error == nil || f.Error.Code != code || f.Error.Hint == "" {
				t.Fatalf("%s: %+v", f.Input, f)
			}
			if _, err := os.Stat(f.Output); !os.IsNotExist(err) {
				t.Fatalf("%s left an output: %v", f.Input, err)
			}
			continue
		}
		if !f.OK {
			t.Fatalf("%s: %+v", f.Input, f.Error)
		}
	}
	for rel, content := range files {
		got, err := os.ReadFile(filepath.Join(outDir, rel))
		if err != nil || string(got) != content {
			t.Fatalf("%s: %q, %v", rel, got, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(outDir, "good")); string(got) != files["f1.txt"] {
		t.Fatalf("good: %q", got)
	}
	// Without -json: a line per file, the totals, each hint once.
	r = c.kadre(bob, "decrypt", "-r", "-force", "-o", outDir, mixed)
	if r.code != 1 || !strings.Contains(r.stdout, "ok      "+filepath.Join(mixed, "good.kadre")) || !strings.Contains(r.stdout, "failed  "+filepath.Join(mixed, "junk.kadre")) ||
		!strings.Contains(r.stdout, "decrypted 1 of 4 files; 3 failed") || strings.Count(r.stderr, "kadre: hint: no grant covers") != 1 {
		t.Fatalf("decrypt -r:\n%s\n%s", r.stdout, r.stderr)
	}
}

// A grant that no node would keep is refused before anything is split;
// one that some nodes keep and others refuse says why each refused.
func TestCLIGrantExplains(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	r := c.kadre(alice, "grant", "-to", bobID, "-path", "/long", "-expires", "400d")
	if r.code != 1 || !strings.Contains(r.stderr, "0 of the 6 reachable nodes would keep a grant of 400d (the longest any of them keeps is 90d)") ||
		!strings.Contains(r.stderr, "kadre: hint: choose a shorter -expires") || strings.Contains(r.stdout, "granted") {
		t.Fatalf("400 days: %+v", r)
	}
	if out := c.must(alice, "grants"); !strings.Contains(out, "no grants yet") {
		t.Fatalf("a refused grant was recorded:\n%s", out)
	}
	// Half the nodes keep grants 30 days only.
	for _, n := range c.Nodes[3:] {
		n.Stop()
		n.Extra = append(n.Extra, "-max-grant-duration", "30d")
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	r = c.kadre(alice, "grant", "-to", bobID, "-path", "/mid", "-m", "2", "-n", "5", "-expires", "60d")
	if r.code != 1 || !strings.Contains(r.stdout, "3 of 5 fragments placed") || !strings.Contains(r.stderr, "keeps grants at most 30d") ||
		!strings.Contains(r.stderr, "only 3 of 5 fragments were placed (m=2); 3 nodes refused: 3 expiry too long (policy: grant expiry beyond the node's maximum duration: grant expires") ||
		!strings.Contains(r.stderr, "kadre: hint: the nodes keep grants for less time than that") {
		t.Fatalf("60 days on nodes of 30:\n%s\n%s", r.stdout, r.stderr)
	}
	var g map[string]any
	r = c.kadre(alice, "grant", "-json", "-to", bobID, "-path", "/mid2", "-m", "2", "-n", "5", "-expires", "60d")
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || r.code != 1 || g["placed"] != 3.0 || g["error"].(map[string]any)["code"] != "TOO_FEW_PLACED" || len(g["refused"].(map[string]any)) != 3 {
		t.Fatalf("grant -json: %v %+v", err, r)
	}
	if r := c.kadre(alice, "grant", "-to", bobID, "-path", "/now", "-expires", "0s"); r.code != 1 || !strings.Contains(r.stderr, "invalid grant expiry") {
		t.Fatalf("0s: %+v", r)
	}
}

// kadre id prints a node's peer ID and addresses from its data directory.
func TestCLIID(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	out := c.must(t.TempDir(), "id", "-data-dir", n.Dir)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); lines[0] != n.ID.String() || !strings.Contains(out, n.Listen()) {
		t.Fatalf("id:\n%s", out)
	}
	if r := c.kadre(t.TempDir(), "id", "-data-dir", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "no node identity in") {
		t.Fatalf("id of an empty directory: %+v", r)
	}
}

// The CLI uses a running agent: a sealed identity unlocked once serves
// every command without its passphrase; -no-agent works alone; when the
// agent goes away in the middle of a batch and another takes its place,
// the batch finishes.
func TestCLIAgent(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	sealed := &testnet.CLI{Bin: c.cli.Bin, Bootstrap: c.cli.Bootstrap, Env: []string{"KADRE_PASSPHRASE=correct horse battery"}}
	kb, err := sealed.Run(bob, "keygen", "-passphrase")
	if err != nil || kb.Code != 0 {
		t.Fatalf("keygen: %+v %v", kb, err)
	}
	bobID := strings.TrimSpace(kb.Stdout)
	c.must(alice, "grant", "-to", bobID, "-path", "/docs", "-m", "2", "-n", "3")
	dir := t.TempDir()
	files := writeFiles(t, dir, "a", 300)
	c.must(alice, "encrypt", "-path", "/docs", "-r", dir)

	// No agent, no terminal, no passphrase: the sealed identity cannot open.
	r := c.kadre(bob, "decrypt", "-json", "-key-only", filepath.Join(dir, "a1.txt.kadre"))
	if r.code != 1 || !strings.Contains(r.stdout, `"code": "PASSPHRASE_NEEDED"`) || !strings.Contains(r.stdout, "kadre agent") {
		t.Fatalf("sealed, alone: %+v", r)
	}
	ag, err := sealed.StartAgent(bob)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ag.Stop() })
	if out := c.must(bob, "status"); !strings.Contains(out, "through the agent at "+ag.URL) || !strings.Contains(out, "6 reachable") {
		t.Fatalf("status:\n%s", out)
	}
	if got := strings.TrimSpace(c.must(bob, "identity")); got != bobID {
		t.Fatalf("identity through the agent: %q", got)
	}
	if r := c.kadre(bob, "decrypt", "-no-agent", "-key-only", filepath.Join(dir, "a1.txt.kadre")); r.code != 1 || !strings.Contains(r.stderr, "no terminal") {
		t.Fatalf("-no-agent: %+v", r)
	}
	// A second agent for the same home is refused.
	if _, err := sealed.StartAgent(bob); err == nil || !strings.Contains(err.Error(), "another agent serves this home directory") {
		t.Fatalf("second agent: %v", err)
	}
	out1 := filepath.Join(t.TempDir(), "out")
	if out := c.must(bob, "decrypt", "-r", "-o", out1, dir); !strings.Contains(out, "decrypted 300 of 300 files; 0 failed") {
		t.Fatalf("decrypt -r through the agent:\n%s", out)
	}
	checkFiles(t, out1, files)

	// The agent goes away between the batch's two requests and another
	// answers in its place: a proxy stands in for the first, then points
	// agent.json at the real one and cuts the connection.
	info, err := os.ReadFile(filepath.Join(bob, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keysRequests atomic.Int32
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v1/decrypt-keys" && keysRequests.Add(1) == 2 {
			os.WriteFile(filepath.Join(bob, "agent.json"), info, 0o600)
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		fwd, _ := http.NewRequest(req.Method, ag.URL+req.URL.RequestURI(), req.Body)
		fwd.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(fwd)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(ln)
	defer proxy.Close()
	var doc map[string]any
	json.Unmarshal(info, &doc)
	doc["url"] = "http://" + ln.Addr().String()
	b, _ := json.Marshal(doc)
	os.WriteFile(filepath.Join(bob, "agent.json"), b, 0o600)
	out2 := filepath.Join(t.TempDir(), "out")
	r = c.kadre(bob, "decrypt", "-r", "-o", out2, dir)
	if r.code != 0 || !strings.Contains(r.stdout, "decrypted 300 of 300 files; 0 failed") || !strings.Contains(r.stderr, "the agent stopped answering") || keysRequests.Load() != 2 {
		t.Fatalf("agent replaced mid-batch (%d key requests):\n%s\n%s", keysRequests.Load(), r.stdout, r.stderr)
	}
	checkFiles(t, out2, files)

	// kadre agent stop: the agent exits and removes its files.
	if out := c.must(bob, "agent", "stop"); !strings.Contains(out, "stopped the agent at "+ag.URL) {
		t.Fatalf("agent stop: %s", out)
	}
	if err := ag.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agent.json", "agent.cookie"} {
		if _, err := os.Stat(filepath.Join(bob, f)); !os.IsNotExist(err) {
			t.Fatalf("%s outlived the agent: %v", f, err)
		}
	}
	if r := c.kadre(bob, "agent", "stop"); r.code != 1 || !strings.Contains(r.stderr, "no agent serves") {
		t.Fatalf("stopping no agent: %+v", r)
	}
}

func checkFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || string(got) != content {
			t.Fatalf("%s: %q, %v", rel, got, err)
		}
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// The API as other programs use it: curl in a shell script and a Node.js
// application (scripts/agent-curl.sh, scripts/agent-app.mjs), against two
// agents on a real network.
func TestAgentScripts(t *testing.T) {
	c := startCluster(t, 6)
	for _, tc := range []struct{ name, prog, script string }{
		{"curl", "bash", "../../scripts/agent-curl.sh"},
		{"node", "node", "../../scripts/agent-app.mjs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice, bob := t.TempDir(), t.TempDir()
			c.must(alice, "keygen")
			c.must(bob, "keygen")
			for _, home := range []string{alice, bob} {
				ag, err := c.cli.StartAgent(home)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ag.Stop() })
			}
			out, err := exec.Command(tc.prog, tc.script, alice, bob).CombinedOutput()
			if err != nil || !strings.Contains(string(out), ": ok (hint after the revocation: the owner revoked this grant") {
				t.Fatalf("%s: %v\n%s", tc.script, err, out)
			}
		})
	}
}

// After a rotation the old grant is shown for the older files only, its
// fragments counted once each; a status without a user identity works.
func TestCLIGrantsAfterRotation(t *testing.T) {
	c := startCluster(t, 6)
	alice, bob, carol := t.TempDir(), t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	carolID := strings.TrimSpace(c.must(carol, "keygen"))
	c.must(alice, "grant", "-to", bobID, "-path", "/docs")
	c.must(alice, "grant", "-to", carolID, "-path", "/docs")
	if out := c.must(alice, "revoke", "-to", carolID, "-path", "/docs"); !strings.Contains(out, "granted /docs again at epoch 1 to 1 of 1 other recipients") ||
		!strings.Contains(out, "acknowledged without holding a fragment") {
		t.Fatalf("revoke:\n%s", out)
	}
	out := c.must(alice, "grants", "-refresh")
	var bobRows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, shortID(bobID)) {
			bobRows = append(bobRows, l)
		}
	}
	if len(bobRows) != 2 || !strings.Contains(bobRows[0], "live, for files before the epoch rotated") || strings.Contains(bobRows[1], "before the epoch") ||
		!strings.Contains(bobRows[0], " 5/5 ") || !strings.Contains(bobRows[1], " 5/5 ") {
		t.Fatalf("grants -refresh:\n%s", out)
	}
	if out := c.must(t.TempDir(), "status"); !strings.Contains(out, "no user identity here: asking as an anonymous client") || !strings.Contains(out, "6 reachable") {
		t.Fatalf("status without an identity:\n%s", out)
	}
}

// A retirement that cannot hand a fragment off says so and fails.
func TestCLIRetireKept(t *testing.T) {
	c := startCluster(t, 3)
	alice, bob := t.TempDir(), t.TempDir()
	c.must(alice, "keygen")
	bobID := strings.TrimSpace(c.must(bob, "keygen"))
	c.must(alice, "grant", "-to", bobID, "-path", "/all", "-m", "2", "-n", "3")
	// Every node holds a fragment: a retiring one has nobody to hand to.
	n := c.Nodes[1]
	r := c.kadre(bob, "retire", "-data-dir", n.Dir)
	if r.code != 1 || !strings.Contains(r.stdout, "0 fragments handed off") || !strings.Contains(r.stdout, "1 kept") ||
		!strings.Contains(r.stderr, "kadre: error: 1 fragment could not be handed off") || !strings.Contains(r.stderr, "kadre: hint:") {
		t.Fatalf("retire: %+v", r)
	}
	n.Wait(30 * time.Second)
}
