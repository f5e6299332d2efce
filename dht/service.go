package dht

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/internal/version"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// Store keeps a node's fragments, tombstones and sequence marks (SPEC.md
// §6). Package store is the implementation (LMDB, encrypted at rest); the
// service takes it through this interface so that the programs that use
// only the client side of this package never link it.
type Store interface {
	// PutGrantAs stores a validated grant under g.StorageKey() after the
	// sequence and tombstone checks, charged to c (SPEC.md §8.2); errors
	// match policy.ErrStaleSequence, policy.ErrRevoked, policy.ErrExpired
	// and quota.ErrQuota.
	PutGrantAs(g *policy.Grant, now time.Time, c *quota.Charge) error
	// Grant returns the record held for key, or an error matching
	// policy.ErrNotGranted.
	Grant(key policy.StorageKey) ([]byte, error)
	// Lookup finds the deepest live grant of owner to recipient among
	// levels (root first); when none is live, level is the deepest level
	// that had anything and err matches policy.ErrRevoked or
	// policy.ErrExpired, or policy.ErrNotGranted.
	Lookup(owner, recipient policy.PublicKey, levels []policy.PathHash, now time.Time) (level int, id policy.RecordID, record []byte, err error)
	// RevokeAs applies a validated revocation charged to c; held says
	// whether a fragment was deleted, deleted names it. Only a revocation
	// of a grant not held may fail with quota.ErrQuota.
	RevokeAs(r *policy.Revocation, now, keepUntil time.Time, c *quota.Charge) (deleted policy.RecordID, held bool, err error)
	// DeleteGrant drops the grant held for key if it is still id (a
	// fragment handed off), keeping the sequence mark.
	DeleteGrant(key policy.StorageKey, id policy.RecordID) error
	// ForEachGrant calls fn with every stored grant record.
	ForEachGrant(fn func(record []byte) error) error
	// Counts returns the number of grants and tombstones stored.
	Counts() (grants, tombstones uint64, err error)
	// RaiseMarkAs raises the sequence mark of (owner, path hash) to seq,
	// a new mark charged to c; Mark reads it (0 if none).
	RaiseMarkAs(owner policy.PublicKey, ph policy.PathHash, seq uint64, keepUntil time.Time, c *quota.Charge) error
	Mark(owner policy.PublicKey, ph policy.PathHash) (uint64, error)
	// Revocations returns the revocations kept with the tombstones of
	// owner's grants to recipient.
	Revocations(owner, recipient policy.PublicKey) ([][]byte, error)

	// PutMapPageAs keeps a verified holder map page (raw: its bytes),
	// charged to c; an older map sequence fails matching
	// policy.ErrStaleSequence.
	PutMapPageAs(page *policy.HolderMap, raw []byte, now time.Time, c *quota.Charge) error
	// MapPage returns page i of owner's map kept under point p, nil if
	// none.
	MapPage(p policy.Point, owner policy.PublicKey, i int) ([]byte, error)
	// Map returns the pages (nil where missing) and links kept for a
	// pair; no pages if none.
	Map(owner, recipient policy.PublicKey) (pages, links [][]byte, err error)
	// Links returns the links kept for owner's pair whose map is under p.
	Links(p policy.Point, owner policy.PublicKey) ([][]byte, error)
	// PutLink keeps a verified hand-off link with its pair's map.
	PutLink(l *policy.HandoffLink) error

	// Free is how many more units of kind writes of owner's records
	// charged to c may still add (node info's free slots).
	Free(kind quota.Kind, owner policy.PublicKey, c *quota.Charge) (uint64, error)
}

// ServiceConfig configures a node's RPC service.
type ServiceConfig struct {
	// Store keeps the node's fragments. Required.
	Store Store
	// Identity is the node's key: the host's identity, and the signer of
	// receipts and node info. Required.
	Identity *rekey.SecretKey
	// MaxGrantDuration is the longest grant the node accepts. Default
	// DefaultMaxGrantDuration.
	MaxGrantDuration time.Duration
	// Capacity is how many grants the node keeps at most. Default
	// DefaultCapacity.
	Capacity uint64
	// RequestReadTimeout bounds the arrival of a request (at most 16 KiB)
	// after its stream opened, so that silent streams are cut off quickly.
	// Default DefaultRequestReadTimeout (at most RequestTimeout).
	RequestReadTimeout time.Duration
	// RequestTimeout bounds reading a request, handling it and writing the
	// answer. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// PeerRate and PeerBurst bound each peer's requests per second (a token
	// bucket). Defaults DefaultPeerRate and twice PeerRate.
	PeerRate  float64
	PeerBurst float64
	// MaxConcurrent bounds requests doing cryptography at once; the others
	// wait for a slot until their deadline. Default DefaultMaxConcurrent.
	MaxConcurrent int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// Observe, if set, is called once per request with its type, the
	// answer's code (CODE_UNSPECIFIED for success) and the handling time.
	Observe func(kind string, code proto.Code, d time.Duration)
	// Handoff chooses the nodes a retiring node hands its fragments to, as
	// placement does (PlaceOptions: diversity, admission list).
	Handoff PlaceOptions
	// Groups is the network-group rule of quotas, of the stream limit per
	// group and of the kfrag cache's shares (SPEC.md §8.2, §8.3, §8.4). Default
	// DefaultDiversity (IPv4 /24, IPv6 /48), whatever Handoff's.
	Groups Diversity
	// MaxStreamsPerGroup bounds concurrent inbound RPC streams from one
	// network group. Default MaxStreamsPerGroup.
	MaxStreamsPerGroup int
	// KFragCache is how many verified kfrags the node keeps in memory.
	// Default DefaultKFragCache.
	KFragCache int
}

// Service answers kadre's RPCs on a host: store a grant, re-encrypt, revoke,
// node info, hand-off.
type Service struct {
	h        *Host
	cfg      ServiceConfig
	signer   *rekey.Signer
	nodeKey  policy.PublicKey
	log      *slog.Logger
	limiter  *peerLimiter
	groups   *groupStreams
	slots    chan struct{}
	kfrags   *kfragCache
	wg       sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	retiring bool
	// ctx ends when the service closes; background work derives from it.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewService registers the RPC handler on h and returns the running
// service. Close unregisters it and waits for requests in flight.
func NewService(h *Host, cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil || cfg.Identity == nil {
		return nil, errors.New("dht: service needs a store and an identity")
	}
	if cfg.MaxGrantDuration == 0 {
		cfg.MaxGrantDuration = DefaultMaxGrantDuration
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.RequestReadTimeout == 0 {
		cfg.RequestReadTimeout = min(DefaultRequestReadTimeout, cfg.RequestTimeout)
	}
	if cfg.PeerRate == 0 {
		cfg.PeerRate = DefaultPeerRate
	}
	if cfg.PeerBurst == 0 {
		cfg.PeerBurst = 2 * cfg.PeerRate
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Groups = cfg.Groups.orDefault()
	if cfg.MaxStreamsPerGroup == 0 {
		cfg.MaxStreamsPerGroup = MaxStreamsPerGroup
	}
	if cfg.KFragCache == 0 {
		cfg.KFragCache = DefaultKFragCache
	}
	s := &Service{
		h:       h,
		cfg:     cfg,
		signer:  rekey.NewSigner(cfg.Identity),
		nodeKey: policy.PublicKeyOf(cfg.Identity.PublicKey()),
		log:     cfg.Logger,
		limiter: newPeerLimiter(cfg.PeerRate, cfg.PeerBurst),
		groups:  &groupStreams{max: cfg.MaxStreamsPerGroup, n: map[string]int{}},
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		kfrags:  newKFragCache(cfg.KFragCache),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if id, err := PeerIDOf(s.nodeKey); err != nil || id != h.ID() {
		s.cancel()
		return nil, errors.New("dht: the service identity is not the host's")
	}
	h.h.SetStreamHandler(RPCProtocol, s.handle)
	return s, nil
}

// Close stops answering and waits for requests in flight. It is
// idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.mu.Unlock()
	s.h.h.RemoveStreamHandler(RPCProtocol)
	s.wg.Wait()
	return nil
}

func (s *Service) isRetiring() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retiring
}

// enter registers a request in flight, or reports that the service is
// closing.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// handle serves one stream: one request, one answer.
func (s *Service) handle(st network.Stream) {
	start := time.Now()
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	st.SetDeadline(start.Add(s.cfg.RequestReadTimeout))
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(s.cfg.RequestTimeout))
	defer cancel()

	remote := st.Conn().RemotePeer()
	// A crowd of identities on one network holds at most
	// MaxStreamsPerGroup streams: the excess is reset before it is read.
	group := s.group(remote)
	if !s.groups.enter(group) {
		st.Reset()
		s.observe("unknown", proto.Code_RATE_LIMITED, start)
		return
	}
	defer s.groups.leave(group)
	kind := "unknown"
	var resp *proto.Envelope
	// A small buffer: a crowd's silent streams each hold one until their
	// read deadline (requests are mostly a few hundred bytes; a larger
	// one is read in more calls).
	req, err := proto.ReadRequest(bufio.NewReaderSize(st, 1024))
	st.SetDeadline(start.Add(s.cfg.RequestTimeout))
	switch {
	case errors.Is(err, io.EOF) && req == nil:
		st.Reset()
		return
	case err != nil && req == nil && !errors.Is(err, proto.ErrMalformed) && !errors.Is(err, proto.ErrTooLarge):
		// The stream failed (reset, deadline): nobody to answer.
		st.Reset()
		s.observe(kind, proto.Code_MALFORMED, start)
		return
	case err != nil:
		kind = requestKind(req)
		resp = proto.Refuse(req, err)
	case !s.limiter.allow(remote, s.cfg.Now()):
		kind = requestKind(req)
		resp = proto.Refuse(req, proto.ErrRateLimited)
	default:
		kind = requestKind(req)
		resp = s.dispatch(ctx, st, group, req)
	}
	code := proto.Code_CODE_UNSPECIFIED
	if e := resp.GetError(); e != nil {
		code = e.GetCode()
		s.log.Debug("refused", "peer", remote, "request", kind, "code", code, "reason", e.GetReason())
	}
	s.observe(kind, code, start)
	if err := proto.WriteFrame(st, resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
	if code == proto.Code_CODE_UNSPECIFIED {
		// A peer served is worth its connection: under a crowd, the
		// connection manager trims the silent ones first.
		s.h.h.ConnManager().TagPeer(remote, "kadre-served", 10)
	}
}

func (s *Service) observe(kind string, code proto.Code, start time.Time) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(kind, code, time.Since(start))
	}
}

func requestKind(req *proto.Envelope) string {
	switch req.GetBody().(type) {
	case *proto.Envelope_StoreGrant:
		return "store_grant"
	case *proto.Envelope_Reencrypt:
		return "reencrypt"
	case *proto.Envelope_Revoke:
		return "revoke"
	case *proto.Envelope_NodeInfo:
		return "node_info"
	case *proto.Envelope_Handoff:
		return "handoff"
	case *proto.Envelope_PutMap:
		return "put_map"
	case *proto.Envelope_GetMap:
		return "get_map"
	case *proto.Envelope_PutLink:
		return "put_link"
	case *proto.Envelope_GetLinks:
		return "get_links"
	case *proto.Envelope_BatchReencrypt:
		return "batch_reencrypt"
	}
	return "unknown"
}

// acquire waits for a crypto slot until ctx ends.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: node busy", proto.ErrRateLimited)
	}
}

func (s *Service) release() { <-s.slots }

// sender is who sent a request: its Noise-authenticated key (rerr when it
// is not secp256k1) and its network group.
type sender struct {
	key   policy.PublicKey
	rerr  error
	group string
}

// charge is what a write of owner's record asked by the sender is charged
// to besides the owner (SPEC.md §8.2).
func (f sender) charge(owner policy.PublicKey) *quota.Charge {
	c := &quota.Charge{Group: f.group}
	if f.rerr == nil && f.key != owner {
		c.Peer = f.key
	}
	return c
}

// group is the network group of a peer under the service's rule.
func (s *Service) group(p peer.ID) string {
	if g := s.h.Group(p, s.cfg.Groups); g != "" {
		return g
	}
	return "peer:" + p.String()
}

func (s *Service) dispatch(ctx context.Context, st network.Stream, group string, req *proto.Envelope) *proto.Envelope {
	if err := s.acquire(ctx); err != nil {
		return proto.Refuse(req, err)
	}
	defer s.release()
	// Every peer is a secp256k1 key (Noise authenticated it): the owner of
	// a grant it stores, the recipient it asks for, the node it hands off.
	remote, rerr := remoteKey(st.Conn().RemotePublicKey())
	from := sender{key: remote, rerr: rerr, group: group}
	var body any
	var err error
	switch b := req.GetBody().(type) {
	case *proto.Envelope_StoreGrant:
		var rc *policy.Receipt
		if rc, err = s.storeGrant(from, b.StoreGrant.GetGrant()); err == nil {
			body = &proto.Envelope_StoreGrantResponse{StoreGrantResponse: &proto.StoreGrantResponse{Receipt: rc.Bytes()}}
		}
	case *proto.Envelope_Handoff:
		var l *policy.HandoffLink
		if l, err = s.acceptHandoff(ctx, from, b.Handoff); err == nil {
			body = &proto.Envelope_HandoffResponse{HandoffResponse: &proto.HandoffResponse{Link: l.Bytes()}}
		}
	case *proto.Envelope_Reencrypt:
		var r *proto.ReencryptResponse
		if rerr != nil {
			err = fmt.Errorf("%w: %w", policy.ErrNotRecipient, rerr)
		} else if r, err = s.reencrypt(from, b.Reencrypt); err == nil {
			body = &proto.Envelope_ReencryptResponse{ReencryptResponse: r}
		}
	case *proto.Envelope_BatchReencrypt:
		var r *proto.BatchReencryptResponse
		if rerr != nil {
			err = fmt.Errorf("%w: %w", policy.ErrNotRecipient, rerr)
		} else if r, err = s.batchReencrypt(st.Conn().RemotePeer(), from, b.BatchReencrypt); err == nil {
			body = &proto.Envelope_BatchReencryptResponse{BatchReencryptResponse: r}
		}
	case *proto.Envelope_Revoke:
		var rc *policy.Receipt
		if rc, err = s.revoke(from, b.Revoke.GetRevocation()); err == nil {
			body = &proto.Envelope_RevokeResponse{RevokeResponse: &proto.RevokeResponse{Receipt: rc.Bytes()}}
		}
	case *proto.Envelope_NodeInfo:
		var ni *policy.NodeInfo
		if ni, err = s.nodeInfo(from); err == nil {
			body = &proto.Envelope_NodeInfoResponse{NodeInfoResponse: &proto.NodeInfoResponse{NodeInfo: ni.Bytes()}}
		}
	case *proto.Envelope_PutMap:
		if err = s.putMap(from, b.PutMap.GetPage()); err == nil {
			body = &proto.Envelope_PutMapResponse{PutMapResponse: &proto.PutMapResponse{}}
		}
	case *proto.Envelope_GetMap:
		var page []byte
		if page, err = s.getMap(b.GetMap); err == nil {
			body = &proto.Envelope_GetMapResponse{GetMapResponse: &proto.GetMapResponse{Page: page}}
		}
	case *proto.Envelope_PutLink:
		if err = s.putLink(b.PutLink.GetLink()); err == nil {
			body = &proto.Envelope_PutLinkResponse{PutLinkResponse: &proto.PutLinkResponse{}}
		}
	case *proto.Envelope_GetLinks:
		var links [][]byte
		if links, err = s.getLinks(b.GetLinks); err == nil {
			body = &proto.Envelope_GetLinksResponse{GetLinksResponse: &proto.GetLinksResponse{Links: links}}
		}
	default:
		err = proto.ErrUnknownType
	}
	if err != nil {
		if proto.CodeOf(err) == proto.Code_INTERNAL {
			s.log.Error("request failed", "request", requestKind(req), "err", err)
		}
		return proto.Refuse(req, err)
	}
	return respond(req, body)
}

// remoteKey returns the Noise-authenticated secp256k1 key of a peer.
func remoteKey(k crypto.PubKey) (policy.PublicKey, error) {
	if k == nil || k.Type() != crypto.Secp256k1 {
		return policy.PublicKey{}, errors.New("only secp256k1 peers take part in kadre")
	}
	raw, err := k.Raw()
	if err != nil {
		return policy.PublicKey{}, err
	}
	// libp2p parsed and checked the key in the handshake.
	if len(raw) != policy.PublicKeySize {
		return policy.PublicKey{}, fmt.Errorf("%d-byte key", len(raw))
	}
	return policy.PublicKey(raw), nil
}

// storeGrant validates a grant (its owner asked, signature, expiry against
// this node's maximum, kfrag) and stores it atomically with the sequence
// and tombstone checks. Storing the same grant again is idempotent;
// another fragment of a grant this node already holds is refused.
func (s *Service) storeGrant(from sender, b []byte) (*policy.Receipt, error) {
	if s.isRetiring() {
		return nil, fmt.Errorf("%w: the node is retiring", proto.ErrUnavailable)
	}
	now := s.cfg.Now()
	g, err := policy.ParseGrant(b)
	if err != nil {
		return nil, err
	}
	// Only the owner places fragments (or a holder hands one off, with a
	// proof): nobody can copy an owner-signed grant onto nodes of theirs.
	if from.rerr != nil || from.key != g.Owner {
		return nil, fmt.Errorf("%w: only the grant's owner may store it", proto.ErrUnauthorized)
	}
	if _, err := policy.ValidateGrantForStore(g, now, s.cfg.MaxGrantDuration); err != nil {
		return nil, err
	}
	if err := s.keep(g, now, from.charge(g.Owner)); err != nil {
		return nil, err
	}
	rc := &policy.Receipt{Kind: policy.ReceiptStored, Node: s.nodeKey, Owner: g.Owner, PathHash: g.PathHash,
		Sequence: g.Sequence, Subject: g.ID(), Fragment: g.ID(), IssuedAt: uint64(now.Unix())}
	if err := rc.Sign(s.signer); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return rc, nil
}

// keep stores a validated grant charged to c: capacity, then the store's
// quotas, sequence and tombstone rules; the same grant again is a success,
// another fragment of a grant held here is ALREADY_HELD. The verified kfrag
// is not cached here: only re-encryptions fill the cache, so a flood of
// grants cannot flush it.
func (s *Service) keep(g *policy.Grant, now time.Time, c *quota.Charge) error {
	grants, _, err := s.cfg.Store.Counts()
	if err != nil {
		return fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	if grants >= s.cfg.Capacity {
		return fmt.Errorf("%w: %d of %d slots used", proto.ErrCapacity, grants, s.cfg.Capacity)
	}
	if err := s.cfg.Store.PutGrantAs(g, now, c); err != nil {
		switch {
		case errors.Is(err, quota.ErrQuota):
			return quotaRefusal(err)
		case errors.Is(err, policy.ErrStaleSequence):
			if held, herr := s.heldGrant(g.StorageKey()); herr == nil && held.Sequence == g.Sequence {
				if held.ID() != g.ID() {
					return fmt.Errorf("%w: sequence %d", proto.ErrAlreadyHeld, g.Sequence)
				}
				break // the same grant again: answer as before
			}
			return err
		case errors.Is(err, policy.ErrRevoked), errors.Is(err, policy.ErrExpired):
			return err
		default:
			return fmt.Errorf("%w: %w", proto.ErrInternal, err)
		}
	}
	return nil
}

// quotaRefusal maps a store quota refusal to its wire code: the node's own
// total of grants is CAPACITY, every other limit QUOTA.
func quotaRefusal(err error) error {
	var qe *quota.Error
	if errors.As(err, &qe) && qe.Kind == quota.Grants && qe.Account == "node" {
		return fmt.Errorf("%w: %w", proto.ErrCapacity, qe)
	}
	if qe != nil {
		return fmt.Errorf("%w: %w", proto.ErrQuota, qe)
	}
	return fmt.Errorf("%w: %w", proto.ErrQuota, err)
}

// heldGrant parses the grant the store holds for key.
func (s *Service) heldGrant(key policy.StorageKey) (*policy.Grant, error) {
	rec, err := s.cfg.Store.Grant(key)
	if err != nil {
		return nil, err
	}
	return policy.ParseGrant(rec)
}

// reencrypt serves the deepest level with a live grant for the
// authenticated requester.
func (s *Service) reencrypt(from sender, r *proto.ReencryptRequest) (*proto.ReencryptResponse, error) {
	recipient := from.key
	now := s.cfg.Now()
	owner, err := policy.ParsePublicKey(r.GetOwner())
	if err != nil {
		return nil, fmt.Errorf("%w: owner key: %w", proto.ErrMalformed, err)
	}
	levels := r.GetLevels()
	hashes := make([]policy.PathHash, len(levels))
	for i, l := range levels {
		hashes[i] = policy.PathHash(l.GetPathHash())
	}
	level, g, vkf, err := s.servable(from.group, owner, recipient, hashes, now)
	if err != nil {
		return nil, err
	}
	capsule, err := rekey.ParseCapsule(levels[level].GetCapsule())
	if err != nil {
		return nil, fmt.Errorf("%w: capsule of level %d: %w", proto.ErrMalformed, level, err)
	}
	cf, err := rekey.Reencrypt(capsule, vkf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return &proto.ReencryptResponse{Level: uint32(level), Cfrag: cf.Bytes(), Grant: g.PublicBytes()}, nil
}

// revoke applies an owner-signed revocation and answers with a receipt.
// A revocation of a grant this node does not hold leaves a tombstone
// charged to the sender (SPEC.md §8.2): it may be refused QUOTA; one that
// deletes a held grant never is.
func (s *Service) revoke(from sender, b []byte) (*policy.Receipt, error) {
	now := s.cfg.Now()
	r, err := policy.ParseRevocation(b)
	if err != nil {
		return nil, err
	}
	if err := policy.ValidateRevocation(r); err != nil {
		return nil, err
	}
	// A grant this revocation ends was accepted with at most this node's
	// maximum duration: keep the tombstone that long.
	deleted, held, err := s.cfg.Store.RevokeAs(r, now, now.Add(s.cfg.MaxGrantDuration), from.charge(r.Owner))
	if err != nil {
		switch {
		case errors.Is(err, policy.ErrStaleSequence):
			return nil, err
		case errors.Is(err, quota.ErrQuota):
			return nil, quotaRefusal(err)
		}
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	kind, fragment := policy.ReceiptRevokedNotHeld, policy.RecordID{}
	if held {
		kind, fragment = policy.ReceiptRevoked, deleted
		s.kfrags.drop(deleted)
	}
	rc := &policy.Receipt{Kind: kind, Node: s.nodeKey, Owner: r.Owner, PathHash: r.PathHash,
		Sequence: r.Sequence, Subject: r.ID(), Fragment: fragment, IssuedAt: uint64(now.Unix())}
	if err := rc.Sign(s.signer); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return rc, nil
}

// nodeInfo signs the node's current advertisement for the requester: its
// free slots are the grants the requester, as an owner storing from its
// network group, may still store here (SPEC.md §8.2).
func (s *Service) nodeInfo(from sender) (*policy.NodeInfo, error) {
	grants, _, err := s.cfg.Store.Counts()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	free := uint64(0)
	if grants < s.cfg.Capacity && !s.isRetiring() {
		free = s.cfg.Capacity - grants
		if from.rerr == nil {
			q, err := s.cfg.Store.Free(quota.Grants, from.key, &quota.Charge{Group: from.group})
			if err != nil {
				return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
			}
			free = min(free, q)
		}
	}
	ni := &policy.NodeInfo{
		Node:             s.nodeKey,
		ProtocolVersion:  proto.ProtocolVersion,
		MaxGrantDuration: uint64(s.cfg.MaxGrantDuration / time.Second),
		Capacity:         s.cfg.Capacity,
		FreeSlots:        free,
		IssuedAt:         uint64(s.cfg.Now().Unix()),
		Algorithms:       []policy.PREAlgorithm{policy.PREUmbral},
		Software:         version.UserAgent,
	}
	if err := ni.Sign(s.signer); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return ni, nil
}

// respond wraps a response body; body is always a response wrapper built
// by dispatch.
func respond(req *proto.Envelope, body any) *proto.Envelope {
	switch b := body.(type) {
	case *proto.Envelope_StoreGrantResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_HandoffResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_ReencryptResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_RevokeResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_NodeInfoResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_PutMapResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_GetMapResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_PutLinkResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_GetLinksResponse:
		return proto.Respond(req, b)
	case *proto.Envelope_BatchReencryptResponse:
		return proto.Respond(req, b)
	}
	return proto.Refuse(req, proto.ErrInternal)
}

// peerLimiter is a token bucket per peer.
type peerLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[peer.ID]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newPeerLimiter(rate, burst float64) *peerLimiter {
	return &peerLimiter{rate: rate, burst: burst, buckets: map[peer.ID]*bucket{}}
}

func (l *peerLimiter) allow(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		// Forget full buckets so the map stays bounded by active peers.
		for id, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, id)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[p]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[p] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// kfragCache keeps parsed grants and their verified kfrags by grant ID, so
// that a node parses and verifies a stored grant once rather than on every
// request. Grant IDs commit to the kfrag (through its hash in the signed
// body), so an ID names one grant and one kfrag.
//
// Only re-encryptions fill it, and each entry belongs to the network group
// of the recipient that asked: a group holds at most a quarter of the
// cache, evicting its own least recently used entry beyond that, and when
// the cache is full the entry evicted is the least recently used of the
// group that holds the most. A stranger can therefore evict only its own
// entries, and k groups flooding it leave every other group at least
// max/(k+1) entries of its working set (SPEC.md §8.4).
type kfragCache struct {
	mu     sync.Mutex
	max    int
	share  int
	m      map[policy.RecordID]*list.Element
	groups map[string]*list.List
	hits   atomic.Uint64
	misses atomic.Uint64
}

type cachedGrant struct {
	id    policy.RecordID
	group string
	grant *policy.Grant
	kfrag *rekey.VerifiedKeyFrag
}

func newKFragCache(n int) *kfragCache {
	return &kfragCache{max: n, share: max(n/4, 1), m: map[policy.RecordID]*list.Element{}, groups: map[string]*list.List{}}
}

func (c *kfragCache) get(id policy.RecordID) (*policy.Grant, *rekey.VerifiedKeyFrag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		c.misses.Add(1)
		return nil, nil
	}
	c.hits.Add(1)
	cg := e.Value.(*cachedGrant)
	c.groups[cg.group].MoveToFront(e)
	return cg.grant, cg.kfrag
}

func (c *kfragCache) put(id policy.RecordID, group string, g *policy.Grant, v *rekey.VerifiedKeyFrag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	l := c.groups[group]
	if l == nil {
		l = list.New()
		c.groups[group] = l
	}
	switch {
	case l.Len() >= c.share:
		c.evict(l)
	case len(c.m) >= c.max:
		var big *list.List
		for _, gl := range c.groups {
			if big == nil || gl.Len() > big.Len() {
				big = gl
			}
		}
		c.evict(big)
	}
	c.m[id] = l.PushFront(&cachedGrant{id: id, group: group, grant: g, kfrag: v})
}

// evict drops the least recently used entry of l (c.mu held).
func (c *kfragCache) evict(l *list.List) {
	e := l.Back()
	if e == nil {
		return
	}
	c.remove(e)
}

func (c *kfragCache) remove(e *list.Element) {
	cg := e.Value.(*cachedGrant)
	l := c.groups[cg.group]
	l.Remove(e)
	delete(c.m, cg.id)
	if l.Len() == 0 {
		delete(c.groups, cg.group)
	}
}

func (c *kfragCache) drop(id policy.RecordID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		c.remove(e)
	}
}

// KFragCacheStats returns the kfrag cache's hits and misses so far and the
// entries it holds.
func (s *Service) KFragCacheStats() (hits, misses uint64, entries int) {
	s.kfrags.mu.Lock()
	entries = len(s.kfrags.m)
	s.kfrags.mu.Unlock()
	return s.kfrags.hits.Load(), s.kfrags.misses.Load(), entries
}

// groupStreams counts the RPC streams in flight per network group.
type groupStreams struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

func (g *groupStreams) enter(group string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[group] >= g.max {
		return false
	}
	g.n[group]++
	return true
}

func (g *groupStreams) leave(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[group]--; g.n[group] <= 0 {
		delete(g.n, group)
	}
}
