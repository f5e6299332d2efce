package dht

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// The node side of holder maps and hand-offs (SPEC.md §5.2, §5.4).

// putMap keeps a page of a pair's holder map: it must parse and carry the
// owner's signature; an older map sequence than the one kept is refused.
// Any peer may bring a page (the owner, or a node relaying it): only the
// owner can sign one.
// A page this node did not keep is charged to the owner and the sender
// (SPEC.md §8.2).
func (s *Service) putMap(from sender, b []byte) error {
	m, err := policy.ParseHolderMap(b)
	if err != nil {
		return err
	}
	if err := m.VerifySignature(); err != nil {
		return err
	}
	if err := s.cfg.Store.PutMapPageAs(m, b, s.cfg.Now(), from.charge(m.Owner)); err != nil {
		switch {
		case errors.Is(err, policy.ErrStaleSequence):
			return err
		case errors.Is(err, quota.ErrQuota):
			return quotaRefusal(err)
		}
		return fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return nil
}

func (s *Service) getMap(r *proto.GetMapRequest) ([]byte, error) {
	page, err := s.cfg.Store.MapPage(policy.Point(r.GetPoint()), policy.PublicKey(r.GetOwner()), int(r.GetPage()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	if page == nil {
		return nil, fmt.Errorf("%w: no holder map page %d at this point", proto.ErrNotFound, r.GetPage())
	}
	return page, nil
}

func (s *Service) getLinks(r *proto.GetLinksRequest) ([][]byte, error) {
	links, err := s.cfg.Store.Links(policy.Point(r.GetPoint()), policy.PublicKey(r.GetOwner()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	// The newest, when more are kept than an answer carries.
	return links[max(0, len(links)-proto.MaxLinks):], nil
}

// storedMap parses the pages and links kept for a pair.
func (s *Service) storedMap(owner, recipient policy.PublicKey) ([]*policy.HolderMap, []*policy.HandoffLink, error) {
	raw, rawLinks, err := s.cfg.Store.Map(owner, recipient)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	var pages []*policy.HolderMap
	for _, b := range raw {
		if b == nil {
			continue
		}
		m, err := policy.ParseHolderMap(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: stored holder map: %w", proto.ErrInternal, err)
		}
		pages = append(pages, m)
	}
	var links []*policy.HandoffLink
	for _, b := range rawLinks {
		if l, err := policy.ParseHandoffLink(b); err == nil {
			links = append(links, l)
		}
	}
	return pages, links, nil
}

// entryIn returns the page and entry of path hash ph among pages.
func entryIn(pages []*policy.HolderMap, ph policy.PathHash) (*policy.HolderMap, *policy.MapEntry) {
	for _, p := range pages {
		if e := p.Entry(ph); e != nil {
			return p, e
		}
	}
	return nil, nil
}

func holdsFragment(cur map[policy.RecordID][]policy.PublicKey, id policy.RecordID, k policy.PublicKey) bool {
	for _, h := range cur[id] {
		if h == k {
			return true
		}
	}
	return false
}

// putLink keeps a hand-off link of a pair whose map this node keeps, if it
// extends that map's chain: its From holds the fragment, by the map and the
// links kept.
func (s *Service) putLink(b []byte) error {
	l, err := policy.ParseHandoffLink(b)
	if err != nil {
		return err
	}
	if err := l.VerifySignatures(); err != nil {
		return err
	}
	if err := checkLinkTime(l, s.cfg.Now()); err != nil {
		return err
	}
	pages, links, err := s.storedMap(l.Owner, l.Recipient)
	if err != nil {
		return err
	}
	m, e := entryIn(pages, l.PathHash)
	if e == nil {
		return fmt.Errorf("%w: no holder map of this grant here", proto.ErrNotFound)
	}
	if !holdsFragment(policy.CurrentHolders(m, e, append(links, l)), l.GrantID, l.To) {
		return fmt.Errorf("%w: the link does not extend the holder map's chain", proto.ErrUnauthorized)
	}
	if err := s.cfg.Store.PutLink(l); err != nil {
		return fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	return nil
}

// acceptHandoff takes a fragment from a node that proves it holds it: the
// owner-signed map lists the grant, the links bring the fragment to the
// sender, the new link goes from the sender to this node. This node then
// keeps the grant, the sender's tombstones of the pair and its sequence
// mark, the map and the links, and countersigns the link.
func (s *Service) acceptHandoff(ctx context.Context, from sender, r *proto.HandoffRequest) (*policy.HandoffLink, error) {
	if s.isRetiring() {
		return nil, fmt.Errorf("%w: the node is retiring", proto.ErrUnavailable)
	}
	if from.rerr != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrUnauthorized, from.rerr)
	}
	remote := from.key
	now := s.cfg.Now()
	g, err := policy.ParseGrant(r.GetGrant())
	if err != nil {
		return nil, err
	}
	if _, err := policy.ValidateGrantForStore(g, now, s.cfg.MaxGrantDuration); err != nil {
		return nil, err
	}
	m, err := policy.ParseHolderMap(r.GetMap())
	if err != nil {
		return nil, err
	}
	if err := policy.VerifyHolderMap(m, g.Owner, g.Recipient.IdentityKey); err != nil {
		return nil, err
	}
	e := m.Entry(g.PathHash)
	if e == nil {
		return nil, fmt.Errorf("%w: the holder map does not list the grant", proto.ErrUnauthorized)
	}
	var chain []*policy.HandoffLink
	for _, b := range r.GetLinks() {
		l, err := policy.ParseHandoffLink(b)
		if err != nil {
			return nil, err
		}
		chain = append(chain, l)
	}
	cur := policy.CurrentHolders(m, e, chain)
	if !holdsFragment(cur, g.ID(), remote) {
		return nil, fmt.Errorf("%w: the sender does not hold this fragment by the owner's holder map", proto.ErrUnauthorized)
	}
	link, err := policy.ParseHandoffOffer(r.GetLink())
	if err != nil {
		return nil, err
	}
	if err := checkLinkTime(link, now); err != nil {
		return nil, err
	}
	if link.From != remote || link.To != s.nodeKey || link.GrantID != g.ID() || link.PathHash != g.PathHash ||
		link.Owner != g.Owner || link.Recipient != g.Recipient.IdentityKey {
		return nil, fmt.Errorf("%w: the hand-off link is not for this fragment from the sender to this node", proto.ErrUnauthorized)
	}
	if err := link.VerifyFrom(); err != nil {
		return nil, err
	}
	for id := range cur {
		if id != g.ID() && holdsFragment(cur, id, s.nodeKey) {
			return nil, fmt.Errorf("%w: this node holds another fragment of the grant", proto.ErrAlreadyHeld)
		}
	}
	if err := s.newerMapDrops(ctx, m, g); err != nil {
		return nil, err
	}
	// Everything is charged to the owner and the sending node (SPEC.md
	// §8.2), and whatever may be refused for a quota comes before the
	// grant: a refused hand-off leaves the fragment with its sender.
	c := from.charge(g.Owner)
	// The sender's tombstones of the pair first: a revoked grant must not
	// come back here.
	for _, b := range r.GetRevocations() {
		rv, err := policy.ParseRevocation(b)
		if err != nil {
			return nil, err
		}
		if rv.Owner != g.Owner || rv.Recipient != g.Recipient.IdentityKey || policy.ValidateRevocation(rv) != nil {
			return nil, fmt.Errorf("%w: a revocation of another pair, or not the owner's", proto.ErrMalformed)
		}
		if _, _, err := s.cfg.Store.RevokeAs(rv, now, now.Add(s.cfg.MaxGrantDuration), c); err != nil && !errors.Is(err, policy.ErrStaleSequence) {
			if errors.Is(err, quota.ErrQuota) {
				return nil, quotaRefusal(err)
			}
			return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
		}
	}
	if err := s.cfg.Store.PutMapPageAs(m, r.GetMap(), now, c); err != nil && !errors.Is(err, policy.ErrStaleSequence) {
		if errors.Is(err, quota.ErrQuota) {
			return nil, quotaRefusal(err)
		}
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	if err := s.keep(g, now, c); err != nil {
		return nil, err
	}
	// keep made the mark if there was none: this only raises it.
	if err := s.cfg.Store.RaiseMarkAs(g.Owner, g.PathHash, r.GetMark(), g.ExpiryTime(), c); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	if err := link.SignTo(s.signer); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrInternal, err)
	}
	for _, l := range append(chain, link) {
		if err := s.cfg.Store.PutLink(l); err != nil {
			s.log.Debug("hand-off link not kept", "err", err)
		}
	}
	s.log.Info("fragment accepted", "grant", g.ID(), "from", remote)
	return link, nil
}

// newerMapDrops refuses a hand-off of a fragment that the owner's newest
// holder map no longer lists (the grant was revoked or replaced): the
// newest map this node keeps, or finds at the pair's rendezvous points
// within a second.
func (s *Service) newerMapDrops(ctx context.Context, m *policy.HolderMap, g *policy.Grant) error {
	check := func(pages []*policy.HolderMap) error {
		if len(pages) == 0 || pages[0].Sequence <= m.Sequence {
			return nil
		}
		if _, e := entryIn(pages, g.PathHash); e != nil {
			for _, h := range e.Holders {
				if h.GrantID == g.ID() {
					return nil
				}
			}
		}
		return fmt.Errorf("%w: the owner's newer holder map (%d) no longer lists this fragment", policy.ErrRevoked, pages[0].Sequence)
	}
	kept, _, err := s.storedMap(g.Owner, g.Recipient.IdentityKey)
	if err != nil {
		return err
	}
	if err := check(kept); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fm, err := s.h.FetchMap(fctx, MapRef{Owner: m.Owner, Recipient: m.Recipient, Points: m.Points}, MapOptions{Grace: 100 * time.Millisecond})
	if err != nil {
		return nil // none found: the presented map is the newest known
	}
	return check(fm.Pages)
}

// Republish stores again, at their rendezvous points, the holder maps of
// every pair this node holds a live fragment of, with their hand-off
// links: as nodes join, the nodes closest to a point change, and the map
// must reach the new ones. It returns how many maps it republished.
func (s *Service) Republish(ctx context.Context) (int, error) {
	type pair struct{ owner, recipient policy.PublicKey }
	pairs := map[pair]bool{}
	now := s.cfg.Now()
	err := s.cfg.Store.ForEachGrant(func(rec []byte) error {
		g, err := policy.ParseGrant(rec)
		if err == nil && policy.ValidateLive(g.Expiry, now) == nil {
			pairs[pair{g.Owner, g.Recipient.IdentityKey}] = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := 0
	for p := range pairs {
		if ctx.Err() != nil {
			return done, ctx.Err()
		}
		pages, links, err := s.storedMap(p.owner, p.recipient)
		if err != nil {
			return done, err
		}
		if len(pages) == 0 || len(pages) != int(pages[0].Pages) {
			continue
		}
		if _, err := s.h.PublishMap(ctx, pages, nil, MapOptions{}); err != nil {
			s.log.Debug("map not republished", "owner", p.owner, "err", err)
			continue
		}
		if len(links) > 0 {
			s.spreadLinks(ctx, links, pages[0], nil)
		}
		done++
	}
	return done, nil
}

// MaxLinkSkew is how far in the future a hand-off link's time may be: a
// link's time orders the links of a fragment, and a node does not take
// one dated later than its own clock allows.
const MaxLinkSkew = 10 * time.Minute

func checkLinkTime(l *policy.HandoffLink, now time.Time) error {
	if t := time.Unix(int64(l.At), 0); t.After(now.Add(MaxLinkSkew)) {
		return fmt.Errorf("%w: the hand-off link is dated %s, ahead of this node's clock", policy.ErrMalformed, t.UTC().Format(time.RFC3339))
	}
	return nil
}
