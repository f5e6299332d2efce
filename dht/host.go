package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/kadre/kadre/internal/version"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Protocol identifiers (SPEC.md §5.1). kadre's DHT speaks
// /kadre/kad/1.0.0 and never joins the public IPFS network: it has no
// default bootstrap peers and refuses peers without this protocol.
const (
	ProtocolPrefix = protocol.ID("/kadre")
	RPCProtocol    = protocol.ID("/kadre/rpc/1.0.0")
)

// Config configures a Host. The zero value of every field but Identity has
// a documented default.
type Config struct {
	// Identity is the secp256k1 key of the node or user; the peer ID is
	// derived from its public key.
	Identity *rekey.SecretKey
	// ListenAddrs are multiaddrs to listen on. Default: /ip4/127.0.0.1/tcp/0
	// for servers, none for clients.
	ListenAddrs []string
	// Bootstrap peers to connect to first.
	Bootstrap []peer.AddrInfo
	// Server puts the DHT in server mode (nodes). Clients (the owner and
	// recipient commands) only query.
	Server bool
	// RefreshPeriod is the routing-table refresh period. Default
	// DefaultRefreshPeriod.
	RefreshPeriod time.Duration
	// QueryTimeout bounds each DHT query. Default DefaultQueryTimeout.
	QueryTimeout time.Duration
	// JoinRefreshWait bounds how long Bootstrap waits for the routing
	// table's first refresh. Default DefaultJoinRefreshWait.
	JoinRefreshWait time.Duration
	// Logger receives the host's logs. Default: discard.
	Logger *slog.Logger
	// LimitLoopback applies the connection limits per IP address and per
	// subnet to loopback connections too (libp2p exempts 127/8 and ::1):
	// for abuse tests on one machine.
	LimitLoopback bool
	// ReusePort dials from the listen address (SO_REUSEPORT), so that a
	// client on a loopback testnet connects from an address of its own.
	// Off by default (SPEC.md §5.1): only for test clients that are never
	// dialled.
	ReusePort bool
	// Host, if set, is an already-constructed libp2p host to run on instead
	// of starting one (the simulator, internal/sim, runs kadre on hosts of
	// go-libp2p's mock network). Its peer ID must be Identity's;
	// ListenAddrs is ignored, and Close closes it.
	Host host.Host
}

// Connection limits per IP address and subnet (SPEC.md §8.3): at most
// ConnsPerIP connections from one public IPv4 address or IPv6 /56, and
// ConnsPerSubnet from one public IPv4 /24 or IPv6 /48, whatever the
// identities. Loopback and private addresses (a private deployment's own
// network, where every node may sit in one /24) are exempt, as libp2p
// exempts loopback; Config.LimitLoopback subjects loopback to them.
const (
	ConnsPerIP     = 8
	ConnsPerSubnet = 64
	// MaxConnsInbound bounds inbound connections in all.
	MaxConnsInbound = 512
	// MaxRPCStreams bounds inbound RPC streams in all: with
	// MaxStreamsPerGroup a network, it takes 32 networks to hold them.
	MaxRPCStreams = 2048
)

var (
	privateV4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}
	privateV6 = []string{"fc00::/7", "fe80::/10"}
)

// connLimitExempt are the prefixes exempt from the per-IP and per-subnet
// connection limits.
func connLimitExempt(loopback bool) (v4, v6 []rcmgr.NetworkPrefixLimit) {
	add := func(dst *[]rcmgr.NetworkPrefixLimit, p string) {
		*dst = append(*dst, rcmgr.NetworkPrefixLimit{Network: netip.MustParsePrefix(p), ConnCount: math.MaxInt})
	}
	for _, p := range privateV4 {
		add(&v4, p)
	}
	for _, p := range privateV6 {
		add(&v6, p)
	}
	if loopback {
		add(&v4, "127.0.0.0/8")
		add(&v6, "::1/128")
	}
	return v4, v6
}

// Host is a libp2p host with kadre's private Kademlia DHT.
type Host struct {
	h      host.Host
	kad    *kaddht.IpfsDHT
	cfg    Config
	log    *slog.Logger
	closed chan struct{}
}

// New starts a host: TCP only (port reuse off, SPEC.md §5.1), Noise, yamux,
// no relay, resource limits for kadre's RPC protocol, and the DHT. It
// connects to the bootstrap peers it can reach; Bootstrap waits for the
// routing table.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Identity == nil {
		return nil, errors.New("dht: no identity key")
	}
	if cfg.RefreshPeriod == 0 {
		cfg.RefreshPeriod = DefaultRefreshPeriod
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.JoinRefreshWait == 0 {
		cfg.JoinRefreshWait = DefaultJoinRefreshWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ListenAddrs == nil && cfg.Server {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	priv, err := libp2pKey(cfg.Identity)
	if err != nil {
		return nil, err
	}
	if cfg.Host != nil {
		if id, err := peer.IDFromPrivateKey(priv); err != nil || id != cfg.Host.ID() {
			return nil, errors.New("dht: the given host's peer ID is not the identity's")
		}
		return startDHT(ctx, cfg.Host, cfg)
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.AddProtocolLimit(RPCProtocol,
		rcmgr.BaseLimit{StreamsInbound: MaxRPCStreams, StreamsOutbound: 1024, Streams: MaxRPCStreams + 1024, Memory: 256 << 20},
		rcmgr.BaseLimitIncrease{})
	limits.AddProtocolPeerLimit(RPCProtocol,
		rcmgr.BaseLimit{StreamsInbound: MaxStreamsPerPeer, StreamsOutbound: 64, Streams: MaxStreamsPerPeer + 64, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{})
	// Connections are what a crowd of identities exhausts first: allow
	// 512 inbound, and trim idle ones well before that limit (the
	// connection manager's high-water mark must be below it, or it never
	// frees a slot for a newcomer). A fixed number, not scaled with the
	// machine's memory: each costs the node about 50 KiB, and what a crowd
	// can make a node hold must not depend on the machine (SPEC.md §8.3).
	fixed := rcmgr.PartialLimitConfig{System: rcmgr.ResourceLimits{ConnsInbound: MaxConnsInbound, Conns: 2 * MaxConnsInbound}}
	exempt4, exempt6 := connLimitExempt(!cfg.LimitLoopback)
	rmOpts := []rcmgr.Option{rcmgr.WithLimitPerSubnet(
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: ConnsPerIP}, {PrefixLength: 24, ConnCount: ConnsPerSubnet}},
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: ConnsPerIP}, {PrefixLength: 48, ConnCount: ConnsPerSubnet}},
	), rcmgr.WithNetworkPrefixLimit(exempt4, exempt6)}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(fixed.Build(limits.AutoScale())), rmOpts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(128, 192, connmgr.WithGracePeriod(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("failed to create connection manager: %w", err)
	}
	tcpOpts := []any{tcp.DisableReuseport()}
	if cfg.ReusePort {
		tcpOpts = nil
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent(version.UserAgent),
	}
	if len(cfg.ListenAddrs) > 0 {
		opts = append(opts, libp2p.ListenAddrStrings(cfg.ListenAddrs...))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	if cfg.Server {
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to start libp2p host: %w", err)
	}
	return startDHT(ctx, h, cfg)
}

// startDHT starts kadre's DHT on a running libp2p host.
func startDHT(ctx context.Context, h host.Host, cfg Config) (*Host, error) {
	mode := kaddht.ModeClient
	if cfg.Server {
		mode = kaddht.ModeServer
	}
	kad, err := kaddht.New(ctx, h,
		kaddht.Mode(mode),
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.DisableValues(),
		// No provider records: holders are found through the owner-signed
		// holder map (SPEC.md §5.2), so no public point decides discovery,
		// and nobody can fill a node with records.
		kaddht.DisableProviders(),
		kaddht.BootstrapPeers(cfg.Bootstrap...),
		kaddht.RoutingTableRefreshPeriod(cfg.RefreshPeriod),
		kaddht.RoutingTableRefreshQueryTimeout(cfg.QueryTimeout),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("failed to start DHT: %w", err)
	}
	return &Host{h: h, kad: kad, cfg: cfg, log: cfg.Logger, closed: make(chan struct{})}, nil
}

// Close stops the DHT and the host. It is idempotent.
func (h *Host) Close() error {
	select {
	case <-h.closed:
		return nil
	default:
	}
	close(h.closed)
	err := h.kad.Close()
	return errors.Join(err, h.h.Close())
}

// Bootstrap connects to the configured bootstrap peers (at least one must
// answer when any are configured), waits for the first to enter the
// routing table and refreshes the table from it. The refresh is waited for
// at most JoinRefreshWait: its lookups can wait on nodes that do not
// answer or answer slowly (churn, a crowd of sybils), and a host with
// peers in its table already finds what it needs, so a slow refresh goes
// on in the background instead of failing the join.
func (h *Host) Bootstrap(ctx context.Context) error {
	var connected int
	var errs []error
	for _, p := range h.cfg.Bootstrap {
		if p.ID == h.h.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, h.cfg.QueryTimeout)
		err := h.h.Connect(cctx, p)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
			continue
		}
		connected++
	}
	if connected == 0 && len(errs) > 0 {
		return fmt.Errorf("dht: no bootstrap peer reachable: %w", errors.Join(errs...))
	}
	if connected == 0 {
		return nil
	}
	// Peers enter the routing table once identify shows they speak the DHT
	// protocol; wait for the first before refreshing from it.
	for h.kad.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("dht: connected to %d bootstrap peers, none of which entered the routing table (do they speak %s?): %w",
				connected, ProtocolPrefix, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	wait := time.NewTimer(h.cfg.JoinRefreshWait)
	defer wait.Stop()
	select {
	case err := <-h.kad.ForceRefresh():
		if err != nil && !errors.Is(err, context.Canceled) {
			h.log.Debug("routing table refresh", "err", err)
		}
		return nil
	case <-wait.C:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
	}
	h.log.Debug("routing table refresh goes on after the join", "peers", h.kad.RoutingTable().Size())
	return nil
}

// ID is the host's peer ID.
func (h *Host) ID() peer.ID { return h.h.ID() }

// Libp2p returns the underlying libp2p host.
func (h *Host) Libp2p() host.Host { return h.h }

// Addrs returns the host's full multiaddrs (with /p2p/<id>).
func (h *Host) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.h.ID(), Addrs: h.h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// RoutingTableSize is the number of peers in the routing table.
func (h *Host) RoutingTableSize() int { return h.kad.RoutingTable().Size() }

// ConnectedPeers is the number of peers with an open connection.
func (h *Host) ConnectedPeers() int { return len(h.h.Network().Peers()) }

// ClosestPeers returns up to k peers closest to key by the DHT's XOR metric
// (SHA-256 of the key against SHA-256 of the peer ID), nearest first,
// including this host when it is a server, and only peers this host is
// connected to: a lookup may return peers that died since it learned of
// them, and those are no longer connected after its follow-up phase.
// Callers still confirm each peer with an RPC under a deadline.
func (h *Host) ClosestPeers(ctx context.Context, key []byte, k int) ([]peer.ID, error) {
	// A vanished peer among those the lookup dials costs DefaultDialTimeout,
	// not the whole query.
	qctx, cancel := context.WithTimeout(network.WithDialPeerTimeout(ctx, DefaultDialTimeout), h.cfg.QueryTimeout)
	defer cancel()
	ps, err := h.kad.GetClosestPeers(qctx, string(key))
	if err != nil && !(errors.Is(err, context.DeadlineExceeded) && len(ps) > 0) {
		if errors.Is(err, kb.ErrLookupFailure) {
			return nil, fmt.Errorf("dht: routing table is empty: %w", err)
		}
		return nil, fmt.Errorf("dht: failed to find closest peers: %w", err)
	}
	if h.cfg.Server {
		ps = append(ps, h.h.ID())
	}
	// Routing tables lag behind churn: a node that restarted may be in no
	// table yet, but this host still knows it speaks kadre's DHT.
	ps = append(ps, h.knownServers()...)
	ps = kb.SortClosestPeers(unique(ps), kb.ConvertKey(string(key)))
	if len(ps) > 2*k {
		ps = ps[:2*k]
	}
	h.reconnect(ctx, ps)
	out := make([]peer.ID, 0, k)
	for _, p := range ps {
		if p != h.h.ID() && h.h.Network().Connectedness(p) != network.Connected {
			continue
		}
		out = append(out, p)
		if len(out) == k {
			break
		}
	}
	return out, nil
}

// unique drops repeated peers, keeping the first of each.
func unique(ps []peer.ID) []peer.ID {
	seen := make(map[peer.ID]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// knownServers lists the peers of the peerstore known to speak kadre's DHT
// protocol (learned from identify), connected or not.
func (h *Host) knownServers() []peer.ID {
	var out []peer.ID
	proto := ProtocolPrefix + "/kad/1.0.0"
	for _, p := range h.h.Peerstore().Peers() {
		if p == h.h.ID() {
			continue
		}
		if ok, err := h.h.Peerstore().SupportsProtocols(p, proto); err == nil && len(ok) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// reconnect dials, in parallel and for at most a second, the peers of ps
// this host is not connected to, bypassing the swarm's dial backoff: a
// lookup's own dials fail at once for a node that restarted after a failed
// dial, which would otherwise be left out for minutes.
func (h *Host) reconnect(ctx context.Context, ps []peer.ID) {
	cctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "kadre reconnect"), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ps {
		if p == h.h.ID() || h.h.Network().Connectedness(p) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.h.Connect(cctx, peer.AddrInfo{ID: p})
		}()
	}
	wg.Wait()
}

// SortByDistance sorts peers by XOR distance to key, nearest first.
func SortByDistance(ps []peer.ID, key []byte) []peer.ID {
	return kb.SortClosestPeers(ps, kb.ConvertKey(string(key)))
}

// libp2pKey converts a rekey secret key to a libp2p secp256k1 key.
func libp2pKey(sk *rekey.SecretKey) (crypto.PrivKey, error) {
	k, err := crypto.UnmarshalSecp256k1PrivateKey(sk.Bytes())
	if err != nil {
		return nil, fmt.Errorf("dht: invalid identity key: %w", err)
	}
	return k, nil
}

// PeerIDOf returns the peer ID of a secp256k1 public key. The ID embeds the
// key (identity multihash), so no lookup is needed either way.
func PeerIDOf(pk policy.PublicKey) (peer.ID, error) {
	k, err := crypto.UnmarshalSecp256k1PublicKey(pk[:])
	if err != nil {
		return "", fmt.Errorf("dht: invalid public key: %w", err)
	}
	return peer.IDFromPublicKey(k)
}

// PublicKeyOf returns the secp256k1 public key of a peer ID, or an error
// for peers with another key type.
func PublicKeyOf(id peer.ID) (policy.PublicKey, error) {
	k, err := id.ExtractPublicKey()
	if err != nil {
		return policy.PublicKey{}, fmt.Errorf("dht: peer %s: %w", id, err)
	}
	if k.Type() != crypto.Secp256k1 {
		return policy.PublicKey{}, fmt.Errorf("dht: peer %s does not have a secp256k1 key", id)
	}
	raw, err := k.Raw()
	if err != nil {
		return policy.PublicKey{}, err
	}
	return policy.ParsePublicKey(raw)
}

// ParseAddrs parses multiaddrs that end in /p2p/<peer id> and merges the
// addresses of each peer.
func ParseAddrs(ss []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range ss {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%w (each address must end in /p2p/<peer id>)", err)
	}
	return infos, nil
}

// RoutingTablePeers lists the peers in the routing table.
func (h *Host) RoutingTablePeers() []peer.ID { return h.kad.RoutingTable().ListPeers() }
