package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// Files in a node's data directory (SPEC.md, "Node data directory").
const (
	identityFile = "identity.key" // the node's secp256k1 key, hex, 0600
	storeDir     = "store"        // LMDB environment and storage key file
	nodeInfoFile = "node.json"    // peer ID and addresses, for scripts
)

func cmdRun(ctx context.Context, e *env, args []string) error {
	cfg := defaultNodeConfig()
	fs := flag.NewFlagSet("kadre run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", e.getenv("KADRE_CONFIG"), "JSON config file (env KADRE_CONFIG)")
	nf := cfg.bind(fs)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: kadre run [flags]\n\nRuns a kadre node. Settings: defaults, then -config, then KADRE_* variables, then flags.")
		fs.PrintDefaults()
	}
	// The config file comes before the environment and the flags, so find
	// it first, then parse the flags for real.
	if err := scanConfigFlag(args, configPath); err != nil {
		return err
	}
	if *configPath != "" {
		if err := loadConfigFile(*configPath, &cfg); err != nil {
			return err
		}
	}
	if err := nf.applyEnv(e.getenv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return withHint(fmt.Errorf("unexpected argument %q", fs.Arg(0)), "kadre run takes only flags")
	}
	if err := cfg.Validate(); err != nil {
		return withHint(fmt.Errorf("invalid configuration: %w", err), "see `kadre run -h`")
	}
	log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	n, err := startNode(ctx, &cfg, e.getenv, log)
	if err != nil {
		return err
	}
	retire := cfg.HandoffOnShutdown
	select {
	case <-ctx.Done():
	case <-n.retireReq:
		retire = true
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if retire {
		n.retire(sctx)
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	return n.shutdown(sctx)
}

// scanConfigFlag finds -config in args without applying the other flags.
func scanConfigFlag(args []string, configPath *string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return withHint(errors.New("-config needs a file name"), "kadre run -config node.json")
			}
			val = args[i+1]
		}
		*configPath = val
	}
	return nil
}

func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// node is a running `kadre run`.
type node struct {
	cfg     *NodeConfig
	log     *slog.Logger
	id      *rekey.SecretKey
	store   *store.Store
	host    *dht.Host
	svc     *dht.Service
	http    *http.Server
	metrics *nodeMetrics
	started time.Time
	cancel  context.CancelFunc
	group   *errgroup.Group
	// retireReq is signalled by POST /retire on the local endpoint.
	retireReq chan struct{}
}

// startNode creates what is missing in the data directory and starts the
// node. On error nothing is left running.
func startNode(ctx context.Context, cfg *NodeConfig, getenv func(string) string, log *slog.Logger) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, started: time.Now(), retireReq: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, withHint(fmt.Errorf("failed to create data directory: %w", err), "check -data-dir and its permissions")
	}
	if n.id, err = loadOrCreateKey(filepath.Join(cfg.DataDir, identityFile)); err != nil {
		return nil, err
	}
	keySource, err := storageKeySource(cfg.StorageKey, getenv)
	if err != nil {
		return nil, err
	}
	n.store, err = store.Open(filepath.Join(cfg.DataDir, storeDir), store.Options{Key: keySource, Logger: log.With("component", "store")})
	if err != nil {
		switch {
		case errors.Is(err, store.ErrLocked):
			return nil, withHint(err, "another kadre node uses %s; stop it or choose another -data-dir", cfg.DataDir)
		case errors.Is(err, store.ErrWrongKey):
			return nil, withHint(err, "the storage key does not open this data directory; use the key (file, passphrase or KADRE_STORAGE_KEY) it was created with")
		}
		return nil, err
	}
	bootstrap, err := dht.ParseAddrs(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	n.host, err = dht.New(ctx, dht.Config{
		Identity:      n.id,
		ListenAddrs:   cfg.Listen,
		Bootstrap:     bootstrap,
		Server:        true,
		RefreshPeriod: time.Duration(cfg.RefreshInterval),
		Logger:        log.With("component", "dht"),
	})
	if err != nil {
		return nil, withHint(err, "check -listen: is the port already in use?")
	}
	n.metrics = newNodeMetrics(n)
	n.svc, err = dht.NewService(n.host, dht.ServiceConfig{
		Store:            n.store,
		Identity:         n.id,
		MaxGrantDuration: time.Duration(cfg.MaxGrantDuration),
		Capacity:         cfg.Capacity,
		PeerRate:         cfg.PeerRate,
		Logger:           log.With("component", "rpc"),
		Observe:          n.metrics.observe,
	})
	if err != nil {
		return nil, err
	}
	if err := n.host.Bootstrap(ctx); err != nil {
		// The node still serves; the routing table fills when peers find it.
		log.Warn("bootstrap failed", "err", err)
	}
	if err := n.writeNodeInfo(); err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if err := n.serveHTTP(cfg.MetricsAddr); err != nil {
			return nil, withHint(err, "check -metrics-addr, or set it to \"\" to disable the endpoint")
		}
	}
	var bg context.Context
	bg, n.cancel = context.WithCancel(context.Background())
	n.group, bg = errgroup.WithContext(bg)
	n.group.Go(func() error { n.pruneLoop(bg); return nil })
	n.group.Go(func() error { n.reprovideLoop(bg); return nil })
	addrs := make([]string, 0)
	for _, a := range n.host.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("node ready", "peer", n.host.ID().String(), "addrs", strings.Join(addrs, ","),
		"key", policy.PublicKeyOf(n.id.PublicKey()).String(), "data_dir", cfg.DataDir, "version", version)
	return n, nil
}

// shutdown stops the node within ctx's deadline.
func (n *node) shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { n.close(); close(done) }()
	select {
	case <-done:
		n.log.Info("stopped")
		return nil
	case <-ctx.Done():
		return errors.New("shutdown timed out")
	}
}

// close releases everything that was started; it tolerates a partly
// started node.
func (n *node) close() {
	if n.cancel != nil {
		n.cancel()
		n.group.Wait()
	}
	if n.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.http.Shutdown(sctx)
		cancel()
	}
	if n.svc != nil {
		n.svc.Close()
	}
	if n.host != nil {
		n.host.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

func (n *node) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(n.cfg.PruneInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := n.store.Prune(time.Now())
			if err != nil {
				n.log.Error("prune failed", "err", err)
				continue
			}
			n.log.Info("pruned", "grants", st.Grants, "tombstones", st.Tombstones)
		}
	}
}

// reprovideLoop announces the locators of the fragments held, at start and
// then every ReprovideInterval, so that recipients find this node after
// restarts and after nodes joined closer to a locator.
func (n *node) reprovideLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(n.cfg.ReprovideInterval))
	defer t.Stop()
	for {
		count, err := n.svc.Reprovide(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("reprovide failed", "err", err)
		} else if count > 0 {
			n.log.Debug("reprovided", "locators", count)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retire hands every fragment to other nodes before the node stops.
func (n *node) retire(ctx context.Context) {
	n.log.Info("retiring: handing fragments off")
	rep, err := n.svc.Retire(ctx)
	if err != nil {
		n.log.Error("hand-off interrupted", "err", err)
	}
	if rep != nil {
		n.log.Info("hand-off done", "moved", len(rep.Moved), "kept", len(rep.Kept), "expired", rep.Expired)
	}
}

// status is the JSON document of /status.
type status struct {
	Version          string   `json:"version"`
	PeerID           string   `json:"peer_id"`
	PublicKey        string   `json:"public_key"`
	Addrs            []string `json:"addrs"`
	Peers            int      `json:"peers"`
	RoutingTable     int      `json:"routing_table"`
	Grants           uint64   `json:"grants"`
	Tombstones       uint64   `json:"tombstones"`
	Capacity         uint64   `json:"capacity"`
	MaxGrantDuration string   `json:"max_grant_duration"`
	UptimeSeconds    int64    `json:"uptime_seconds"`
}

func (n *node) status() status {
	st, _ := n.store.Stats()
	s := status{
		Version:          version,
		PeerID:           n.host.ID().String(),
		PublicKey:        policy.PublicKeyOf(n.id.PublicKey()).String(),
		Peers:            n.host.ConnectedPeers(),
		RoutingTable:     n.host.RoutingTableSize(),
		Grants:           st.Grants,
		Tombstones:       st.Tombstones,
		Capacity:         n.cfg.Capacity,
		MaxGrantDuration: n.cfg.MaxGrantDuration.String(),
		UptimeSeconds:    int64(time.Since(n.started).Seconds()),
	}
	for _, a := range n.host.Addrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	return s
}

func (n *node) serveHTTP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.status())
	})
	// Profiles for operators, on the local address only.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("POST /retire", func(w http.ResponseWriter, r *http.Request) {
		select {
		case n.retireReq <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "retiring: handing fragments off, then stopping")
	})
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go n.http.Serve(ln)
	n.log.Info("metrics and status", "addr", ln.Addr().String())
	return nil
}

// writeNodeInfo records the node's peer ID and addresses for scripts.
func (n *node) writeNodeInfo() error {
	info := struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}{PeerID: n.host.ID().String()}
	for _, a := range n.host.Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	return writeFileAtomic(filepath.Join(n.cfg.DataDir, nodeInfoFile), append(b, '\n'), 0o644)
}

// nodeMetrics are the Prometheus metrics of one node, in a registry of
// their own (no global state). Gauges are read at scrape time.
type nodeMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newNodeMetrics(n *node) *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kadre_requests_total", Help: "RPC requests by type and outcome (ok or the refusal code).",
		}, []string{"type", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kadre_request_duration_seconds", Help: "RPC handling time by type.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"type"}),
	}
	stat := func(f func(store.Stats) uint64) func() float64 {
		return func() float64 {
			st, err := n.store.Stats()
			if err != nil {
				return -1
			}
			return float64(f(st))
		}
	}
	m.reg.MustRegister(m.requests, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_grants", Help: "Grants stored."},
			stat(func(s store.Stats) uint64 { return s.Grants })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_tombstones", Help: "Revocation tombstones stored."},
			stat(func(s store.Stats) uint64 { return s.Tombstones })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_peers", Help: "Connected peers."},
			func() float64 { return float64(n.host.ConnectedPeers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_routing_table_peers", Help: "Peers in the DHT routing table."},
			func() float64 { return float64(n.host.RoutingTableSize()) }),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *nodeMetrics) observe(kind string, code proto.Code, d time.Duration) {
	outcome := "ok"
	if code != proto.Code_CODE_UNSPECIFIED {
		outcome = strings.ToLower(code.String())
	}
	m.requests.WithLabelValues(kind, outcome).Inc()
	m.latency.WithLabelValues(kind).Observe(d.Seconds())
}

// storageKeySource maps the storage_key setting to a store key source.
func storageKeySource(kind string, getenv func(string) string) (store.KeySource, error) {
	switch kind {
	case "passphrase":
		p := getenv("KADRE_STORAGE_PASSPHRASE")
		if p == "" {
			return nil, withHint(errors.New("storage_key is passphrase but KADRE_STORAGE_PASSPHRASE is empty"), "set KADRE_STORAGE_PASSPHRASE")
		}
		return store.Passphrase([]byte(p)), nil
	case "env":
		k, err := hex.DecodeString(strings.TrimSpace(getenv("KADRE_STORAGE_KEY")))
		if err != nil || len(k) != store.KeySize {
			return nil, withHint(errors.New("storage_key is env but KADRE_STORAGE_KEY is not 64 hex characters"), "generate one with `head -c32 /dev/urandom | xxd -p -c64`")
		}
		return store.RawKey(k), nil
	default:
		return store.KeyFile(""), nil
	}
}

// loadOrCreateKey reads a hex secp256k1 key file, creating it (0600) with a
// fresh key on first start.
func loadOrCreateKey(path string) (*rekey.SecretKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		sk := rekey.GenerateSecretKey()
		if err := writeFileAtomic(path, []byte(hex.EncodeToString(sk.Bytes())+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("failed to write identity key: %w", err)
		}
		return sk, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read identity key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, withHint(fmt.Errorf("identity key %s is not hex: %w", path, err), "restore the file from a backup, or move it away to start as a new node")
	}
	sk, err := rekey.ParseSecretKey(raw)
	if err != nil {
		return nil, withHint(fmt.Errorf("identity key %s: %w", path, err), "restore the file from a backup, or move it away to start as a new node")
	}
	return sk, nil
}

// writeFileAtomic writes a file through a synced temporary file and a
// rename, so a crash leaves the old or the new content.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
