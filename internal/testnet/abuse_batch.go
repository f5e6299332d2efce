package testnet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// batchReq builds a BatchReencrypt of raw capsules.
func batchReq(owner policy.PublicKey, ph policy.PathHash, capsules [][]byte) *proto.Envelope {
	return proto.Request(RequestID(), &proto.Envelope_BatchReencrypt{BatchReencrypt: &proto.BatchReencryptRequest{
		Owner: owner[:], PathHash: ph[:], Capsules: capsules}})
}

// items summarizes a batch answer's items: "ok×30 MALFORMED×2".
func items(resp *proto.Envelope) string {
	counts := map[string]int{}
	for _, it := range resp.GetBatchReencryptResponse().GetItems() {
		if e := it.GetError(); e != nil {
			counts[e.GetCode().String()]++
		} else {
			counts["ok"]++
		}
	}
	var parts []string
	for _, k := range []string{"ok", "MALFORMED", "RATE_LIMITED", "INTERNAL"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
		}
	}
	return strings.Join(parts, " ")
}

// batches: BatchReencrypt (SPEC.md §4.3.10) played as an attacker: too many
// capsules, another's grant, forged and off-curve capsules among good
// ones, a revoked grant.
func (a *abuser) batches(ctx context.Context) error {
	ph := a.bobF.Levels[1].PathHash
	good := a.bobF.Levels[1].Capsule.Bytes()
	many := make([][]byte, proto.MaxBatchItems+1)
	for i := range many {
		many[i] = good
	}
	resp, err := a.call(ctx, "bob", batchReq(a.ownerK, ph, many))
	a.record(ctx, fmt.Sprintf("batch of %d capsules (over MaxBatchItems)", len(many)), "MALFORMED", resp, err)
	resp, err = a.call(ctx, "eve", batchReq(a.ownerK, ph, many[:4]))
	a.record(ctx, "batch asked by someone other than the recipient", "NOT_GRANTED", resp, err)

	// Forged capsules (valid encodings whose self-check fails: E, V of one
	// file with s of another) and an off-curve one among good ones: each
	// refused alone, the good ones served.
	other, err := EncryptFor(a.owner, a.bob.IdentityKey, "/abuse/other")
	if err != nil {
		return err
	}
	forged := append([]byte(nil), good...)
	o := other.Levels[1].Capsule.Bytes()
	copy(forged[len(forged)-32:], o[len(o)-32:])
	bad := append([]byte(nil), good...)
	copy(bad[3:36], offCurve())
	mixed := [][]byte{good, forged, good, bad, good}
	resp, err = a.call(ctx, "bob", batchReq(a.ownerK, ph, mixed))
	want := "ok×3 MALFORMED×2"
	obs := Outcome(resp, err)
	if obs == "ok" {
		obs = items(resp)
	}
	pass := obs == want
	if pass {
		its := resp.GetBatchReencryptResponse().GetItems()
		pass = its[1].GetError() != nil && its[3].GetError() != nil
	}
	a.row(ctx, "batch with a forged and an off-curve capsule among good ones", want, obs, "", pass)
	forgedAll := make([][]byte, proto.MaxBatchItems)
	for i := range forgedAll {
		forgedAll[i] = forged
	}
	resp, err = a.call(ctx, "bob", batchReq(a.ownerK, ph, forgedAll))
	obs = Outcome(resp, err)
	if obs == "ok" {
		obs = items(resp)
	}
	want = fmt.Sprintf("MALFORMED×%d", proto.MaxBatchItems)
	a.row(ctx, "batch of forged capsules only", want, obs, "", obs == want)

	// A batch under a grant the owner revoked.
	gs, err := Grants(a.owner, a.bob, "/abuse/batch-revoked", 1, 1, 1, time.Hour)
	if err != nil {
		return err
	}
	if _, err := a.hosts["owner"].StoreGrant(ctx, a.target, gs[0]); err != nil {
		return fmt.Errorf("store the grant to revoke: %w", err)
	}
	rev := &policy.Revocation{Owner: a.ownerK, Recipient: a.bob.IdentityKey, PathHash: gs[0].PathHash, Sequence: 2, IssuedAt: uint64(time.Now().Unix())}
	if err := rev.Sign(policy.IdentitySigner(a.owner)); err != nil {
		return err
	}
	if _, err := a.hosts["owner"].Revoke(ctx, a.target, rev); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	f, err := EncryptFor(a.owner, a.bob.IdentityKey, "/abuse/batch-revoked/file")
	if err != nil {
		return err
	}
	resp, err = a.call(ctx, "bob", batchReq(a.ownerK, gs[0].PathHash, [][]byte{f.Levels[2].Capsule.Bytes()}))
	a.record(ctx, "batch under a revoked grant", "REVOKED", resp, err)
	return nil
}
