package dht

import (
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
// receipt.
func (h *Host) StoreGrant(ctx context.Context, p peer.ID, g *policy.Grant) (*policy.Receipt, error) {
	return h.sendGrant(ctx, p, g, false)
}

// Handoff passes a grant this node holds to p and returns p's verified
// acceptance.
func (h *Host) Handoff(ctx context.Context, p peer.ID, g *policy.Grant) (*policy.Receipt, error) {
	return h.sendGrant(ctx, p, g, true)
}

func (h *Host) sendGrant(ctx context.Context, p peer.ID, g *policy.Grant, handoff bool) (*policy.Receipt, error) {
	node, err := peerKey(p)
	if err != nil {
		return nil, err
	}
	var req *proto.Envelope
	if handoff {
		req = proto.Request(newRequestID(), &proto.Envelope_Handoff{Handoff: &proto.HandoffRequest{Grant: g.Bytes()}})
	} else {
		req = proto.Request(newRequestID(), &proto.Envelope_StoreGrant{StoreGrant: &proto.StoreGrantRequest{Grant: g.Bytes()}})
	}
	resp, err := h.call(ctx, p, req)
	if err != nil {
		return nil, err
	}
	b := resp.GetStoreGrantResponse().GetReceipt()
	want := policy.ReceiptStored
	if handoff {
		b, want = resp.GetHandoffResponse().GetReceipt(), policy.ReceiptHandoffAccepted
	}
	rc, err := policy.ParseReceipt(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if err := policy.VerifyReceiptForGrant(rc, node, g); err != nil || rc.Kind != want {
		return nil, fmt.Errorf("%w: receipt does not acknowledge the grant: %v", ErrBadResponse, err)
	}
	return rc, nil
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
