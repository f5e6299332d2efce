package policy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kadre/kadre/rekey"
)

func TestValidateExpiry(t *testing.T) {
	now := testNow
	day := 24 * time.Hour
	s := func(d time.Duration) uint64 { return uint64(now.Add(d).Unix()) }
	for _, tc := range []struct {
		name   string
		expiry uint64
		max    time.Duration
		want   error
	}{
		{"in range", s(day), 30 * day, nil},
		{"exactly the maximum", s(30 * day), 30 * day, nil},
		{"one second left", s(time.Second), day, nil},
		{"expires now", s(0), day, ErrExpired},
		{"expired", s(-time.Hour), day, ErrExpired},
		{"beyond maximum", s(30*day + time.Second), 30 * day, ErrExpiryTooLong},
		{"sub-second maximum", s(time.Second), time.Second - 1, ErrExpiryTooLong},
		{"negative maximum", s(time.Second), -time.Second, ErrExpiryTooLong},
		{"largest maximum", s(100 * 365 * day), 1<<63 - 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateExpiry(tc.expiry, now, tc.max); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("ValidateExpiry = %v, want %v", err, tc.want)
			}
		})
	}
	if err := ValidateLive(s(time.Second), time.Unix(-5, 0)); !errors.Is(err, ErrExpired) {
		t.Errorf("clock before 1970: %v", err)
	}
}

func TestValidateSequence(t *testing.T) {
	for _, tc := range []struct {
		seq, last uint64
		ok        bool
	}{
		{1, 0, true},
		{8, 7, true},
		{1 << 63, 7, true},
		{7, 7, false},
		{6, 7, false},
		{0, 0, false},
		{1<<64 - 1, 1<<64 - 1, false},
	} {
		err := ValidateSequence(tc.seq, tc.last)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrStaleSequence)) {
			t.Errorf("ValidateSequence(%d, %d) = %v", tc.seq, tc.last, err)
		}
	}
}

// resign re-signs g (a copy) after edit, so that only the edited rule fails.
func resign(t *testing.T, k *rekey.Keyring, g *Grant, edit func(*Grant)) *Grant {
	t.Helper()
	c := *g
	c.KFrag = bytes.Clone(g.KFrag)
	edit(&c)
	if err := c.Sign(IdentitySigner(k)); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestValidateGrantForStore(t *testing.T) {
	f := newFixture(t)
	const maxDur = 30 * 24 * time.Hour
	for _, g := range f.grants {
		vkf, err := ValidateGrantForStore(g, testNow, maxDur)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vkf.Bytes(), g.KFrag) {
			t.Fatal("verified kfrag differs from the grant's")
		}
	}
	g := f.grants[0]
	otherKFrags, err := rekey.GenerateKFragsWithRand(testRand(9), DelegatingKey(f.owner, f.prefix, 0), f.recipient.Receiving().PublicKey(),
		f.owner.KFragSigner(), 3, 5, false, true)
	if err != nil {
		t.Fatal(err)
	}
	otherPrefixKFrags, err := rekey.GenerateKFragsWithRand(testRand(10), DelegatingKey(f.owner, RootPath(), 0), f.recipient.Receiving().PublicKey(),
		f.owner.KFragSigner(), 3, 5, true, true)
	if err != nil {
		t.Fatal(err)
	}
	forged := *g
	forged.Signature = resign(t, f.other, g, func(c *Grant) { c.Owner = PublicKey{} }).Signature
	for _, tc := range []struct {
		name string
		g    *Grant
		want error
	}{
		{"signed by another key", &forged, ErrBadSignature},
		{"body edited after signing", func() *Grant { c := *g; c.Sequence++; return &c }(), ErrBadSignature},
		{"expired", resign(t, f.owner, g, func(c *Grant) { c.Expiry = uint64(testNow.Unix()) }), ErrExpired},
		{"expiry too long", resign(t, f.owner, g, func(c *Grant) { c.Expiry = uint64(testNow.Add(maxDur + time.Second).Unix()) }), ErrExpiryTooLong},
		{"another recipient's receiving key", resign(t, f.owner, g, func(c *Grant) { c.Recipient.ReceivingKey = IdentityOf(f.other).ReceivingKey }), ErrBadKFrag},
		{"another delegating key", resign(t, f.owner, g, func(c *Grant) { c.DelegatingKey = PublicKeyOf(DelegatingKey(f.owner, RootPath(), 0).PublicKey()) }), ErrBadKFrag},
		{"another verifying key", resign(t, f.owner, g, func(c *Grant) { c.VerifyingKey = IdentityOf(f.owner).IdentityKey }), ErrBadKFrag},
		{"kfrag of another prefix", resign(t, f.owner, g, func(c *Grant) { c.KFrag = otherPrefixKFrags[0].Bytes() }), ErrBadKFrag},
		{"kfrag not signing the delegating key", resign(t, f.owner, g, func(c *Grant) { c.KFrag = otherKFrags[0].Bytes() }), ErrBadKFrag},
		{"kfrag not Umbral-sized", resign(t, f.owner, g, func(c *Grant) { c.KFrag = []byte("not a kfrag") }), ErrBadKFrag},
		{"kfrag garbage", resign(t, f.owner, g, func(c *Grant) { c.KFrag = bytes.Repeat([]byte{0x95}, rekey.KeyFragSize) }), ErrBadKFrag},
		{"kfrag swapped after signing", func() *Grant { c := *g; c.KFrag = f.grants[1].KFrag; return &c }(), ErrBadKFrag},
		{"public grant", func() *Grant { c := *g; c.KFrag = nil; return &c }(), ErrBadKFrag},
		{"unknown algorithm", func() *Grant { c := *g; c.PRE = 2; return &c }(), ErrUnknownAlgorithm},
		{"m > n", func() *Grant { c := *g; c.Threshold = 6; return &c }(), ErrBadThreshold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateGrantForStore(tc.g, testNow, maxDur)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ValidateGrantForStore = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateRevocation(t *testing.T) {
	f := newFixture(t)
	r := f.revocation(t, 8)
	if err := ValidateRevocation(r); err != nil {
		t.Fatal(err)
	}
	forged := *r
	forged.Owner = IdentityOf(f.other).IdentityKey
	if err := ValidateRevocation(&forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("revocation under another owner: %v", err)
	}
	// The sequence rule that refuses a replay, applied by the store with
	// the node's state: the revoked grant's sequence (7) is not above the
	// tombstone's (8), a replay of the revocation is not above itself.
	if err := ValidateSequence(f.grants[0].Sequence, r.Sequence); !errors.Is(err, ErrStaleSequence) {
		t.Errorf("grant replayed after revocation: %v", err)
	}
	if err := ValidateSequence(r.Sequence, r.Sequence); !errors.Is(err, ErrStaleSequence) {
		t.Errorf("replayed revocation: %v", err)
	}
}

func TestAuthorizeRecipient(t *testing.T) {
	f := newFixture(t)
	g := f.grants[0]
	me := IdentityOf(f.recipient)
	if err := AuthorizeRecipient(g, me.IdentityKey[:]); err != nil {
		t.Fatal(err)
	}
	for name, remote := range map[string][]byte{
		"receiving key":  me.ReceivingKey[:],
		"owner":          g.Owner[:],
		"empty":          nil,
		"ed25519-length": make([]byte, 32),
		"uncompressed":   make([]byte, 65),
	} {
		if err := AuthorizeRecipient(g, remote); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The whole story: grant, store, re-encrypt on m of n nodes, verify,
// decrypt, revoke, count receipts.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t)
	owner, me := IdentityOf(f.owner), IdentityOf(f.recipient)
	file := MustNormalizePath("/home/ubuntu/secret.txt")

	// The owner encrypts the file's data key to every prefix; this test
	// keeps only the level the grant covers.
	capsule, ct, err := rekey.Encrypt(DelegatingKey(f.owner, f.prefix, 0).PublicKey(), []byte("attack at dawn"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := RecipientPairKey(f.recipient, owner.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	levels := pair.PathHashes(file, nil)

	nodes := make([]*rekey.Keyring, len(f.grants))
	var cfrags []*rekey.VerifiedCapsuleFrag
	for i, g := range f.grants {
		nodes[i], _ = testIdentity(t, byte(10+i))
		wire, err := ParseGrant(g.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		vkf, err := ValidateGrantForStore(wire, testNow, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ack := signedReceipt(t, nodes[i], ReceiptStored, wire.ID(), wire.ID(), wire.Owner, wire.PathHash, wire.Sequence)
		if err := VerifyReceiptForGrant(ack, IdentityOf(nodes[i]).IdentityKey, g); err != nil {
			t.Fatal(err)
		}
		if i >= int(g.Threshold) {
			continue
		}
		// The node: its store finds the grant's level (deepest first,
		// package store), then the grant must serve this request.
		level := slices.Index(levels, wire.PathHash)
		if level < 0 {
			t.Fatal("the grant's path hash is not a level of the file")
		}
		if err := CheckServable(wire, owner.IdentityKey, levels[level], me.IdentityKey[:], testNow); err != nil {
			t.Fatal(err)
		}
		sg := wire
		served, err := rekey.Reencrypt(capsule, vkf)
		if err != nil {
			t.Fatal(err)
		}
		cfrag := served.Bytes()
		public, err := ParsePublicGrant(sg.PublicBytes())
		if err != nil {
			t.Fatal(err)
		}
		// The recipient's side.
		if err := VerifyServedGrant(public, owner.IdentityKey, me, levels[level]); err != nil {
			t.Fatal(err)
		}
		if err := VerifyServedGrant(public, owner.IdentityKey, me, levels[level+1]); !errors.Is(err, ErrMismatch) {
			t.Fatalf("grant accepted for another level: %v", err)
		}
		vcf, err := VerifyCFrag(public, capsule, cfrag)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(cfrag)
		bad[300] ^= 1
		if _, err := VerifyCFrag(public, capsule, bad); err == nil {
			t.Fatal("tampered cfrag verified")
		}
		cfrags = append(cfrags, vcf)
	}
	pt, err := rekey.DecryptReencrypted(f.recipient.Receiving(), DelegatingKey(f.owner, f.prefix, 0).PublicKey(), capsule, cfrags, ct)
	if err != nil || string(pt) != "attack at dawn" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}

	r := f.revocation(t, 8)
	// The owner's holder map of the grant: fragment i on nodes[i].
	entry := MapEntry{PathHash: f.grants[0].PathHash, Sequence: f.grants[0].Sequence, Expiry: f.grants[0].Expiry,
		Threshold: f.grants[0].Threshold, Shares: f.grants[0].Shares,
		DelegatingKey: f.grants[0].DelegatingKey, VerifyingKey: f.grants[0].VerifyingKey}
	for i, g := range f.grants {
		entry.Holders = append(entry.Holders, MapHolder{Node: IdentityOf(nodes[i]).IdentityKey, GrantID: g.ID()})
	}
	hm := &HolderMap{Recipient: me.IdentityKey, Points: pair.Points(), Sequence: 1, IssuedAt: uint64(testNow.Unix()),
		Pages: 1, Entries: []MapEntry{entry}}
	if err := hm.Sign(IdentitySigner(f.owner)); err != nil {
		t.Fatal(err)
	}
	current := CurrentHolders(hm, &hm.Entries[0], nil)
	var receipts []*Receipt
	for i, n := range nodes {
		if err := ValidateRevocation(r); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			receipts = append(receipts, signedReceipt(t, n, ReceiptRevokedNotHeld, r.ID(), RecordID{}, r.Owner, r.PathHash, r.Sequence))
			continue
		}
		receipts = append(receipts, signedReceipt(t, n, ReceiptRevoked, r.ID(), f.grants[i].ID(), r.Owner, r.PathHash, r.Sequence))
	}
	v := RevocationVerdict(r, &hm.Entries[0], current, receipts)
	if v.Deleted != len(nodes)-1 || v.Acknowledged != 1 || !v.Dead || len(v.Remaining) != 1 || v.Remaining[0] != f.grants[0].ID() {
		t.Fatalf("verdict %+v", v)
	}
	// Duplicates, receipts for something else, receipts naming another
	// node's fragment, and forgeries prove nothing more.
	extra := append(slices.Clone(receipts), receipts[1], nil,
		signedReceipt(t, f.other, ReceiptStored, r.ID(), r.ID(), r.Owner, r.PathHash, r.Sequence),
		signedReceipt(t, f.other, ReceiptRevoked, r.ID(), f.grants[0].ID(), r.Owner, r.PathHash, r.Sequence),
		signedReceipt(t, nodes[2], ReceiptRevoked, r.ID(), f.grants[0].ID(), r.Owner, r.PathHash, r.Sequence))
	forged := *receipts[2]
	forged.Node = IdentityOf(f.other).IdentityKey
	extra = append(extra, &forged)
	if got := RevocationVerdict(r, &hm.Entries[0], current, extra); got.Deleted != v.Deleted || got.Dead != v.Dead {
		t.Fatalf("extra receipts changed the verdict: %+v", got)
	}
	// With the receipts of two holders only, three fragments may remain.
	if got := RevocationVerdict(r, &hm.Entries[0], current, receipts[3:]); got.Dead || got.Deleted != 2 {
		t.Fatalf("verdict with two holders silent: %+v", got)
	}
	if err := VerifyReceiptForRevocation(receipts[1], IdentityOf(nodes[0]).IdentityKey, r); !errors.Is(err, ErrMismatch) {
		t.Fatalf("receipt from another node accepted: %v", err)
	}
	if err := VerifyReceiptForGrant(receipts[1], receipts[1].Node, f.grants[0]); !errors.Is(err, ErrMismatch) {
		t.Fatalf("revocation receipt accepted for a grant: %v", err)
	}
}

func TestVerifyNodeInfo(t *testing.T) {
	f := newFixture(t)
	ni := testNodeInfo(t, f.other)
	node := IdentityOf(f.other).IdentityKey
	if err := VerifyNodeInfo(ni, node); err != nil {
		t.Fatal(err)
	}
	if err := VerifyNodeInfo(ni, IdentityOf(f.owner).IdentityKey); !errors.Is(err, ErrMismatch) {
		t.Errorf("node info of another node: %v", err)
	}
	c := *ni
	c.FreeSlots--
	if err := VerifyNodeInfo(&c, node); !errors.Is(err, ErrBadSignature) {
		t.Errorf("edited node info: %v", err)
	}
	if ni.MaxDuration() != 90*24*time.Hour || !ni.Supports(PREUmbral) || ni.Supports(2) {
		t.Error("node info accessors")
	}
}

func FuzzValidateGrantForStore(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.grants[0].Bytes(), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, nowDelta int64) {
		g, err := ParseGrant(b)
		if err != nil {
			return
		}
		now := testNow.Add(time.Duration(nowDelta % int64(1<<40)))
		_, err = ValidateGrantForStore(g, now, 48*time.Hour)
		if err == nil && (ValidateLive(g.Expiry, now) != nil || g.VerifySignature() != nil) {
			t.Fatal("accepted a grant that breaks a rule")
		}
	})
}

func FuzzValidateExpiry(f *testing.F) {
	f.Add(uint64(testNow.Unix()+10), testNow.Unix(), int64(time.Hour))
	f.Fuzz(func(t *testing.T, expiry uint64, now int64, maxDur int64) {
		n := time.Unix(now%(MaxTimestamp+1), 0)
		err := ValidateExpiry(expiry, n, time.Duration(maxDur))
		ok := n.Unix() >= 0 && expiry > uint64(n.Unix()) && maxDur >= 0 && expiry <= uint64(n.Unix())+uint64(maxDur/int64(time.Second))
		if (err == nil) != ok {
			t.Fatalf("ValidateExpiry(%d, %d, %d) = %v, want ok=%v", expiry, n.Unix(), maxDur, err, ok)
		}
	})
}

func ExampleValidateSequence() {
	// The node saw sequence 7 for this owner and path hash (a grant, or a
	// revocation's tombstone); a replay of sequence 7 is refused.
	fmt.Println(ValidateSequence(8, 7) == nil)
	fmt.Println(ValidateSequence(7, 7))
	// Output:
	// true
	// policy: stale or replayed sequence number: sequence 7 is not greater than 7, the last seen for this owner and path hash; the owner must sign a new record with a higher sequence number
}
