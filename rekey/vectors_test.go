package rekey

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Vectors made by the reference implementation (interop/gen-vectors.js,
// regenerate with scripts/gen-vectors.sh).
type vectors struct {
	Reference string `json:"reference"`
	U         struct{ X, Y string }
	Keys      []struct{ Label, SK, PK string }
	SKF       struct {
		Seed      string
		Keys      []struct{ Label, Key string }
		Secrets   []struct{ Label, Secret string }
		Factories []struct{ Factory, Label, Key string }
	}
	Signatures []struct{ SK, PK, Msg, Signature string }
	Capsules   []struct{ SK, PK, Plaintext, Capsule, Ciphertext string }
	Grants     []vectorGrant
}

type vectorGrant struct {
	DelegatingSK   string   `json:"delegating_sk"`
	DelegatingPK   string   `json:"delegating_pk"`
	ReceivingSK    string   `json:"receiving_sk"`
	ReceivingPK    string   `json:"receiving_pk"`
	VerifyingPK    string   `json:"verifying_pk"`
	Threshold      int      `json:"threshold"`
	Shares         int      `json:"shares"`
	SignDelegating bool     `json:"sign_delegating"`
	SignReceiving  bool     `json:"sign_receiving"`
	Plaintext      string   `json:"plaintext"`
	Capsule        string   `json:"capsule"`
	Ciphertext     string   `json:"ciphertext"`
	KFrags         []string `json:"kfrags"`
	CFrags         []string `json:"cfrags"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Grants) == 0 || len(v.Capsules) == 0 || len(v.Keys) == 0 {
		t.Fatal("vectors file is empty")
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSK(t testing.TB, s string) *SecretKey {
	t.Helper()
	sk, err := ParseSecretKey(unhex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func mustPK(t testing.TB, s string) *PublicKey {
	t.Helper()
	pk, err := ParsePublicKey(unhex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestVectorsDeterministic(t *testing.T) {
	v := loadVectors(t)
	if got := hex.EncodeToString(params().uBytes[1:]); got != v.U.X {
		t.Fatalf("U.x = %s, reference %s", got, v.U.X)
	}
	for _, k := range v.Keys {
		if got := hex.EncodeToString(mustSK(t, k.SK).PublicKey().Bytes()); got != k.PK {
			t.Errorf("%s: pk %s, reference %s", k.Label, got, k.PK)
		}
	}
	f, err := NewSecretKeyFactory(unhex(t, v.SKF.Seed))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range v.SKF.Keys {
		if got := hex.EncodeToString(f.MakeKey(unhex(t, k.Label)).Bytes()); got != k.Key {
			t.Errorf("MakeKey(%q) = %s, reference %s", unhex(t, k.Label), got, k.Key)
		}
	}
	for _, k := range v.SKF.Secrets {
		if got := hex.EncodeToString(f.MakeSecret(unhex(t, k.Label))); got != k.Secret {
			t.Errorf("MakeSecret(%q) = %s, reference %s", unhex(t, k.Label), got, k.Secret)
		}
	}
	for _, k := range v.SKF.Factories {
		if got := hex.EncodeToString(f.MakeFactory(unhex(t, k.Factory)).MakeKey(unhex(t, k.Label)).Bytes()); got != k.Key {
			t.Errorf("MakeFactory(%q).MakeKey = %s, reference %s", unhex(t, k.Factory), got, k.Key)
		}
	}
}

func TestVectorsObjects(t *testing.T) {
	v := loadVectors(t)
	for _, s := range v.Signatures {
		sig, err := ParseSignature(unhex(t, s.Signature))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig.Bytes(), unhex(t, s.Signature)) || !sig.Verify(mustPK(t, s.PK), unhex(t, s.Msg)) {
			t.Errorf("reference signature of %q", unhex(t, s.Msg))
		}
	}
	for _, c := range v.Capsules {
		capsule, err := ParseCapsule(unhex(t, c.Capsule))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(capsule.Bytes(), unhex(t, c.Capsule)) {
			t.Error("capsule does not re-serialize byte for byte")
		}
		pt, err := DecryptOriginal(mustSK(t, c.SK), capsule, unhex(t, c.Ciphertext))
		if err != nil || !bytes.Equal(pt, unhex(t, c.Plaintext)) {
			t.Errorf("DecryptOriginal = %q, %v", pt, err)
		}
	}
	for gi, g := range v.Grants {
		capsule, err := ParseCapsule(unhex(t, g.Capsule))
		if err != nil {
			t.Fatal(err)
		}
		spk, apk, bpk := mustPK(t, g.VerifyingPK), mustPK(t, g.DelegatingPK), mustPK(t, g.ReceivingPK)
		var cfrags []*VerifiedCapsuleFrag
		for i := range g.KFrags {
			kf, err := ParseKeyFrag(unhex(t, g.KFrags[i]))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kf.Bytes(), unhex(t, g.KFrags[i])) {
				t.Errorf("grant %d kfrag %d does not re-serialize byte for byte", gi, i)
			}
			if _, err := kf.Verify(spk, apk, bpk); err != nil {
				t.Errorf("grant %d kfrag %d: %v", gi, i, err)
			}
			cf, err := ParseCapsuleFrag(unhex(t, g.CFrags[i]))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cf.Bytes(), unhex(t, g.CFrags[i])) {
				t.Errorf("grant %d cfrag %d does not re-serialize byte for byte", gi, i)
			}
			vc, err := cf.Verify(capsule, spk, apk, bpk)
			if err != nil {
				t.Fatalf("grant %d cfrag %d: %v", gi, i, err)
			}
			cfrags = append(cfrags, vc)
		}
		pt, err := DecryptReencrypted(mustSK(t, g.ReceivingSK), apk, capsule, cfrags[:g.Threshold], unhex(t, g.Ciphertext))
		if err != nil || !bytes.Equal(pt, unhex(t, g.Plaintext)) {
			t.Errorf("grant %d: DecryptReencrypted = %q, %v", gi, pt, err)
		}
	}
}

// flips returns copies of b with one bit flipped, every stride-th bit.
func flips(b []byte, stride int) [][]byte {
	var out [][]byte
	for bit := 0; bit < len(b)*8; bit += stride {
		m := bytes.Clone(b)
		m[bit/8] ^= 1 << (bit % 8)
		out = append(out, m)
	}
	return out
}

// TestVectorsMutated flips every bit of every kind of object of the first
// 3-of-5 grant and requires each mutation to be refused somewhere before
// the plaintext comes out.
func TestVectorsMutated(t *testing.T) {
	v := loadVectors(t)
	g := v.Grants[3] // 3-of-5, both keys signed
	spk, apk, bpk := mustPK(t, g.VerifyingPK), mustPK(t, g.DelegatingPK), mustPK(t, g.ReceivingPK)
	bsk := mustSK(t, g.ReceivingSK)
	capsule, err := ParseCapsule(unhex(t, g.Capsule))
	if err != nil {
		t.Fatal(err)
	}
	ct := unhex(t, g.Ciphertext)
	var good []*VerifiedCapsuleFrag
	for _, c := range g.CFrags[:g.Threshold] {
		cf, err := ParseCapsuleFrag(unhex(t, c))
		if err != nil {
			t.Fatal(err)
		}
		vc, err := cf.Verify(capsule, spk, apk, bpk)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, vc)
	}
	decrypts := func(c *Capsule, cfrags []*VerifiedCapsuleFrag, ct []byte) bool {
		_, err := DecryptReencrypted(bsk, apk, c, cfrags, ct)
		return err == nil
	}
	if !decrypts(capsule, good, ct) {
		t.Fatal("unmutated grant does not decrypt")
	}

	for _, m := range flips(unhex(t, g.Capsule), 1) {
		c, err := ParseCapsule(m)
		if err == nil && decrypts(c, good, ct) {
			t.Fatalf("mutated capsule %x accepted", m)
		}
	}
	for _, m := range flips(ct, 1) {
		if decrypts(capsule, good, m) {
			t.Fatal("mutated ciphertext accepted")
		}
	}
	for _, m := range flips(unhex(t, g.KFrags[0]), 1) {
		kf, err := ParseKeyFrag(m)
		if err != nil {
			continue
		}
		vk, err := kf.Verify(spk, apk, bpk)
		if err != nil {
			continue
		}
		// signature_for_receiver is not checked by kfrag verification (as in
		// the reference); it is checked through the cfrag.
		if _, err := mustReencrypt(t, capsule, vk).Unverify().Verify(capsule, spk, apk, bpk); err == nil {
			t.Fatalf("mutated kfrag accepted end to end: %x", m)
		}
	}
	for _, m := range flips(unhex(t, g.CFrags[0]), 1) {
		cf, err := ParseCapsuleFrag(m)
		if err != nil {
			continue
		}
		if _, err := cf.Verify(capsule, spk, apk, bpk); err == nil {
			t.Fatalf("mutated cfrag verified: %x", m)
		}
	}
	for _, s := range v.Signatures {
		for _, m := range flips(unhex(t, s.Signature), 1) {
			sig, err := ParseSignature(m)
			if err == nil && sig.Verify(mustPK(t, s.PK), unhex(t, s.Msg)) {
				t.Fatal("mutated signature verified")
			}
		}
	}
}
