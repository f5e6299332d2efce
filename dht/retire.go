package dht

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// Moved is one fragment a retiring node handed off.
type Moved struct {
	GrantID policy.RecordID
	To      peer.ID
	Receipt *policy.Receipt
}

// RetireReport says what Retire did with each fragment.
type RetireReport struct {
	Moved   []Moved
	Expired int                       // expired fragments, dropped
	Kept    map[policy.RecordID]error // fragments no node accepted, kept here
}

// Retire hands every live fragment this node holds to another node (seed
// 003's hand-off): for each, the nodes closest to the grant's locator are
// tried in order; a node qualifies if its node info shows it keeps grants
// long enough and has room, and it accepts the fragment only if it does not
// already hold one of the same grant. The fragment is deleted here only
// after the new holder's signed acceptance verified. From the first call on,
// the service refuses new fragments (UNAVAILABLE).
func (s *Service) Retire(ctx context.Context) (*RetireReport, error) {
	s.mu.Lock()
	s.retiring = true
	s.mu.Unlock()
	rep := &RetireReport{Kept: map[policy.RecordID]error{}}
	now := s.cfg.Now()
	var held []*policy.Grant
	if err := s.cfg.Store.ForEachGrant(func(rec []byte) error {
		g, err := policy.ParseGrant(rec)
		if err != nil {
			return fmt.Errorf("stored grant: %w", err)
		}
		held = append(held, g)
		return nil
	}); err != nil {
		return rep, err
	}
	for _, g := range held {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		id := g.ID()
		if policy.ValidateLive(g.Expiry, now) != nil {
			rep.Expired++
			continue
		}
		to, rc, err := s.handoff(ctx, g)
		if err != nil {
			rep.Kept[id] = err
			s.log.Warn("fragment not handed off", "grant", id, "err", err)
			continue
		}
		if err := s.cfg.Store.DeleteGrant(g.StorageKey(), id); err != nil && !errors.Is(err, policy.ErrNotGranted) {
			rep.Kept[id] = err
			continue
		}
		s.kfrags.drop(id)
		rep.Moved = append(rep.Moved, Moved{GrantID: id, To: to, Receipt: rc})
		s.log.Info("fragment handed off", "grant", id, "to", to)
	}
	return rep, nil
}

// handoff finds a node that accepts g.
func (s *Service) handoff(ctx context.Context, g *policy.Grant) (peer.ID, *policy.Receipt, error) {
	loc := Locator(g.Owner, g.Recipient.IdentityKey)
	candidates, err := s.h.ClosestPeers(ctx, loc, DefaultCandidates)
	if err != nil {
		return "", nil, err
	}
	need := g.ExpiryTime().Sub(s.cfg.Now())
	var errs []error
	for _, p := range candidates {
		if p == s.h.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, DefaultPerNodeTimeout)
		to, rc, err := func() (peer.ID, *policy.Receipt, error) {
			ni, err := s.h.NodeInfo(cctx, p)
			if err != nil {
				return "", nil, err
			}
			if !ni.Supports(g.PRE) || ni.MaxDuration() < need || ni.FreeSlots == 0 {
				return "", nil, fmt.Errorf("node %s cannot keep it (max %s, %d free)", p, ni.MaxDuration(), ni.FreeSlots)
			}
			rc, err := s.h.Handoff(cctx, p, g)
			return p, rc, err
		}()
		cancel()
		if err == nil {
			return to, rc, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
		if errors.Is(err, proto.ErrAlreadyHeld) {
			continue
		}
	}
	return "", nil, fmt.Errorf("no node accepted the fragment: %w", errors.Join(errs...))
}

// Reprovide announces the locator of every fragment held, once each.
func (s *Service) Reprovide(ctx context.Context) (int, error) {
	seen := map[string]bool{}
	now := s.cfg.Now()
	err := s.cfg.Store.ForEachGrant(func(rec []byte) error {
		g, err := policy.ParseGrant(rec)
		if err != nil || policy.ValidateLive(g.Expiry, now) != nil {
			return nil
		}
		loc := Locator(g.Owner, g.Recipient.IdentityKey)
		if seen[string(loc)] {
			return nil
		}
		seen[string(loc)] = true
		return s.h.Provide(ctx, loc)
	})
	return len(seen), err
}
