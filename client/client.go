package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Options configure Open. Home is required unless Keyring is given.
type Options struct {
	// Home is the user's kadre home directory (identity, grants ledger,
	// client.json).
	Home string
	// Keyring is the user's keys; nil loads them from Home.
	Keyring *rekey.Keyring
	// Passphrase unlocks a sealed identity file.
	Passphrase Passphrase
	// Bootstrap lists node multiaddrs ending in /p2p/<peer id>; nil reads
	// "bootstrap" from Home's client.json. Needed only for network
	// operations.
	Bootstrap []string
	// QueryTimeout bounds each DHT query. Default dht.DefaultQueryTimeout.
	QueryTimeout time.Duration
	// JoinTimeout bounds joining the network. Default 15 s.
	JoinTimeout time.Duration
	// Placement tunes where grants' fragments go: the network-group rule
	// (default IPv4 /24, IPv6 /48), an operator's admission list, the
	// sample size (dht.PlaceOptions).
	Placement dht.PlaceOptions
	// Logger receives the host's logs. Default: discard.
	Logger *slog.Logger
	// MapMaxAge is how old the cached holder map may be when a file by a
	// certified writer is checked against the owner's revoked writers; an
	// older one is fetched first. Default MapMaxAge; negative: always.
	MapMaxAge time.Duration
	// Host, if set, is the libp2p host the client runs on instead of
	// starting one (dht.Config.Host: the simulator's mock network). The
	// client closes it with Close.
	Host host.Host
}

// Errors of the client's network operations.
var (
	// ErrNoBootstrap means a network operation found no bootstrap address.
	ErrNoBootstrap = errors.New("client: no bootstrap address")
	// ErrJoin means no bootstrap node could be reached.
	ErrJoin = errors.New("client: failed to join the network")
	// ErrClosed means the client was used after Close.
	ErrClosed = errors.New("client: closed")
)

// Client is a user of a kadre network: an owner who grants, revokes and
// encrypts, a recipient who decrypts, or both. It holds the user's keys and,
// from the first network operation on, one libp2p host (a DHT client) that
// it keeps until Close. Its methods are safe for concurrent use.
type Client struct {
	opt  Options
	keys *rekey.Keyring
	me   policy.Identity

	mu     sync.Mutex
	host   *dht.Host
	closed bool
	maps   map[policy.PublicKey]*holderMap // the recipient's cache, by owner
	status *NetworkStatus                  // the last Status, for checkDuration
	seen   time.Time                       // when status was taken

	ledger *ledger
}

// statusMaxAge is how old a Status may be for a grant's check of what
// nodes keep: what they advertise changes slowly, and a node that refuses
// after all is skipped by the placement.
const statusMaxAge = time.Minute

// Open loads the user's identity. It does not touch the network: the host
// starts with the first operation that needs it.
func Open(opt Options) (*Client, error) {
	if opt.JoinTimeout == 0 {
		opt.JoinTimeout = 15 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	keys := opt.Keyring
	if keys == nil {
		if opt.Home == "" {
			return nil, errors.New("client: no home directory and no keyring")
		}
		var err error
		if keys, err = LoadIdentity(opt.Home, opt.Passphrase); err != nil {
			return nil, err
		}
	}
	c := &Client{opt: opt, keys: keys, me: policy.IdentityOf(keys), maps: map[policy.PublicKey]*holderMap{}}
	c.ledger = &ledger{path: ""}
	if opt.Home != "" {
		c.ledger.path = filepath.Join(opt.Home, GrantsFile)
	}
	return c, nil
}

// Identity is the user's public identity (what owners grant to).
func (c *Client) Identity() policy.Identity { return c.me }

// Keyring is the user's keys.
func (c *Client) Keyring() *rekey.Keyring { return c.keys }

// Close stops the host, if it started. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.host == nil {
		return nil
	}
	err := c.host.Close()
	c.host = nil
	return err
}

// Host returns the client's host, starting it and joining the network on
// first use.
func (c *Client) Host(ctx context.Context) (*dht.Host, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.host != nil {
		return c.host, nil
	}
	addrs, err := c.bootstrapAddrs()
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, ErrNoBootstrap
	}
	infos, err := dht.ParseAddrs(addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: bootstrap address: %w", ErrNoBootstrap, err)
	}
	h, err := dht.New(ctx, dht.Config{Identity: c.keys.Identity(), Bootstrap: infos, QueryTimeout: c.opt.QueryTimeout, Logger: c.opt.Logger, Host: c.opt.Host})
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, c.opt.JoinTimeout)
	defer cancel()
	if err := h.Bootstrap(bctx); err != nil {
		h.Close()
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	c.host = h
	return h, nil
}

// bootstrapAddrs are Options.Bootstrap, else client.json's "bootstrap".
func (c *Client) bootstrapAddrs() ([]string, error) {
	if c.opt.Bootstrap != nil || c.opt.Home == "" {
		return c.opt.Bootstrap, nil
	}
	var cc struct {
		Bootstrap []string `json:"bootstrap"`
	}
	b, err := os.ReadFile(filepath.Join(c.opt.Home, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &cc); err != nil {
		return nil, fmt.Errorf("client: %s: %w", filepath.Join(c.opt.Home, ConfigFile), err)
	}
	return cc.Bootstrap, nil
}

// NodeStatus is one node as this client sees it.
type NodeStatus struct {
	Peer      string
	Reachable bool
	Outcome   dht.Outcome // why it is not reachable
	Error     error
	// From its signed node info:
	Software         string
	MaxGrantDuration time.Duration
	Capacity         uint64
	FreeSlots        uint64
	Latency          time.Duration
}

// NetworkStatus is the network as this client sees it.
type NetworkStatus struct {
	Identity string // this user's identity
	Peer     string // this client's peer ID
	Nodes    []NodeStatus
}

// Status asks every node of the client's routing table for its signed node
// info.
func (c *Client) Status(ctx context.Context) (*NetworkStatus, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	peers := h.RoutingTablePeers()
	out := make([]NodeStatus, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = nodeStatus(ctx, h, p)
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	st := &NetworkStatus{Identity: c.me.String(), Peer: h.ID().String(), Nodes: out}
	c.mu.Lock()
	c.status, c.seen = st, time.Now()
	c.mu.Unlock()
	return st, nil
}

// recentStatus returns the last Status if it is younger than maxAge, else
// a new one.
func (c *Client) recentStatus(ctx context.Context, maxAge time.Duration) (*NetworkStatus, error) {
	c.mu.Lock()
	st, seen := c.status, c.seen
	c.mu.Unlock()
	if st != nil && time.Since(seen) < maxAge {
		return st, nil
	}
	return c.Status(ctx)
}

func nodeStatus(ctx context.Context, h *dht.Host, p peer.ID) NodeStatus {
	cctx, cancel := context.WithTimeout(ctx, dht.DefaultPerNodeTimeout)
	defer cancel()
	start := time.Now()
	ni, err := h.NodeInfo(cctx, p)
	ns := NodeStatus{Peer: p.String()}
	if err != nil {
		ns.Error, ns.Outcome = err, dht.Classify(err)
		return ns
	}
	ns.Reachable = true
	ns.Software = ni.Software
	ns.MaxGrantDuration = ni.MaxDuration()
	ns.Capacity, ns.FreeSlots = ni.Capacity, ni.FreeSlots
	ns.Latency = time.Since(start)
	return ns
}
