package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// peerKey returns the authenticated key of a peer ID.
func peerKey(p peer.ID) (policy.PublicKey, error) {
	k, err := PublicKeyOf(p)
	if err != nil {
		return policy.PublicKey{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return k, nil
}

// NodeInfo asks p for its signed advertisement and checks that p signed it.
func (h *Host) NodeInfo(ctx context.Context, p peer.ID) (*policy.NodeInfo, error) {
	node, err := peerKey(p)
	if err != nil {
		return nil, err
	}
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_NodeInfo{NodeInfo: &proto.NodeInfoRequest{}}))
	if err != nil {
		return nil, err
	}
	ni, err := policy.ParseNodeInfo(resp.GetNodeInfoResponse().GetNodeInfo())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if err := policy.VerifyNodeInfo(ni, node); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return ni, nil
}

// StoreGrant gives p one grant (with its kfrag) and returns p's verified
// receipt. Only the grant's owner may store it: this host's key must be
// g.Owner.
func (h *Host) StoreGrant(ctx context.Context, p peer.ID, g *policy.Grant) (*policy.Receipt, error) {
	node, err := peerKey(p)
	if err != nil {
		return nil, err
	}
	req := proto.Request(newRequestID(), &proto.Envelope_StoreGrant{StoreGrant: &proto.StoreGrantRequest{Grant: g.Bytes()}})
	resp, err := h.call(ctx, p, req)
	if err != nil {
		return nil, err
	}
	rc, err := policy.ParseReceipt(resp.GetStoreGrantResponse().GetReceipt())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if err := policy.VerifyReceiptForGrant(rc, node, g); err != nil {
		return nil, fmt.Errorf("%w: receipt does not acknowledge the grant: %v", ErrBadResponse, err)
	}
	return rc, nil
}

// HandoffProof is what a node that holds a fragment shows the node it
// hands it to (SPEC.md §5.4).
type HandoffProof struct {
	Map         *policy.HolderMap     // the owner-signed page listing the grant
	Links       []*policy.HandoffLink // the links that brought the fragment to the sender
	Revocations []*policy.Revocation  // the sender's tombstones of the same pair
	Mark        uint64                // the sender's sequence mark of the grant's owner and path hash
}

// Handoff passes a grant this node holds to p with its proof and the link
// link (signed by this node), and returns the link countersigned by p.
func (h *Host) Handoff(ctx context.Context, p peer.ID, g *policy.Grant, proof *HandoffProof, link *policy.HandoffLink) (*policy.HandoffLink, error) {
	to, err := peerKey(p)
	if err != nil {
		return nil, err
	}
	body := &proto.HandoffRequest{Grant: g.Bytes(), Map: proof.Map.Bytes(), Link: link.OfferBytes(), Mark: proof.Mark}
	for _, l := range proof.Links {
		body.Links = append(body.Links, l.Bytes())
	}
	for _, r := range proof.Revocations {
		body.Revocations = append(body.Revocations, r.Bytes())
	}
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_Handoff{Handoff: body}))
	if err != nil {
		return nil, err
	}
	got, err := policy.ParseHandoffLink(resp.GetHandoffResponse().GetLink())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if got.To != to || !bytes.Equal(got.BodyBytes(), link.BodyBytes()) || got.SigFrom != link.SigFrom || got.VerifySignatures() != nil {
		return nil, fmt.Errorf("%w: the node did not countersign the hand-off", ErrBadResponse)
	}
	return got, nil
}

// PutMap gives p one page of a pair's holder map.
func (h *Host) PutMap(ctx context.Context, p peer.ID, page *policy.HolderMap) error {
	_, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_PutMap{PutMap: &proto.PutMapRequest{Page: page.Bytes()}}))
	return err
}

// GetMap asks p for page i of the holder map it keeps under point, and
// checks that the page is the pair's, signed by its owner, and kept under
// that point.
func (h *Host) GetMap(ctx context.Context, p peer.ID, pair MapRef, point policy.Point, i int) (*policy.HolderMap, error) {
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_GetMap{GetMap: &proto.GetMapRequest{Point: point[:], Page: uint32(i), Owner: pair.Owner[:]}}))
	if err != nil {
		return nil, err
	}
	m, err := policy.ParseHolderMap(resp.GetGetMapResponse().GetPage())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	if err := policy.VerifyHolderMap(m, pair.Owner, pair.Recipient); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	if !m.HasPoint(point) || m.Points != pair.Points || int(m.Page) != i {
		return nil, fmt.Errorf("%w: the page is not the one asked for", ErrBadProof)
	}
	return m, nil
}

// PutLink gives p a hand-off link of a pair whose map it keeps.
func (h *Host) PutLink(ctx context.Context, p peer.ID, l *policy.HandoffLink) error {
	_, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_PutLink{PutLink: &proto.PutLinkRequest{Link: l.Bytes()}}))
	return err
}

// GetLinks asks p for the hand-off links of owner's map it keeps under
// point; links that do not parse or whose signatures fail are dropped.
func (h *Host) GetLinks(ctx context.Context, p peer.ID, owner policy.PublicKey, point policy.Point) ([]*policy.HandoffLink, error) {
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_GetLinks{GetLinks: &proto.GetLinksRequest{Point: point[:], Owner: owner[:]}}))
	if err != nil {
		return nil, err
	}
	var out []*policy.HandoffLink
	for _, b := range resp.GetGetLinksResponse().GetLinks() {
		if l, err := policy.ParseHandoffLink(b); err == nil && l.VerifySignatures() == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

// Revoke sends an owner-signed revocation to p and returns p's verified
// receipt.
func (h *Host) Revoke(ctx context.Context, p peer.ID, r *policy.Revocation) (*policy.Receipt, error) {
	node, err := peerKey(p)
	if err != nil {
		return nil, err
	}
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_Revoke{Revoke: &proto.RevokeRequest{Revocation: r.Bytes()}}))
	if err != nil {
		return nil, err
	}
	rc, err := policy.ParseReceipt(resp.GetRevokeResponse().GetReceipt())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if err := policy.VerifyReceiptForRevocation(rc, node, r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return rc, nil
}

// Level is one prefix of a path in a re-encryption request: its path hash
// and the capsule the file carries for that prefix.
type Level struct {
	PathHash policy.PathHash
	Capsule  *rekey.Capsule
}

// CFrag is a verified answer to a re-encryption request.
type CFrag struct {
	Node  peer.ID
	Level int
	Grant *policy.Grant // public grant: keys, m, n, sequence
	CFrag *rekey.VerifiedCapsuleFrag
}

// ErrBadProof means a node answered with a cfrag or grant that does not
// verify: a faulty or lying node.
var ErrBadProof = errors.New("dht: node's cfrag or grant does not verify")

// Reencrypt asks p for a cfrag of the deepest level it holds a live grant
// for and verifies everything the answer claims: the owner's signature of
// the grant, that the grant is for me and for that level, and the cfrag's
// proof against the grant's keys and the level's capsule.
func (h *Host) Reencrypt(ctx context.Context, p peer.ID, owner policy.PublicKey, me policy.Identity, levels []Level) (*CFrag, error) {
	req := &proto.ReencryptRequest{Owner: owner[:]}
	for _, l := range levels {
		req.Levels = append(req.Levels, &proto.Level{PathHash: l.PathHash[:], Capsule: l.Capsule.Bytes()})
	}
	resp, err := h.call(ctx, p, proto.Request(newRequestID(), &proto.Envelope_Reencrypt{Reencrypt: req}))
	if err != nil {
		return nil, err
	}
	r := resp.GetReencryptResponse()
	lvl := int(r.GetLevel())
	g, err := policy.ParsePublicGrant(r.GetGrant())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	if err := policy.VerifyServedGrant(g, owner, me, levels[lvl].PathHash); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	vcf, err := policy.VerifyCFrag(g, levels[lvl].Capsule, r.GetCfrag())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	return &CFrag{Node: p, Level: lvl, Grant: g, CFrag: vcf}, nil
}
