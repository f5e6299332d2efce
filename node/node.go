// Package node runs a whole kadre node in-process: its data directory
// (identity key, LMDB store), the libp2p host with the private DHT, the RPC
// service, the background loops (expiry pruning, holder-map republishing),
// the Prometheus registry, the local HTTP endpoint (status, metrics,
// retirement, profiles) and retirement with hand-off (SPEC.md §5). `kadre
// run` is flags and a call to Start; tests and simulations start as many
// nodes as they like in one process.
//
// # Security
//
// The local endpoint listens on the address the operator configures
// (127.0.0.1 by default) and can retire the node. Every request needs the
// token of the data directory's endpoint.cookie (0600, new at every
// start), requests from web pages (an Origin header) are refused, and
// profiles are served only with Config.Pprof (package localapi, SPEC.md
// §8.6); still, it should not be reachable from other machines. The
// identity key is sealed under the storage key (SPEC.md §8.7).
// Everything a remote party can make the node do goes through the RPC
// service (package dht), within the quotas and limits of SPEC.md §8.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/internal/seal"
	"github.com/kadre/kadre/internal/version"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// Files in a node's data directory (SPEC.md §5.5).
const (
	IdentityFile = "identity.key" // the node's secp256k1 key, sealed under the storage key, 0600
	StoreDir     = "store"        // LMDB environment and storage key file
	InfoFile     = "node.json"    // peer ID, addresses and local endpoint, for scripts
	// CookieFile holds the local endpoint's token while the node runs
	// (0600, new at every start; SPEC.md §8.6).
	CookieFile = "endpoint.cookie"
)

// Options are what Start needs besides the configuration.
type Options struct {
	// StorageKey provides the key that seals the store. Default: a 0600
	// key file in the store directory (store.KeyFile("")).
	StorageKey store.KeySource
	// Logger receives the node's structured logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock of the RPC service and the prune loop. Default
	// time.Now.
	Now func() time.Time
	// Admission, if set, is the verified admission list of a private
	// deployment: the node hands fragments off only to admitted nodes.
	Admission *policy.AdmissionList
}

// Node is a running node. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	id      *rekey.SecretKey
	store   *store.Store
	host    *dht.Host
	svc     *dht.Service
	metrics *metrics
	http    *endpoint
	started time.Time

	cancel context.CancelFunc
	group  *errgroup.Group

	retireOnce sync.Once
	retired    chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// Start creates what is missing in the data directory and starts the node:
// store, host, service, bootstrap, node.json, the local endpoint and the
// background loops. On error nothing is left running.
func Start(ctx context.Context, cfg Config, opt Options) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.StorageKey == nil {
		opt.StorageKey = store.KeyFile("")
	}
	n := &Node{cfg: cfg, log: opt.Logger, now: opt.Now, started: time.Now(), retired: make(chan struct{})}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory: %w", err)
	}
	var idKey *[seal.KeySize]byte
	n.store, idKey, err = openStore(cfg.DataDir, store.Options{Key: opt.StorageKey, Logger: n.log.With("component", "store"),
		Limits: cfg.Limits(), CounterFile: cfg.CounterFile, AcceptRollback: cfg.AcceptRollback})
	if err != nil {
		return nil, err
	}
	n.id, err = loadOrCreateIdentity(filepath.Join(cfg.DataDir, IdentityFile), idKey, n.log)
	clear(idKey[:])
	if err != nil {
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
		Logger:        n.log.With("component", "dht"),
		LimitLoopback: cfg.LimitLoopback,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrListen, err)
	}
	n.metrics = newMetrics(n)
	n.svc, err = dht.NewService(n.host, dht.ServiceConfig{
		Store:            n.store,
		Identity:         n.id,
		MaxGrantDuration: time.Duration(cfg.MaxGrantDuration),
		Capacity:         cfg.Capacity,
		PeerRate:         cfg.PeerRate,
		Now:              n.now,
		Logger:           n.log.With("component", "rpc"),
		Observe:          n.metrics.observe,
		Handoff:          dht.PlaceOptions{Diversity: cfg.diversity(), Admission: opt.Admission},
		KFragCache:       cfg.KFragCache,
	})
	if err != nil {
		return nil, err
	}
	if err := n.host.Bootstrap(ctx); err != nil {
		// The node still serves; the routing table fills when peers find it.
		n.log.Warn("bootstrap failed", "err", err)
	}
	if cfg.MetricsAddr != "" {
		if n.http, err = serve(n, cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEndpoint, err)
		}
	}
	if err := n.writeInfo(); err != nil {
		return nil, err
	}
	var bg context.Context
	bg, n.cancel = context.WithCancel(context.Background())
	n.group, bg = errgroup.WithContext(bg)
	n.group.Go(func() error { n.pruneLoop(bg); return nil })
	n.group.Go(func() error { n.republishLoop(bg); return nil })
	n.log.Info("node ready", "peer", n.host.ID().String(), "addrs", strings.Join(n.Addrs(), ","),
		"key", n.PublicKey().String(), "data_dir", cfg.DataDir, "version", version.Version)
	return n, nil
}

// Host is the node's libp2p host.
func (n *Node) Host() *dht.Host { return n.host }

// Service is the node's RPC service.
func (n *Node) Service() *dht.Service { return n.svc }

// Store is the node's fragment store.
func (n *Node) Store() *store.Store { return n.store }

// PublicKey is the node's identity key.
func (n *Node) PublicKey() policy.PublicKey { return policy.PublicKeyOf(n.id.PublicKey()) }

// Addrs are the node's full multiaddrs (with /p2p/<id>).
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// EndpointAddr is the address the local endpoint listens on, "" if none.
func (n *Node) EndpointAddr() string {
	if n.http == nil {
		return ""
	}
	return n.http.addr
}

// RetireRequested is closed when the local endpoint retired the node: the
// caller should then Close it.
func (n *Node) RetireRequested() <-chan struct{} { return n.retired }

// Retire hands every fragment to other nodes (dht.Service.Retire); from
// the first call on the node refuses new fragments.
func (n *Node) Retire(ctx context.Context) (*dht.RetireReport, error) {
	n.log.Info("retiring: handing fragments off")
	rep, err := n.svc.Retire(ctx)
	if err != nil {
		n.log.Error("hand-off interrupted", "err", err)
	}
	if rep != nil {
		n.log.Info("hand-off done", "moved", len(rep.Moved), "kept", len(rep.Kept), "expired", rep.Expired)
	}
	return rep, err
}

// Shutdown closes the node within ctx's deadline.
func (n *Node) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		n.log.Info("stopped")
		return err
	case <-ctx.Done():
		return errors.New("node: shutdown timed out")
	}
}

// Close stops the loops, the endpoint, the service, the host and the store,
// in that order, and waits for each. It is idempotent and tolerates a
// partly started node.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
			n.group.Wait()
		}
		var errs []error
		if n.http != nil {
			errs = append(errs, n.http.close())
		}
		if n.svc != nil {
			errs = append(errs, n.svc.Close())
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func (n *Node) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(n.cfg.PruneInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := n.store.Prune(n.now())
			if err != nil {
				n.log.Error("prune failed", "err", err)
				continue
			}
			n.log.Info("pruned", "grants", st.Grants, "tombstones", st.Tombstones)
		}
	}
}

// republishLoop stores the maps of the pairs this node holds fragments of
// at their rendezvous points again, every RepublishInterval.
func (n *Node) republishLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(n.cfg.RepublishInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			done, err := n.svc.Republish(ctx)
			if err != nil && ctx.Err() == nil {
				n.log.Error("republishing holder maps failed", "err", err)
				continue
			}
			n.log.Debug("republished holder maps", "maps", done)
		}
	}
}

// Status is the JSON document of the endpoint's /status.
type Status struct {
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
	// State is what the node keeps for others against its limits
	// (SPEC.md §8.2), by kind: grants, history, maps.
	State map[string]StateUsage `json:"state"`
	// KFragCache is the verified-kfrag cache: entries, hits, misses.
	KFragCache struct {
		Entries int    `json:"entries"`
		Hits    uint64 `json:"hits"`
		Misses  uint64 `json:"misses"`
	} `json:"kfrag_cache"`
}

// StateUsage is one kind of state: units kept, and the limits in all, per
// owner (and per peer), per network group, and the reserve.
type StateUsage struct {
	Used    uint64 `json:"used"`
	Limit   uint64 `json:"limit,omitempty"`
	Owner   uint64 `json:"owner_limit,omitempty"`
	Group   uint64 `json:"group_limit,omitempty"`
	Reserve uint64 `json:"reserve,omitempty"`
}

var stateNames = [...]string{quota.Grants: "grants", quota.History: "history", quota.Maps: "maps"}

// Status describes the node now.
func (n *Node) Status() Status {
	grants, tombs, _ := n.store.Counts()
	usage, _ := n.store.UsageOf(policy.PublicKey{}, nil)
	limits := n.cfg.Limits()
	state := map[string]StateUsage{}
	for k, name := range stateNames {
		l := limits[k]
		state[name] = StateUsage{Used: usage.Node[k], Limit: l.All, Owner: l.Owner, Group: l.Group, Reserve: l.Reserve}
	}
	st := Status{
		Version:          version.Version,
		PeerID:           n.host.ID().String(),
		PublicKey:        n.PublicKey().String(),
		Addrs:            n.Addrs(),
		Peers:            n.host.ConnectedPeers(),
		RoutingTable:     n.host.RoutingTableSize(),
		Grants:           grants,
		Tombstones:       tombs,
		Capacity:         n.cfg.Capacity,
		MaxGrantDuration: n.cfg.MaxGrantDuration.String(),
		UptimeSeconds:    int64(time.Since(n.started).Seconds()),
		State:            state,
	}
	st.KFragCache.Hits, st.KFragCache.Misses, st.KFragCache.Entries = n.svc.KFragCacheStats()
	return st
}

// Info is the content of node.json.
type Info struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	// Endpoint is the local endpoint's address, "" if none; its token is
	// in CookieFile.
	Endpoint string `json:"endpoint,omitempty"`
}

// ReadInfo reads the node.json of a data directory.
func ReadInfo(dataDir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("node: %s: %w", InfoFile, err)
	}
	return &info, nil
}

// writeInfo records the node's peer ID, addresses and endpoint for scripts.
func (n *Node) writeInfo() error {
	info := Info{PeerID: n.host.ID().String(), Addrs: n.Addrs(), Endpoint: n.EndpointAddr()}
	b, _ := json.MarshalIndent(info, "", "  ")
	return fsx.WriteFile(filepath.Join(n.cfg.DataDir, InfoFile), append(b, '\n'), 0o644)
}

// Errors of Start that an operator fixes in the configuration or the data
// directory.
var (
	// ErrIdentityKey means the node's identity key file is damaged or
	// does not open with the storage key.
	ErrIdentityKey = errors.New("node: the identity key file is damaged or sealed under another storage key")
	// ErrListen means the host could not listen on a configured address.
	ErrListen = errors.New("node: cannot listen on the configured addresses")
	// ErrEndpoint means the local endpoint could not listen.
	ErrEndpoint = errors.New("node: cannot start the local endpoint")
)

// Identity is what `kadre id` prints of a node's data directory: its peer
// ID, from its identity key, and the addresses it last listened on (from
// node.json, empty if it never started).
type Identity struct {
	PeerID    string   `json:"peer_id"`
	PublicKey string   `json:"public_key"`
	Addrs     []string `json:"addrs,omitempty"`
}

// ReadIdentity reads a node's identity from its data directory without
// starting it. The identity key is sealed under the storage key
// (SPEC.md §8.7): it is opened with the data directory's key file; a node
// whose storage key comes from a passphrase is known by the peer ID it
// wrote to node.json when it last started.
func ReadIdentity(dataDir string) (*Identity, error) {
	path := filepath.Join(dataDir, IdentityFile)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	sk, err := readIdentityWithKeyFile(dataDir)
	var pk policy.PublicKey
	switch {
	case err == nil:
		pk = policy.PublicKeyOf(sk.PublicKey())
	case errors.Is(err, fs.ErrNotExist):
		info, ierr := ReadInfo(dataDir)
		if ierr != nil {
			return nil, fmt.Errorf("%w: %s is sealed under a storage key this directory has no key file for, and the node never started here (%s): %w", ErrIdentityKey, path, InfoFile, ierr)
		}
		id, ierr := peer.Decode(info.PeerID)
		if ierr == nil {
			pk, ierr = dht.PublicKeyOf(id)
		}
		if ierr != nil {
			return nil, fmt.Errorf("node: %s: peer ID: %w", InfoFile, ierr)
		}
	default:
		return nil, err
	}
	id, err := dht.PeerIDOf(pk)
	if err != nil {
		return nil, err
	}
	out := &Identity{PeerID: id.String(), PublicKey: pk.String()}
	if b, err := os.ReadFile(filepath.Join(dataDir, InfoFile)); err == nil {
		var info struct {
			PeerID string   `json:"peer_id"`
			Addrs  []string `json:"addrs"`
		}
		if json.Unmarshal(b, &info) == nil && info.PeerID == out.PeerID {
			out.Addrs = info.Addrs
		}
	}
	return out, nil
}

// readIdentityWithKeyFile opens the identity key of dataDir with the
// storage key in its store's key file.
func readIdentityWithKeyFile(dataDir string) (*rekey.SecretKey, error) {
	k, err := store.KeyFile("").StorageKey(filepath.Join(dataDir, StoreDir), false)
	if err != nil {
		return nil, err
	}
	sealKey, err := identitySealKey(k)
	clear(k[:])
	if err != nil {
		return nil, err
	}
	defer clear(sealKey[:])
	sk, _, err := readIdentity(filepath.Join(dataDir, IdentityFile), sealKey)
	return sk, err
}
