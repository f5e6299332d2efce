package dht

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// Batch re-encryption (SPEC.md §4.3.10): one request carries the capsules
// of many files under one grant (one path hash); the node looks the grant
// up once and answers each capsule with its cfrag or a refusal of that
// capsule alone.

// batchReencrypt serves a BatchReencrypt for the authenticated requester.
// The request already took one token of the peer's bucket; every further
// capsule takes one more, and the capsules the bucket cannot pay for are
// refused RATE_LIMITED one by one, so a batch costs a peer what as many
// single requests would.
func (s *Service) batchReencrypt(p peer.ID, from sender, r *proto.BatchReencryptRequest) (*proto.BatchReencryptResponse, error) {
	now := s.cfg.Now()
	owner, err := policy.ParsePublicKey(r.GetOwner())
	if err != nil {
		return nil, fmt.Errorf("%w: owner key: %w", proto.ErrMalformed, err)
	}
	ph := policy.PathHash(r.GetPathHash())
	_, g, vkf, err := s.servable(from.group, owner, from.key, []policy.PathHash{ph}, now)
	if err != nil {
		return nil, err
	}
	capsules := r.GetCapsules()
	paid := 1 + s.limiter.take(p, now, len(capsules)-1)
	resp := &proto.BatchReencryptResponse{Grant: g.PublicBytes(), Items: make([]*proto.BatchItem, len(capsules))}
	// The capsules paid for are parsed and self-checked together
	// (rekey.ParseCapsules: one multi-scalar multiplication for all).
	parsed, errs := rekey.ParseCapsules(capsules[:min(paid, len(capsules))])
	for i := range capsules {
		if i >= paid {
			resp.Items[i] = itemRefusal(fmt.Errorf("%w: %d of the batch's %d capsules fit the peer's rate", proto.ErrRateLimited, paid, len(capsules)))
			continue
		}
		if errs[i] != nil {
			resp.Items[i] = itemRefusal(fmt.Errorf("%w: capsule: %w", proto.ErrMalformed, errs[i]))
			continue
		}
		cf, err := rekey.Reencrypt(parsed[i], vkf)
		if err != nil {
			resp.Items[i] = itemRefusal(fmt.Errorf("%w: %w", proto.ErrInternal, err))
			continue
		}
		resp.Items[i] = &proto.BatchItem{Result: &proto.BatchItem_Cfrag{Cfrag: cf.Bytes()}}
	}
	return resp, nil
}

func itemRefusal(err error) *proto.BatchItem {
	return &proto.BatchItem{Result: &proto.BatchItem_Error{Error: proto.ItemError(err)}}
}

// servable finds the deepest live grant of owner to recipient among
// levels (its index), with its verified kfrag (cached by grant ID, charged
// to the requester's network group), and checks that it serves the
// request; the refusals are those of SPEC.md §4.3.3.
func (s *Service) servable(group string, owner, recipient policy.PublicKey, hashes []policy.PathHash, now time.Time) (int, *policy.Grant, *rekey.VerifiedKeyFrag, error) {
	level, id, record, err := s.cfg.Store.Lookup(owner, recipient, hashes, now)
	if err != nil {
		switch {
		case errors.Is(err, policy.ErrRevoked), errors.Is(err, policy.ErrExpired):
			return 0, nil, nil, fmt.Errorf("%w (level %d)", err, level)
		case errors.Is(err, policy.ErrNotGranted):
			return 0, nil, nil, policy.ErrNotGranted
		default:
			return 0, nil, nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
		}
	}
	g, vkf := s.kfrags.get(id)
	if g == nil {
		if g, err = policy.ParseGrant(record); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: stored grant: %w", proto.ErrInternal, err)
		}
		if vkf, err = policy.VerifyGrantKFrag(g); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: stored kfrag: %w", proto.ErrInternal, err)
		}
		s.kfrags.put(id, group, g, vkf)
	}
	if err := policy.CheckServable(g, owner, hashes[level], recipient[:], now); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: stored grant does not serve this request: %w", proto.ErrInternal, err)
	}
	return level, g, vkf, nil
}

// take removes up to n tokens from p's bucket (already refilled by allow
// for this request) and returns how many it removed.
func (l *peerLimiter) take(p peer.ID, now time.Time, n int) int {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[p]
	if !ok {
		return 0
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	got := min(n, int(b.tokens))
	b.tokens -= float64(got)
	return got
}

// BatchItem is the answer for one capsule of a batch: a verified cfrag,
// or why there is none (a *proto.RemoteError refusing this capsule, or
// ErrBadProof).
type BatchItem struct {
	CFrag *rekey.VerifiedCapsuleFrag
	Err   error
}

// BatchAnswer is a node's verified answer to a BatchReencrypt.
type BatchAnswer struct {
	Node  peer.ID
	Grant *policy.Grant // the public grant that served every item
	Items []BatchItem   // one per capsule, in order
}

// BatchReencrypt asks p for cfrags of many capsules under the grant with
// path hash ph, and verifies the answer: the owner's signature of the
// grant, that it is for me and ph, and each cfrag's proof against its
// capsule. A refusal of the whole request (not granted, revoked, rate
// limited, an older node that does not know the message: UNKNOWN_TYPE)
// is the error; refusals of single capsules are in the items. At most
// proto.MaxBatchItems capsules.
func (h *Host) BatchReencrypt(ctx context.Context, p peer.ID, owner policy.PublicKey, me policy.Identity, ph policy.PathHash, capsules []*rekey.Capsule) (*BatchAnswer, error) {
	if len(capsules) == 0 || len(capsules) > proto.MaxBatchItems {
		return nil, fmt.Errorf("dht: a batch carries 1..%d capsules, not %d", proto.MaxBatchItems, len(capsules))
	}
	req := &proto.BatchReencryptRequest{Owner: owner[:], PathHash: ph[:], Capsules: make([][]byte, len(capsules))}
	for i, c := range capsules {
		req.Capsules[i] = c.Bytes()
	}
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_BatchReencrypt{BatchReencrypt: req}))
	if err != nil {
		return nil, err
	}
	r := resp.GetBatchReencryptResponse()
	g, err := policy.ParsePublicGrant(r.GetGrant())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	if err := policy.VerifyServedGrant(g, owner, me, ph); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	ans := &BatchAnswer{Node: p, Grant: g, Items: make([]BatchItem, len(capsules))}
	for i, it := range r.GetItems() {
		if e := it.GetError(); e != nil {
			ans.Items[i].Err = &proto.RemoteError{Code: e.GetCode(), Reason: e.GetReason()}
			continue
		}
		vcf, err := policy.VerifyCFrag(g, capsules[i], it.GetCfrag())
		if err != nil {
			ans.Items[i].Err = fmt.Errorf("%w: %w", ErrBadProof, err)
			continue
		}
		ans.Items[i].CFrag = vcf
	}
	return ans, nil
}
