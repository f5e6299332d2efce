package policy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kadre/kadre/rekey"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vectors is testdata/vectors.json: one record of each type made from fixed
// seeds, for other implementations and to pin the layouts. The keyrings are
// rekey.NewKeyring(32 × seed byte).
type vectors struct {
	Comment       string `json:"comment"`
	OwnerSeed     byte   `json:"owner_seed"`
	RecipientSeed byte   `json:"recipient_seed"`
	NodeSeed      byte   `json:"node_seed"`
	Now           int64  `json:"now"`
	Prefix        string `json:"prefix"`
	OwnerID       string `json:"owner_identity"`
	RecipientID   string `json:"recipient_identity"`
	PathHash      string `json:"path_hash"`
	Grant         string `json:"grant"`
	GrantID       string `json:"grant_id"`
	Revocation    string `json:"revocation"`
	RevocationID  string `json:"revocation_id"`
	StoreReceipt  string `json:"store_receipt"`
	RevokeReceipt string `json:"revoke_receipt"`
	NodeInfo      string `json:"node_info"`
	GrantDigest   string `json:"grant_signing_digest"`
	RevocationDig string `json:"revocation_signing_digest"`
	// The pair's holder map (fragment i on node seed 40+i), a hand-off of
	// fragment 0 from node 40 to node 45, and an admission list of nodes
	// 40..44 signed by the operator seed 3.
	HolderMap     string `json:"holder_map"`
	HandoffLink   string `json:"handoff_link"`
	AdmissionList string `json:"admission_list"`
}

func makeVectors(t *testing.T) vectors {
	f := newFixture(t)
	node, _ := testIdentity(t, 10)
	g := f.grants[0]
	r := f.revocation(t, 8)
	gd := signingDigest(LabelGrant, g.BodyBytes())
	rd := signingDigest(LabelRevocation, r.BodyBytes())
	nodes := testNodes(t, 6)
	m := testMap(t, f, nodes)
	return vectors{
		Comment:       "kadre policy records (SPEC.md §3.6); regenerate with go test ./policy -run TestVectors -update",
		OwnerSeed:     1,
		RecipientSeed: 2,
		NodeSeed:      10,
		Now:           testNow.Unix(),
		Prefix:        f.prefix.String(),
		OwnerID:       IdentityOf(f.owner).String(),
		RecipientID:   IdentityOf(f.recipient).String(),
		PathHash:      g.PathHash.String(),
		Grant:         hex.EncodeToString(g.Bytes()),
		GrantID:       g.ID().String(),
		Revocation:    hex.EncodeToString(r.Bytes()),
		RevocationID:  r.ID().String(),
		StoreReceipt:  hex.EncodeToString(signedReceipt(t, node, ReceiptStored, g.ID(), g.ID(), g.Owner, g.PathHash, g.Sequence).Bytes()),
		RevokeReceipt: hex.EncodeToString(signedReceipt(t, node, ReceiptRevoked, r.ID(), g.ID(), r.Owner, r.PathHash, r.Sequence).Bytes()),
		NodeInfo:      hex.EncodeToString(testNodeInfo(t, node).Bytes()),
		GrantDigest:   hex.EncodeToString(gd[:]),
		RevocationDig: hex.EncodeToString(rd[:]),
		HolderMap:     hex.EncodeToString(m.Bytes()),
		HandoffLink:   hex.EncodeToString(link(t, m, &m.Entries[0], g.ID(), nodes[0], nodes[5]).Bytes()),
		AdmissionList: hex.EncodeToString(testAdmission(t, f, nodes[:5]).Bytes()),
	}
}

// testAdmission is the vectors' admission list: nodes, signed by f.other.
func testAdmission(t testing.TB, f *fixture, nodes []*rekey.Keyring) *AdmissionList {
	t.Helper()
	a := &AdmissionList{IssuedAt: uint64(testNow.Unix()), Expiry: uint64(testNow.Add(365 * 24 * time.Hour).Unix())}
	for _, n := range nodes {
		a.Nodes = append(a.Nodes, IdentityOf(n).IdentityKey)
	}
	if err := a.Sign(IdentitySigner(f.other)); err != nil {
		t.Fatal(err)
	}
	return a
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		b, err := json.MarshalIndent(makeVectors(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	keyring := func(seed byte) *rekey.Keyring {
		k, err := rekey.NewKeyring(bytes.Repeat([]byte{seed}, rekey.SeedSize))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	owner, recipient, node := keyring(v.OwnerSeed), keyring(v.RecipientSeed), keyring(v.NodeSeed)
	now := time.Unix(v.Now, 0)

	if IdentityOf(owner).String() != v.OwnerID || IdentityOf(recipient).String() != v.RecipientID {
		t.Fatal("identity strings differ from the vectors")
	}
	prefix := MustNormalizePath(v.Prefix)
	pair, err := OwnerPairKey(owner, IdentityOf(recipient).IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	if ph := pair.PathHash(prefix, 0); ph.String() != v.PathHash {
		t.Fatal("path hash differs")
	}

	// The grant: parses, validates, re-encodes to the same bytes, and
	// re-signing its body with the owner's key (RFC 6979) gives the same
	// signature.
	gb := unhex(t, v.Grant)
	g, err := ParseGrant(gb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ValidateGrantForStore(g, now, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if g.ID().String() != v.GrantID || !bytes.Equal(g.Bytes(), gb) || g.Owner != IdentityOf(owner).IdentityKey || g.DelegatingKey != PublicKeyOf(DelegatingKey(owner, prefix, 0).PublicKey()) {
		t.Fatal("grant differs from the vectors")
	}
	if d := signingDigest(LabelGrant, g.BodyBytes()); hex.EncodeToString(d[:]) != v.GrantDigest {
		t.Fatal("grant signing digest differs")
	}
	resigned := *g
	if err := resigned.Sign(IdentitySigner(owner)); err != nil || resigned.Signature != g.Signature {
		t.Fatalf("re-signed grant differs: %v", err)
	}

	rb := unhex(t, v.Revocation)
	r, err := ParseRevocation(rb)
	if err != nil || ValidateRevocation(r) != nil || r.ID().String() != v.RevocationID || !bytes.Equal(r.Bytes(), rb) {
		t.Fatalf("revocation: %v", err)
	}
	if d := signingDigest(LabelRevocation, r.BodyBytes()); hex.EncodeToString(d[:]) != v.RevocationDig {
		t.Fatal("revocation signing digest differs")
	}
	nodeKey := IdentityOf(node).IdentityKey
	sr, err := ParseReceipt(unhex(t, v.StoreReceipt))
	if err != nil || VerifyReceiptForGrant(sr, nodeKey, g) != nil {
		t.Fatalf("store receipt: %v", err)
	}
	rr, err := ParseReceipt(unhex(t, v.RevokeReceipt))
	if err != nil || VerifyReceiptForRevocation(rr, nodeKey, r) != nil {
		t.Fatalf("revoke receipt: %v", err)
	}
	ni, err := ParseNodeInfo(unhex(t, v.NodeInfo))
	if err != nil || VerifyNodeInfo(ni, nodeKey) != nil {
		t.Fatalf("node info: %v", err)
	}
	ownerKey, recipientKey := IdentityOf(owner).IdentityKey, IdentityOf(recipient).IdentityKey
	hm, err := ParseHolderMap(unhex(t, v.HolderMap))
	if err != nil || VerifyHolderMap(hm, ownerKey, recipientKey) != nil || hm.Points != pair.Points() || hm.Entry(g.PathHash) == nil {
		t.Fatalf("holder map: %v", err)
	}
	hl, err := ParseHandoffLink(unhex(t, v.HandoffLink))
	if err != nil || hl.VerifySignatures() != nil || len(CurrentHolders(hm, hm.Entry(g.PathHash), []*HandoffLink{hl})[g.ID()]) != 1 {
		t.Fatalf("hand-off link: %v", err)
	}
	operator, _ := testIdentity(t, 3)
	al, err := ParseAdmissionList(unhex(t, v.AdmissionList))
	if err != nil || VerifyAdmissionList(al, IdentityOf(operator).IdentityKey, now) != nil || len(al.Nodes) != 5 {
		t.Fatalf("admission list: %v", err)
	}

	// Every vector mutated in any one byte is refused.
	check := map[string]func([]byte) error{
		"grant": func(b []byte) error {
			x, err := ParseGrant(b)
			if err != nil {
				return err
			}
			_, err = ValidateGrantForStore(x, now, 48*time.Hour)
			return err
		},
		"revocation": func(b []byte) error {
			x, err := ParseRevocation(b)
			if err != nil {
				return err
			}
			return ValidateRevocation(x)
		},
		"store receipt": func(b []byte) error {
			x, err := ParseReceipt(b)
			if err != nil {
				return err
			}
			return VerifyReceiptForGrant(x, nodeKey, g)
		},
		"node info": func(b []byte) error {
			x, err := ParseNodeInfo(b)
			if err != nil {
				return err
			}
			return VerifyNodeInfo(x, nodeKey)
		},
		"holder map": func(b []byte) error {
			x, err := ParseHolderMap(b)
			if err != nil {
				return err
			}
			return VerifyHolderMap(x, ownerKey, recipientKey)
		},
		"hand-off link": func(b []byte) error {
			x, err := ParseHandoffLink(b)
			if err != nil {
				return err
			}
			return x.VerifySignatures()
		},
		"admission list": func(b []byte) error {
			x, err := ParseAdmissionList(b)
			if err != nil {
				return err
			}
			return VerifyAdmissionList(x, IdentityOf(operator).IdentityKey, now)
		},
	}
	inputs := map[string][]byte{"grant": gb, "revocation": rb, "store receipt": unhex(t, v.StoreReceipt), "node info": unhex(t, v.NodeInfo),
		"holder map": unhex(t, v.HolderMap), "hand-off link": unhex(t, v.HandoffLink), "admission list": unhex(t, v.AdmissionList)}
	for name, b := range inputs {
		for i := range b {
			m := bytes.Clone(b)
			m[i] ^= 0x40
			if err := check[name](m); err == nil {
				t.Errorf("%s with byte %d changed accepted", name, i)
			} else if errors.Is(err, ErrNotGranted) {
				t.Errorf("%s: unexpected error %v", name, err)
			}
		}
	}
}
