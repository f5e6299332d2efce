package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/node"
	"github.com/kadre/kadre/proto"
)

// The agent's API with Go's net/http: real nodes in this process, real
// agents on 127.0.0.1, requests as any program would send them.

// startNodes starts n nodes on 127.0.0.1 and waits until they know each
// other.
func startNodes(t *testing.T, n int) []string {
	t.Helper()
	ctx := context.Background()
	var boot []string
	var nodes []*node.Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
	})
	for i := range n {
		cfg := node.DefaultConfig()
		cfg.DataDir = filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i))
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.Bootstrap = boot
		cfg.MetricsAddr = ""
		cfg.PeerRate = 2000 // the tests ask a lot from one identity
		nd, err := node.Start(ctx, cfg, node.Options{})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		if i == 0 {
			boot = nd.Addrs()
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ready := true
		for _, nd := range nodes {
			ready = ready && nd.Host().RoutingTableSize() >= n-1
		}
		if ready {
			return boot
		}
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not find each other")
		}
	}
}

// user is a home directory with an identity, its client and its agent.
type user struct {
	t     *testing.T
	home  string
	boot  []string
	c     *client.Client
	srv   *agent.Server
	url   string
	token string
	http  *http.Client
}

func newUser(t *testing.T, boot []string) *user {
	t.Helper()
	home := t.TempDir()
	if _, err := client.CreateIdentity(home, nil, false); err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, home: home, boot: boot, http: &http.Client{}}
	u.start()
	t.Cleanup(u.stop)
	return u
}

// start opens the client and starts the agent on a free port.
func (u *user) start() {
	u.t.Helper()
	c, err := client.Open(client.Options{Home: u.home, Bootstrap: u.boot, Placement: dht.PlaceOptions{Diversity: dht.NoDiversity}})
	if err != nil {
		u.t.Fatal(err)
	}
	s, err := agent.Start(context.Background(), agent.Config{Client: c, Home: u.home, Listen: "127.0.0.1:0"})
	if err != nil {
		u.t.Fatal(err)
	}
	u.c, u.srv, u.url, u.token = c, s, s.URL(), s.Token()
}

func (u *user) stop() {
	if u.srv != nil {
		u.srv.Close(context.Background())
		u.c.Close()
		u.srv = nil
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the agent's token; header overrides headers.
func (u *user) do(method, path string, body io.Reader, header map[string]string) response {
	u.t.Helper()
	req, err := http.NewRequest(method, u.url+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := u.http.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (u *user) json(method, path string, in, out any) response {
	u.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	r := u.do(method, path, body, map[string]string{"Content-Type": "application/json"})
	if out != nil && r.status < 300 {
		if err := json.Unmarshal(r.body, out); err != nil {
			u.t.Fatalf("%s %s: %v\n%s", method, path, err, r.body)
		}
	}
	return r
}

// problem requires a problem answer with status and code.
func problem(t *testing.T, r response, status int, code string) explain.Problem {
	t.Helper()
	var pb struct {
		Error explain.Problem `json:"error"`
	}
	if err := json.Unmarshal(r.body, &pb); err != nil || r.status != status || pb.Error.Code != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("a problem answered as %q", ct)
	}
	return pb.Error
}

func (u *user) identity() string {
	var id agent.IdentityInfo
	if r := u.json("GET", "/v1/identity", nil, &id); r.status != 200 {
		u.t.Fatalf("identity: %d %s", r.status, r.body)
	}
	return id.Identity
}

// The token, the Origin and the Host: every way in without them is
// refused, the node keeps serving, and the cookie is the user's only.
func TestAuth(t *testing.T) {
	u := newUser(t, nil)
	st, err := os.Stat(filepath.Join(u.home, agent.CookieFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cookie file: %v %v", err, st.Mode())
	}
	if tok, err := agent.ReadCookie(filepath.Join(u.home, agent.CookieFile)); err != nil || tok != u.token {
		t.Fatalf("cookie holds %q (%v)", tok, err)
	}
	for _, tc := range []struct {
		name   string
		path   string
		header map[string]string
		status int
		code   string
	}{
		{"no token", "/v1/identity", map[string]string{"Authorization": ""}, 401, "UNAUTHORIZED"},
		{"wrong token", "/v1/identity", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, 401, "UNAUTHORIZED"},
		{"token as basic auth", "/v1/identity", map[string]string{"Authorization": "Basic " + u.token}, 401, "UNAUTHORIZED"},
		{"a prefix of the token", "/v1/identity", map[string]string{"Authorization": "Bearer " + u.token[:63]}, 401, "UNAUTHORIZED"},
		{"origin with the token", "/v1/identity", map[string]string{"Origin": "https://evil.example"}, 403, "FORBIDDEN_ORIGIN"},
		{"null origin", "/v1/grants", map[string]string{"Origin": "null"}, 403, "FORBIDDEN_ORIGIN"},
		{"rebound host", "/v1/identity", map[string]string{"Host": "evil.example:4712"}, 403, "FORBIDDEN_HOST"},
		{"origin on the document", "/v1/openapi.json", map[string]string{"Origin": "https://evil.example", "Authorization": ""}, 403, "FORBIDDEN_ORIGIN"},
		{"no token on an unknown path", "/v1/nothing", map[string]string{"Authorization": ""}, 401, "UNAUTHORIZED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problem(t, u.do("GET", tc.path, nil, tc.header), tc.status, tc.code)
			if strings.Contains(p.Message, u.token) {
				t.Fatal("the refusal shows the token")
			}
		})
	}
	// A POST from a page: refused before anything is done.
	r := u.do("POST", "/v1/shutdown", strings.NewReader("x"), map[string]string{"Origin": "http://localhost:8000", "Content-Type": "text/plain"})
	problem(t, r, 403, "FORBIDDEN_ORIGIN")
	select {
	case <-u.srv.Stopped():
		t.Fatal("a cross-origin request stopped the agent")
	default:
	}
	// The document needs no token, and is the committed one.
	r = u.do("GET", "/v1/openapi.json", nil, map[string]string{"Authorization": ""})
	if r.status != 200 || !bytes.Equal(r.body, agent.OpenAPI) {
		t.Fatalf("openapi: %d", r.status)
	}
	if u.identity() == "" {
		t.Fatal("no identity")
	}
	// A restart writes a new token: the old one is refused.
	old := u.token
	u.stop()
	if _, err := os.Stat(filepath.Join(u.home, agent.CookieFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cookie outlived the agent: %v", err)
	}
	u.start()
	if u.token == old {
		t.Fatal("the restarted agent kept the token")
	}
	fresh := u.token
	u.token = old
	problem(t, u.do("GET", "/v1/identity", nil, nil), 401, "UNAUTHORIZED")
	u.token = fresh
	// A cookie others can read is refused by clients.
	os.Chmod(filepath.Join(u.home, agent.CookieFile), 0o644)
	if _, err := agent.ReadCookie(filepath.Join(u.home, agent.CookieFile)); !errors.Is(err, agent.ErrCookie) {
		t.Fatalf("a 0644 cookie: %v", err)
	}
	if _, err := agent.Discover(context.Background(), u.home); !errors.Is(err, agent.ErrCookie) {
		t.Fatalf("discovering with a 0644 cookie: %v", err)
	}
}

// Bad requests get precise problems and the agent keeps serving.
func TestBadRequests(t *testing.T) {
	u := newUser(t, nil)
	for _, tc := range []struct {
		name         string
		method, path string
		body         io.Reader
		status       int
		code         string
	}{
		{"not JSON", "POST", "/v1/grants", strings.NewReader("{to: bob"), 400, "BAD_JSON"},
		{"unknown field", "POST", "/v1/grants", strings.NewReader(`{"to":"x","path":"/d","mm":3}`), 400, "BAD_JSON"},
		{"two values", "POST", "/v1/revoke", strings.NewReader(`{"to":"x","path":"/d"}{}`), 400, "BAD_JSON"},
		{"wrong type", "POST", "/v1/grants", strings.NewReader(`{"to":"x","path":"/d","m":"3"}`), 400, "BAD_JSON"},
		{"missing fields", "POST", "/v1/grants", strings.NewReader(`{}`), 400, "BAD_REQUEST"},
		{"bad identity", "POST", "/v1/grants", strings.NewReader(`{"to":"kadre1nope","path":"/d"}`), 400, "INVALID_IDENTITY"},
		{"oversized body", "POST", "/v1/grants", strings.NewReader(`{"to":"` + strings.Repeat("x", agent.MaxJSON) + `"}`), 413, "TOO_LARGE"},
		{"oversized batch", "POST", "/v1/decrypt-batch", io.MultiReader(strings.NewReader(`{"files":[{"data":"`), strings.NewReader(strings.Repeat("A", agent.MaxBatchBody)), strings.NewReader(`"}]}`)), 413, "TOO_LARGE"},
		{"too many files", "POST", "/v1/decrypt-keys", strings.NewReader(`{"headers":[` + strings.TrimSuffix(strings.Repeat(`"AA==",`, agent.MaxBatchFiles+1), ",") + `]}`), 413, "TOO_LARGE"},
		{"empty batch", "POST", "/v1/decrypt-batch", strings.NewReader(`{"files":[]}`), 400, "BAD_REQUEST"},
		{"base64 that is not", "POST", "/v1/decrypt-keys", strings.NewReader(`{"headers":["%%%"]}`), 400, "BAD_JSON"},
		{"encrypt without a path", "POST", "/v1/encrypt", strings.NewReader("secret"), 400, "BAD_REQUEST"},
		{"encrypt under a bad path", "POST", "/v1/encrypt?path=docs/../x", strings.NewReader("secret"), 400, "INVALID_PATH"},
		{"encrypt with a bad certificate", "POST", "/v1/encrypt?path=/d/x&writer=kadrewriter1zz", strings.NewReader("secret"), 400, "BAD_CERTIFICATE"},
		{"decrypt a file that is not kadre's", "POST", "/v1/decrypt", strings.NewReader("just text, not a kadre file at all"), 400, "NOT_KADRE_FILE"},
		{"decrypt-key of nothing", "POST", "/v1/decrypt-key", strings.NewReader(""), 400, "NOT_KADRE_FILE"},
		{"bad boolean", "GET", "/v1/grants?refresh=maybe", nil, 400, "BAD_REQUEST"},
		{"unknown path", "GET", "/v1/grant", nil, 404, "NOT_FOUND"},
		{"wrong method", "DELETE", "/v1/grants", nil, 405, "METHOD_NOT_ALLOWED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problem(t, u.do(tc.method, tc.path, tc.body, nil), tc.status, tc.code)
		})
	}
	if u.identity() == "" {
		t.Fatal("the agent stopped serving")
	}
}

// encrypt streams plaintext through the owner's agent.
func (u *user) encrypt(path string, plain []byte) []byte {
	u.t.Helper()
	r := u.do("POST", "/v1/encrypt?path="+path, bytes.NewReader(plain), map[string]string{"Content-Type": "application/octet-stream"})
	if r.status != 200 {
		u.t.Fatalf("encrypt %s: %d %s", path, r.status, r.body)
	}
	return r.body
}

// The whole story through two agents: alice grants, encrypts and
// revokes, bob decrypts one file streamed, one key, many keys and many
// files at once; a forged body cuts the stream; after the revocation bob
// gets the CLI's problem and hint.
func TestStory(t *testing.T) {
	boot := startNodes(t, 5)
	alice, bob := newUser(t, boot), newUser(t, boot)
	var g agent.GrantResponse
	if r := alice.json("POST", "/v1/grants", agent.GrantRequest{To: bob.identity(), Path: "/docs", M: 2, N: 3, Expires: "7d"}, &g); r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	if g.Placed != 3 || g.Grant == nil || g.Grant.Path != "/docs" || g.Error != nil {
		t.Fatalf("grant: %+v", g)
	}
	var gs []client.GrantStatus
	if r := alice.json("GET", "/v1/grants?refresh=true", nil, &gs); r.status != 200 || len(gs) != 1 || len(gs[0].Reachable) != 3 {
		t.Fatalf("grants: %d %s", r.status, r.body)
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB, several groups
	file := alice.encrypt("/docs/big.bin", big)
	r := bob.do("POST", "/v1/decrypt", bytes.NewReader(file), nil)
	if r.status != 200 || !bytes.Equal(r.body, big) {
		t.Fatalf("decrypt: %d, %d bytes", r.status, len(r.body))
	}
	if r.header.Get("X-Kadre-Path") != "%2Fdocs%2Fbig.bin" || r.header.Get("X-Kadre-Signed") != "true" || r.header.Get("X-Kadre-Prefix") != "%2Fdocs" {
		t.Fatalf("headers: %v", r.header)
	}
	var key agent.KeyInfo
	if r := bob.json("POST", "/v1/decrypt-key", nil, nil); r.status != 400 {
		t.Fatalf("decrypt-key of nothing: %d", r.status)
	}
	r = bob.do("POST", "/v1/decrypt-key", bytes.NewReader(file), nil)
	if r.status != 200 || json.Unmarshal(r.body, &key) != nil || key.Path != "/docs/big.bin" || key.M != 2 || len(key.DataKey) != 64 {
		t.Fatalf("decrypt-key: %d %s", r.status, r.body)
	}

	// A body changed after the header: the stream is cut, never ended as
	// if whole.
	forged := bytes.Clone(file)
	forged[len(forged)-10] ^= 1
	req, _ := http.NewRequest("POST", bob.url+"/v1/decrypt", bytes.NewReader(forged))
	req.Header.Set("Authorization", "Bearer "+bob.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a forged body was answered as a whole stream (%d, %d bytes)", resp.StatusCode, len(got))
	}
	if len(got) >= len(big) {
		t.Fatal("the forged group was released")
	}

	// Many files: keys at once, and whole files at once.
	var files []agent.BatchFile
	var plains [][]byte
	for i := range 40 {
		p := []byte(fmt.Sprintf("small file %d", i))
		plains = append(plains, p)
		files = append(files, agent.BatchFile{Name: fmt.Sprintf("f%d", i), Data: alice.encrypt(fmt.Sprintf("/docs/small/%d.txt", i), p)})
	}
	files = append(files, agent.BatchFile{Name: "other", Data: alice.encrypt("/other/x.txt", []byte("not granted"))})
	var batch agent.BatchResponse
	if r := bob.json("POST", "/v1/decrypt-batch", agent.BatchRequest{Files: files}, &batch); r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	if batch.OK != 40 || batch.Failed != 1 || batch.Results[40].Error == nil || batch.Results[40].Error.Code != "NOT_GRANTED" {
		t.Fatalf("batch: %d ok, %d failed, last %+v", batch.OK, batch.Failed, batch.Results[40])
	}
	for i, p := range plains {
		if res := batch.Results[i]; res.Name != files[i].Name || !bytes.Equal(res.Plaintext, p) {
			t.Fatalf("batch file %d: %+v", i, res)
		}
	}
	var keys agent.KeysResponse
	h1, err := kfile.ReadHeader(bytes.NewReader(files[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	headers := [][]byte{files[0].Data, files[1].Data[:h1.Len()], []byte("not a kadre file")}
	if r := bob.json("POST", "/v1/decrypt-keys", agent.KeysRequest{Headers: headers}, &keys); r.status != 200 || len(keys.Results) != 3 {
		t.Fatalf("keys: %d %s", r.status, r.body)
	}
	if keys.Results[0].Key == nil || keys.Results[1].Key == nil || keys.Results[2].Error == nil || keys.Results[2].Error.Code != "NOT_KADRE_FILE" {
		t.Fatalf("keys: %+v", keys.Results)
	}

	// Revoked: the problem and hint the CLI prints.
	var rv agent.RevokeResponse
	if r := alice.json("POST", "/v1/revoke", agent.RevokeRequest{To: bob.identity(), Path: "/docs"}, &rv); r.status != 200 || !rv.Dead || !rv.Rotated {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	p := problem(t, bob.do("POST", "/v1/decrypt", bytes.NewReader(file), nil), 403, "REVOKED")
	if want := explain.Hint(explain.Collection(errors.New("x"), map[peer.ID]error{"p": &proto.RemoteError{Code: proto.Code_REVOKED}})); p.Hint != want || p.Nodes == nil {
		t.Fatalf("revoked: %+v, want hint %q", p, want)
	}
}

// Eight programs at once against one agent: every answer right.
func TestConcurrentClients(t *testing.T) {
	boot := startNodes(t, 4)
	alice, bob := newUser(t, boot), newUser(t, boot)
	if r := alice.json("POST", "/v1/grants", agent.GrantRequest{To: bob.identity(), Path: "/c", M: 2, N: 3}, nil); r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	var files []agent.BatchFile
	for i := range 24 {
		files = append(files, agent.BatchFile{Name: fmt.Sprint(i), Data: alice.encrypt(fmt.Sprintf("/c/%d", i), []byte(fmt.Sprint("content ", i)))})
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{}
			for k := range 3 {
				i := (w*3 + k) % len(files)
				req, _ := http.NewRequest("POST", bob.url+"/v1/decrypt", bytes.NewReader(files[i].Data))
				req.Header.Set("Authorization", "Bearer "+bob.token)
				resp, err := c.Do(req)
				if err != nil {
					bad.Add(1)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != fmt.Sprint("content ", i) {
					bad.Add(1)
				}
				body, _ := json.Marshal(agent.BatchRequest{Files: files[w : w+8]})
				req, _ = http.NewRequest("POST", bob.url+"/v1/decrypt-batch", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+bob.token)
				resp, err = c.Do(req)
				if err != nil {
					bad.Add(1)
					return
				}
				var br agent.BatchResponse
				err = json.NewDecoder(resp.Body).Decode(&br)
				resp.Body.Close()
				if err != nil || br.OK != 8 {
					bad.Add(1)
					continue
				}
				for j, res := range br.Results {
					if string(res.Plaintext) != fmt.Sprint("content ", w+j) {
						bad.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d wrong or failed answers", n)
	}
}

// The agent restarts in the middle of a batch: the request in flight
// when it went away fails as such (never a wrong answer), the old token
// is refused by the new agent, and a client that finds the new one
// finishes the batch with every key right.
func TestRestartMidBatch(t *testing.T) {
	boot := startNodes(t, 4)
	alice, bob := newUser(t, boot), newUser(t, boot)
	if r := alice.json("POST", "/v1/grants", agent.GrantRequest{To: bob.identity(), Path: "/r", M: 2, N: 3}, nil); r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	var headers [][]byte
	want := map[int]string{}
	for i := range 90 {
		headers = append(headers, alice.encrypt(fmt.Sprintf("/r/%d.txt", i), []byte("x")))
		want[i] = fmt.Sprintf("/r/%d.txt", i)
	}
	ctx := context.Background()
	remote, err := agent.Discover(ctx, bob.home)
	if err != nil || remote == nil {
		t.Fatalf("discover: %v", err)
	}
	var got []agent.KeyResult
	for start := 0; start < len(headers); start += 30 {
		if start == 60 {
			// In the middle: the agent goes away and another takes its place.
			bob.stop()
			if _, err := remote.DecryptKeys(ctx, headers[start:start+30], agent.DecryptOptions{}); !errors.Is(err, agent.ErrGone) {
				t.Fatalf("with the agent gone: %v", err)
			}
			old := remote.Token
			bob.start()
			stale := &agent.Remote{URL: bob.url, Token: old, HTTP: &http.Client{}}
			if _, err := stale.DecryptKeys(ctx, headers[start:start+1], agent.DecryptOptions{}); explain.Code(err) != "UNAUTHORIZED" {
				t.Fatalf("the old token at the new agent: %v", err)
			}
			if remote, err = agent.Discover(ctx, bob.home); err != nil || remote == nil || remote.Token == old {
				t.Fatalf("discovering the new agent: %v", err)
			}
		}
		res, err := remote.DecryptKeys(ctx, headers[start:start+30], agent.DecryptOptions{})
		if err != nil {
			t.Fatalf("batch at %d: %v", start, err)
		}
		got = append(got, res...)
	}
	for i, r := range got {
		if r.Error != nil || r.Key.Path != want[i] {
			t.Fatalf("file %d: %+v %+v", i, r.Key, r.Error)
		}
	}
}

// A stream of any size goes through in constant memory: 128 MiB
// encrypted and decrypted with the agent's heap staying far below it.
func TestStreamConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 128 MiB")
	}
	u := newUser(t, nil)
	const size = 128 << 20
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		// The live heap as of each GC's mark (not HeapInuse, which also
		// counts the garbage a busy machine's GC has not reached yet): a
		// stream held in memory would show here whatever the GC's pace.
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	defer close(stop)
	src := io.LimitReader(zeros{}, size)
	pr, pw := io.Pipe()
	go func() {
		req, _ := http.NewRequest("POST", u.url+"/v1/encrypt?path=/big", src)
		req.Header.Set("Authorization", "Bearer "+u.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(pw, resp.Body)
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", u.url+"/v1/decrypt", pr)
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Fatalf("%d bytes back (%v), status %d", n, err, resp.StatusCode)
	}
	zero := sha256.New()
	io.Copy(zero, io.LimitReader(zeros{}, size))
	if !bytes.Equal(h.Sum(nil), zero.Sum(nil)) {
		t.Fatal("the round trip changed the content")
	}
	if p := peak.Load(); p > 48<<20 {
		t.Fatalf("the live heap peaked at %d MiB for a %d MiB stream", p>>20, size>>20)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// Remote, what the CLI uses with a running agent, gives what Local gives:
// every Backend method through the API, errors with their codes and
// hints.
func TestRemoteBackend(t *testing.T) {
	boot := startNodes(t, 4)
	alice, bob := newUser(t, boot), newUser(t, boot)
	ctx := context.Background()
	ra, err := agent.Discover(ctx, alice.home)
	if err != nil || ra == nil {
		t.Fatalf("discover: %v", err)
	}
	rb, _ := agent.Discover(ctx, bob.home)
	id, err := rb.Identity(ctx)
	if err != nil || id.Identity != bob.identity() {
		t.Fatalf("identity: %+v %v", id, err)
	}
	st, err := ra.Status(ctx)
	if err != nil || len(st.Nodes) != 4 || st.Agent == nil || st.Agent.URL != alice.url {
		t.Fatalf("status: %+v %v", st, err)
	}
	g, err := ra.Grant(ctx, agent.GrantRequest{To: id.Identity, Path: "/remote", M: 2, N: 3, Expires: "1w"})
	if err != nil || g.Placed != 3 || g.Grant.Path != "/remote" {
		t.Fatalf("grant: %+v %v", g, err)
	}
	// Four nodes, five fragments: placed short, with the response.
	g, err = ra.Grant(ctx, agent.GrantRequest{To: id.Identity, Path: "/short", M: 2, N: 5})
	if explain.Code(err) != "TOO_FEW_PLACED" || g == nil || g.Placed != 4 || explain.Hint(err) == "" {
		t.Fatalf("short grant: %+v %v", g, err)
	}
	if _, err := ra.Grant(ctx, agent.GrantRequest{To: id.Identity, Path: "/x", M: 4, N: 3}); explain.Code(err) != "BAD_THRESHOLD" {
		t.Fatalf("bad threshold: %v", err)
	}
	gs, err := ra.Grants(ctx, true)
	if err != nil || len(gs) != 2 || gs[0].GrantRecord == nil || gs[0].Path != "/remote" || len(gs[0].Reachable) != 3 {
		t.Fatalf("grants: %+v %v", gs, err)
	}
	var file bytes.Buffer
	if err := ra.Encrypt(ctx, &file, strings.NewReader("through the API"), agent.EncryptRequest{Path: "/remote/f.txt"}); err != nil {
		t.Fatal(err)
	}
	if err := ra.Encrypt(ctx, io.Discard, strings.NewReader("x"), agent.EncryptRequest{Path: "relative"}); explain.Code(err) != "INVALID_PATH" {
		t.Fatalf("encrypt under a bad path: %v", err)
	}
	keys, err := rb.DecryptKeys(ctx, [][]byte{file.Bytes(), []byte("junk")}, agent.DecryptOptions{})
	if err != nil || len(keys) != 2 || keys[0].Key == nil || keys[0].Key.Path != "/remote/f.txt" || keys[1].Error.Code != "NOT_KADRE_FILE" {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	local := &agent.Local{C: bob.c}
	lk, err := local.DecryptKeys(ctx, [][]byte{file.Bytes()}, agent.DecryptOptions{})
	if err != nil || lk[0].Key.DataKey != keys[0].Key.DataKey {
		t.Fatalf("Local and Remote disagree: %v", err)
	}
	rv, err := ra.Revoke(ctx, agent.RevokeRequest{To: id.Identity, Path: "/remote"})
	if err != nil || !rv.Dead || !rv.Rotated || rv.Deleted != 3 {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	keys, err = rb.DecryptKeys(ctx, [][]byte{file.Bytes()}, agent.DecryptOptions{})
	if err != nil || keys[0].Error == nil || keys[0].Error.Code != "REVOKED" {
		t.Fatalf("keys after the revocation: %+v %v", keys, err)
	}
}
