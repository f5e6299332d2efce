// Package testnet is the harness of kadre's reliability tooling: real `kadre
// run` processes on 127.0.0.1 (start, kill -9, restart from the data
// directory, RSS), light clients, raw RPC frames, and the abuse checks
// that scripts/abuse runs and that this package's test runs quickly.
//
// Every loop here is bounded in count and time, and all traffic goes to
// 127.0.0.1.
package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/kadre/kadre/internal/localapi"
)

// ModuleRoot returns the directory of kadre's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the kadre module")
	}
	return filepath.Dir(mod), nil
}

// BuildKadre builds ./cmd/node into dir/kadre and returns its path.
func BuildKadre(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kadre")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/node")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/node: %w\n%s", err, out)
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return FreePortOn("127.0.0.1") }

// FreePortOn returns a TCP port on ip that was free a moment ago.
func FreePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePortBlock returns a base port such that base … base+span−1 on
// 127.0.0.1 were all free a moment ago, for a script that numbers its
// ports from one base (scripts/testnet.sh: libp2p at base+i, endpoints at
// base+100+i). The bases lie below Linux's ephemeral range (32768 up), where
// the ports other tests and outgoing connections get from the kernel
// cannot take one of them in the meantime.
func FreePortBlock(span int) (int, error) {
	const lo, hi = 20000, 32768
	for range 64 {
		base := lo + mrand.IntN(hi-lo-span)
		free := true
		for p := base; p < base+span && free; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("testnet: no free block of %d ports in %d–%d", span, lo, hi)
}

// Node is one `kadre run` process with a fixed data directory and fixed
// ports, so that a restart comes back as the same peer at the same address.
type Node struct {
	Name        string
	Bin         string
	Dir         string   // data directory
	Host        string   // loopback IP the node listens on (default 127.0.0.1)
	Port        int      // libp2p TCP port on Host
	MetricsPort int      // 0: no metrics endpoint
	Bootstrap   []string // multiaddrs with /p2p/
	Extra       []string // more `kadre run` flags
	LogPath     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	ID     peer.ID
	Addrs  []string
	starts int
}

// Listen is the node's libp2p listen multiaddr.
func (n *Node) Listen() string { return fmt.Sprintf("/ip4/%s/tcp/%d", n.ip(), n.Port) }

func (n *Node) ip() string {
	if n.Host == "" {
		return "127.0.0.1"
	}
	return n.Host
}

// LoopbackIP returns the loopback address of node i of a testnet:
// 127.0.(i+1).1 for the first 254, so that every node has a network group
// (an IPv4 /24) of its own, as nodes on separate machines do.
func LoopbackIP(i int) string {
	return fmt.Sprintf("127.%d.%d.1", i/254, i%254+1)
}

// Start runs the node and waits (up to 30 s) until it wrote node.json.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s: already running", n.Name)
	}
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return err
	}
	info := filepath.Join(n.Dir, "node.json")
	os.Remove(info)
	metrics := ""
	if n.MetricsPort != 0 {
		metrics = fmt.Sprintf("127.0.0.1:%d", n.MetricsPort)
	}
	args := []string{"run", "-data-dir", n.Dir, "-listen", n.Listen(), "-metrics-addr", metrics,
		"-bootstrap", strings.Join(n.Bootstrap, ","), "-refresh-interval", "10s", "-log-level", "warn"}
	args = append(args, n.Extra...)
	cmd := exec.Command(n.Bin, args...)
	if n.LogPath == "" {
		n.LogPath = n.Dir + ".log"
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== start %d at %s: %s %s\n", n.starts, time.Now().Format(time.RFC3339Nano), n.Bin, strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	// The node dies with this process, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	n.starts++
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(info)
		if err == nil {
			var ni struct {
				PeerID string   `json:"peer_id"`
				Addrs  []string `json:"addrs"`
			}
			if json.Unmarshal(b, &ni) == nil && ni.PeerID != "" {
				id, err := peer.Decode(ni.PeerID)
				if err != nil {
					return err
				}
				n.ID, n.Addrs = id, ni.Addrs
				return nil
			}
		}
		select {
		case <-done:
			n.cmd = nil
			return fmt.Errorf("%s exited during start (see %s)", n.Name, n.LogPath)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			n.cmd = nil
			return fmt.Errorf("%s did not start in 30 s (see %s)", n.Name, n.LogPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	err := n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
	return err
}

// Stop sends SIGTERM and waits up to 20 s for a graceful exit, then kills.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-n.done:
		if st := n.cmd.ProcessState; st != nil && !st.Success() {
			err = fmt.Errorf("%s exited with %s after SIGTERM", n.Name, st)
		}
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
		err = fmt.Errorf("%s did not stop within 20 s of SIGTERM", n.Name)
	}
	n.cmd = nil
	return err
}

// Wait waits up to d for the process to exit by itself and returns its
// exit status (nil for a clean exit).
func (n *Node) Wait(d time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
	case <-time.After(d):
		return fmt.Errorf("%s did not exit within %s", n.Name, d)
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
	if st := cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("%s exited with %s", n.Name, st)
	}
	return nil
}

// Log returns what the node wrote to its log file so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// MetricsAddr is the node's local endpoint, host:port ("" if none).
func (n *Node) MetricsAddr() string {
	if n.MetricsPort == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", n.MetricsPort)
}

// Alive reports whether the process runs.
func (n *Node) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID is the process id, 0 when not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Starts counts the starts so far.
func (n *Node) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// AddrInfo is the node's peer ID and its fixed listen address.
func (n *Node) AddrInfo() peer.AddrInfo {
	a, _ := ma.NewMultiaddr(n.Listen())
	return peer.AddrInfo{ID: n.ID, Addrs: []ma.Multiaddr{a}}
}

// P2PAddr is the node's address with /p2p/<id>.
func (n *Node) P2PAddr() string { return n.Listen() + "/p2p/" + n.ID.String() }

// RSS returns the process's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// RSSParts returns the process's anonymous and file-backed resident memory
// (RssAnon, RssFile: the heap and stacks, and mapped files such as LMDB's
// data.mdb, which the kernel may drop).
func RSSParts(pid int) (anon, file int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		for name, dst := range map[string]*int64{"RssAnon:": &anon, "RssFile:": &file} {
			if v, ok := strings.CutPrefix(line, name); ok {
				if fs := strings.Fields(v); len(fs) >= 1 {
					kb, _ := strconv.ParseInt(fs[0], 10, 64)
					*dst = kb << 10
				}
			}
		}
	}
	return anon, file, nil
}

// CPUTime returns the user+system CPU time the process used so far.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0, errors.New("bad /proc stat")
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// SelfCPUTime is CPUTime of this process.
func SelfCPUTime() time.Duration {
	d, _ := CPUTime(os.Getpid())
	return d
}

// Status is the part of a node's /status document the harness reads.
type Status struct {
	PeerID       string `json:"peer_id"`
	Peers        int    `json:"peers"`
	RoutingTable int    `json:"routing_table"`
	Grants       uint64 `json:"grants"`
}

// GetStatus reads the node's /status (it needs a metrics port).
func (n *Node) GetStatus(ctx context.Context) (*Status, error) {
	if n.MetricsPort == 0 {
		return nil, errors.New("no metrics port")
	}
	resp, err := n.Endpoint(ctx, "GET", "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Endpoint makes a request to the node's local endpoint with the token of
// its cookie file (SPEC.md §8.6).
func (n *Node) Endpoint(ctx context.Context, method, path string) (*http.Response, error) {
	if n.MetricsPort == 0 {
		return nil, errors.New("no metrics port")
	}
	tok, err := localapi.ReadCookie(filepath.Join(n.Dir, "endpoint.cookie"))
	if err != nil {
		return nil, err
	}
	req, err := localapi.NewRequest(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", n.MetricsPort, path), tok, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// Metric reads one unlabelled sample (e.g. go_goroutines) from the node's
// /metrics.
func (n *Node) Metric(ctx context.Context, name string) (float64, error) {
	if n.MetricsPort == 0 {
		return 0, errors.New("no metrics port")
	}
	resp, err := n.Endpoint(ctx, "GET", "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// Cluster is a set of nodes sharing bootstrap peers.
type Cluster struct {
	Nodes []*Node
}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Bin     string
	Dir     string // each node gets Dir/nodeI
	Size    int
	Metrics bool     // give every node a /status and /metrics port
	Extra   []string // more `kadre run` flags for every node
	// Seeds is how many of the first nodes are everyone's bootstrap peers.
	// Default 3.
	Seeds int
	// SameIP puts every node on 127.0.0.1 (one network group).
	SameIP bool
}

// StartCluster starts Size nodes on fixed free ports, each on a loopback
// address of its own (LoopbackIP), unless SameIP. Every node but the
// first bootstraps from the first Seeds nodes.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	if o.Seeds == 0 {
		o.Seeds = 3
	}
	c := &Cluster{}
	for i := 0; i < o.Size; i++ {
		ip := LoopbackIP(i)
		if o.SameIP {
			ip = "127.0.0.1"
		}
		port, err := FreePortOn(ip)
		if err != nil {
			c.Stop()
			return nil, err
		}
		n := &Node{Name: fmt.Sprintf("node%d", i), Bin: o.Bin, Dir: filepath.Join(o.Dir, fmt.Sprintf("node%d", i)), Host: ip, Port: port, Extra: o.Extra}
		if o.Metrics {
			if n.MetricsPort, err = FreePort(); err != nil {
				c.Stop()
				return nil, err
			}
		}
		c.Nodes = append(c.Nodes, n)
	}
	// Node i bootstraps from the seeds started before it; once the seeds
	// run, every node (including the seeds, on restart) gets all of them.
	for i, n := range c.Nodes {
		for j := 0; j < min(i, o.Seeds); j++ {
			n.Bootstrap = append(n.Bootstrap, c.Nodes[j].P2PAddr())
		}
		if err := n.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	seeds := c.Seeds(o.Seeds)
	for _, n := range c.Nodes {
		n.Bootstrap = nil
		for _, s := range seeds {
			if s.ID != n.ID {
				n.Bootstrap = append(n.Bootstrap, s.Listen()+"/p2p/"+s.ID.String())
			}
		}
	}
	return c, nil
}

// Seeds returns the first k nodes.
func (c *Cluster) Seeds(k int) []*Node { return c.Nodes[:min(k, len(c.Nodes))] }

// Bootstrap returns the address infos of the first k nodes.
func (c *Cluster) Bootstrap(k int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, n := range c.Seeds(k) {
		out = append(out, n.AddrInfo())
	}
	return out
}

// ByID finds a node by peer ID.
func (c *Cluster) ByID(id peer.ID) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// WaitConverged waits until every running node's routing table holds at
// least min(N-1, 20) peers (needs Metrics), up to timeout.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) error {
	want := min(len(c.Nodes)-1, 20)
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		var worst string
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			st, err := n.GetStatus(ctx)
			if err != nil || st.RoutingTable < want {
				ok = false
				if err != nil {
					worst = fmt.Sprintf("%s: %v", n.Name, err)
				} else {
					worst = fmt.Sprintf("%s: routing table %d of %d", n.Name, st.RoutingTable, want)
				}
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not converge in %s (%s)", timeout, worst)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops every node (SIGTERM, then SIGKILL) in parallel.
func (c *Cluster) Stop() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.Stop() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}
