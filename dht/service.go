package dht

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

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
	// PutGrant stores a validated grant under g.StorageKey() after the
	// sequence and tombstone checks; errors match policy.ErrStaleSequence,
	// policy.ErrRevoked and policy.ErrExpired.
	PutGrant(g *policy.Grant, now time.Time) error
	// Grant returns the record held for key, or an error matching
	// policy.ErrNotGranted.
	Grant(key policy.StorageKey) ([]byte, error)
	// Lookup finds the deepest live grant of owner to recipient among
	// levels (root first); when none is live, level is the deepest level
	// that had anything and err matches policy.ErrRevoked or
	// policy.ErrExpired, or policy.ErrNotGranted.
	Lookup(owner, recipient policy.PublicKey, levels []policy.PathHash, now time.Time) (level int, id policy.RecordID, record []byte, err error)
	// Revoke applies a validated revocation; held says whether a fragment
	// was deleted, deleted names it.
	Revoke(r *policy.Revocation, now, keepUntil time.Time) (deleted policy.RecordID, held bool, err error)
	// DeleteGrant drops the grant held for key if it is still id (a
	// fragment handed off), keeping the sequence mark.
	DeleteGrant(key policy.StorageKey, id policy.RecordID) error
	// ForEachGrant calls fn with every stored grant record.
	ForEachGrant(fn func(record []byte) error) error
	// Counts returns the number of grants and tombstones stored.
	Counts() (grants, tombstones uint64, err error)
	// RaiseMark raises the sequence mark of (owner, path hash) to seq;
	// Mark reads it (0 if none).
	RaiseMark(owner policy.PublicKey, ph policy.PathHash, seq uint64, keepUntil time.Time) error
	Mark(owner policy.PublicKey, ph policy.PathHash) (uint64, error)
	// Revocations returns the revocations kept with the tombstones of
	// owner's grants to recipient.
	Revocations(owner, recipient policy.PublicKey) ([][]byte, error)

	// PutMapPage keeps a verified holder map page (raw: its bytes); an
	// older map sequence fails matching policy.ErrStaleSequence.
	PutMapPage(page *policy.HolderMap, raw []byte, now time.Time) error
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
	s := &Service{
		h:       h,
		cfg:     cfg,
		signer:  rekey.NewSigner(cfg.Identity),
		nodeKey: policy.PublicKeyOf(cfg.Identity.PublicKey()),
		log:     cfg.Logger,
		limiter: newPeerLimiter(cfg.PeerRate, cfg.PeerBurst),
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		kfrags:  newKFragCache(4096),
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
	kind := "unknown"
	var resp *proto.Envelope
	req, err := proto.ReadRequest(bufio.NewReaderSize(st, 4096))
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
		resp = s.dispatch(ctx, st, req)
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

func (s *Service) dispatch(ctx context.Context, st network.Stream, req *proto.Envelope) *proto.Envelope {
	if err := s.acquire(ctx); err != nil {
		return proto.Refuse(req, err)
	}
	defer s.release()
	// Every peer is a secp256k1 key (Noise authenticated it): the owner of
	// a grant it stores, the recipient it asks for, the node it hands off.
	remote, rerr := remoteKey(st.Conn().RemotePublicKey())
	var body any
	var err error
	switch b := req.GetBody().(type) {
	case *proto.Envelope_StoreGrant:
		var rc *policy.Receipt
		if rc, err = s.storeGrant(remote, rerr, b.StoreGrant.GetGrant()); err == nil {
			body = &proto.Envelope_StoreGrantResponse{StoreGrantResponse: &proto.StoreGrantResponse{Receipt: rc.Bytes()}}
		}
	case *proto.Envelope_Handoff:
		var l *policy.HandoffLink
		if l, err = s.acceptHandoff(ctx, remote, rerr, b.Handoff); err == nil {
			body = &proto.Envelope_HandoffResponse{HandoffResponse: &proto.HandoffResponse{Link: l.Bytes()}}
		}
	case *proto.Envelope_Reencrypt:
		var r *proto.ReencryptResponse
		if rerr != nil {
			err = fmt.Errorf("%w: %w", policy.ErrNotRecipient, rerr)
		} else if r, err = s.reencrypt(remote, b.Reencrypt); err == nil {
			body = &proto.Envelope_ReencryptResponse{ReencryptResponse: r}
		}
	case *proto.Envelope_BatchReencrypt:
		var r *proto.BatchReencryptResponse
		if rerr != nil {
			err = fmt.Errorf("%w: %w", policy.ErrNotRecipient, rerr)
		} else if r, err = s.batchReencrypt(st.Conn().RemotePeer(), remote, b.BatchReencrypt); err == nil {
			body = &proto.Envelope_BatchReencryptResponse{BatchReencryptResponse: r}
		}
	case *proto.Envelope_Revoke:
		var rc *policy.Receipt
		if rc, err = s.revoke(b.Revoke.GetRevocation()); err == nil {
			body = &proto.Envelope_RevokeResponse{RevokeResponse: &proto.RevokeResponse{Receipt: rc.Bytes()}}
		}
	case *proto.Envelope_NodeInfo:
		var ni *policy.NodeInfo
		if ni, err = s.nodeInfo(); err == nil {
			body = &proto.Envelope_NodeInfoResponse{NodeInfoResponse: &proto.NodeInfoResponse{NodeInfo: ni.Bytes()}}
		}
	case *proto.Envelope_PutMap:
		if err = s.putMap(b.PutMap.GetPage()); err == nil {
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
func (s *Service) storeGrant(remote policy.PublicKey, rerr error, b []byte) (*policy.Receipt, error) {
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
	if rerr != nil || remote != g.Owner {
		return nil, fmt.Errorf("%w: only the grant's owner may store it", proto.ErrUnauthorized)
	}
	vkf, err := policy.ValidateGrantForStore(g, now, s.cfg.MaxGrantDuration)
	if err != nil {
		return nil, err
	}
	if err := s.keep(g, vkf, now); err != nil {
		return nil, err
	}
	rc := &policy.Receipt{Kind: policy.ReceiptStored, Node: s.nodeKey, Owner: g.Owner, PathHash: g.PathHash,
		Sequence: g.Sequence, Subject: g.ID(), Fragment: g.ID(), IssuedAt: uint64(now.Unix())}
	if err := rc.Sign(s.signer); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return rc, nil
}

// keep stores a validated grant: capacity, then the store's sequence and
// tombstone rules; the same grant again is a success, another fragment of
// a grant held here is ALREADY_HELD.
func (s *Service) keep(g *policy.Grant, vkf *rekey.VerifiedKeyFrag, now time.Time) error {
	grants, _, err := s.cfg.Store.Counts()
	if err != nil {
		return fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	if grants >= s.cfg.Capacity {
		return fmt.Errorf("%w: %d of %d slots used", proto.ErrCapacity, grants, s.cfg.Capacity)
	}
	if err := s.cfg.Store.PutGrant(g, now); err != nil {
		switch {
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
	s.kfrags.put(g.ID(), g, vkf)
	return nil
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
func (s *Service) reencrypt(recipient policy.PublicKey, r *proto.ReencryptRequest) (*proto.ReencryptResponse, error) {
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
	level, g, vkf, err := s.servable(owner, recipient, hashes, now)
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
func (s *Service) revoke(b []byte) (*policy.Receipt, error) {
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
	deleted, held, err := s.cfg.Store.Revoke(r, now, now.Add(s.cfg.MaxGrantDuration))
	if err != nil {
		if errors.Is(err, policy.ErrStaleSequence) {
			return nil, err
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

// nodeInfo signs the node's current advertisement.
func (s *Service) nodeInfo() (*policy.NodeInfo, error) {
	grants, _, err := s.cfg.Store.Counts()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	free := uint64(0)
	if grants < s.cfg.Capacity && !s.isRetiring() {
		free = s.cfg.Capacity - grants
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
type kfragCache struct {
	mu  sync.Mutex
	max int
	m   map[policy.RecordID]cachedGrant
}

type cachedGrant struct {
	grant *policy.Grant
	kfrag *rekey.VerifiedKeyFrag
}

func newKFragCache(max int) *kfragCache {
	return &kfragCache{max: max, m: map[policy.RecordID]cachedGrant{}}
}

func (c *kfragCache) get(id [32]byte) (*policy.Grant, *rekey.VerifiedKeyFrag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	return e.grant, e.kfrag
}

func (c *kfragCache) put(id [32]byte, g *policy.Grant, v *rekey.VerifiedKeyFrag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[id] = cachedGrant{grant: g, kfrag: v}
}

func (c *kfragCache) drop(id [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
