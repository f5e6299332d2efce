package rekey

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// detReader is a deterministic stream (SHA-256 in counter mode) for the
// WithRand twins.
type detReader struct {
	seed [32]byte
	ctr  uint64
	buf  []byte
}

func newDetReader(label string) *detReader { return &detReader{seed: sha256.Sum256([]byte(label))} }

func (r *detReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			var in [40]byte
			copy(in[:], r.seed[:])
			binary.BigEndian.PutUint64(in[32:], r.ctr)
			r.ctr++
			b := sha256.Sum256(in[:])
			r.buf = b[:]
		}
		c := copy(p[n:], r.buf)
		r.buf = r.buf[c:]
		n += c
	}
	return n, nil
}

type party struct {
	sk     *SecretKey
	signer *Signer
}

// mustReencrypt is Reencrypt for arguments a test knows are valid.
func mustReencrypt(t testing.TB, c *Capsule, kf *VerifiedKeyFrag) *VerifiedCapsuleFrag {
	t.Helper()
	cf, err := Reencrypt(c, kf)
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// mustSign is Sign for a signer a test knows is valid.
func mustSign(t testing.TB, s *Signer, msg []byte) *Signature {
	t.Helper()
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func newParty(t testing.TB, label string) party {
	t.Helper()
	sk, err := GenerateSecretKeyWithRand(newDetReader(label))
	if err != nil {
		t.Fatal(err)
	}
	return party{sk: sk, signer: NewSigner(sk)}
}

// grantFixture is a full Umbral flow: alice delegates to bob, signer signs.
type grantFixture struct {
	alice, bob, signer party
	capsule            *Capsule
	ct, pt             []byte
	kfrags             []*VerifiedKeyFrag
}

func newGrant(t testing.TB, m, n int, signD, signR bool) *grantFixture {
	t.Helper()
	g := &grantFixture{alice: newParty(t, "alice"), bob: newParty(t, "bob"), signer: newParty(t, "signer")}
	g.pt = []byte("attack at dawn")
	var err error
	g.capsule, g.ct, err = Encrypt(g.alice.sk.PublicKey(), g.pt)
	if err != nil {
		t.Fatal(err)
	}
	g.kfrags, err = GenerateKFrags(g.alice.sk, g.bob.sk.PublicKey(), g.signer.signer, m, n, signD, signR)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *grantFixture) cfrags(t testing.TB, idx ...int) []*VerifiedCapsuleFrag {
	t.Helper()
	var out []*VerifiedCapsuleFrag
	for _, i := range idx {
		cf := mustReencrypt(t, g.capsule, g.kfrags[i])
		// What travels is the unverified form: parse and verify as a
		// recipient does.
		parsed, err := ParseCapsuleFrag(cf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		v, err := parsed.Verify(g.capsule, g.signer.sk.PublicKey(), g.alice.sk.PublicKey(), g.bob.sk.PublicKey())
		if err != nil {
			t.Fatalf("cfrag %d: %v", i, err)
		}
		out = append(out, v)
	}
	return out
}

func TestEncryptDecryptOriginal(t *testing.T) {
	alice, mallory := newParty(t, "alice"), newParty(t, "mallory")
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("kadre"), 1000)} {
		c, ct, err := Encrypt(alice.sk.PublicKey(), pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(pt)+40 {
			t.Fatalf("ciphertext length %d for %d-byte plaintext", len(ct), len(pt))
		}
		got, err := DecryptOriginal(alice.sk, c, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("DecryptOriginal = %q, %v", got, err)
		}
		if _, err := DecryptOriginal(mallory.sk, c, ct); !errors.Is(err, ErrDecryption) {
			t.Fatalf("wrong key: %v", err)
		}
		if _, err := DecryptOriginal(alice.sk, c, ct[:39]); !errors.Is(err, ErrDecryption) {
			t.Fatalf("short ciphertext: %v", err)
		}
		c2, err := ParseCapsule(c.Bytes())
		if err != nil || !c2.Equal(c) {
			t.Fatalf("capsule round trip: %v", err)
		}
	}
}

func TestThresholdFlow(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{1, 1}, {1, 3}, {2, 3}, {3, 5}, {5, 5}, {7, 10}} {
		for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			g := newGrant(t, tc.m, tc.n, flags[0], flags[1])
			for i, vk := range g.kfrags {
				kf, err := ParseKeyFrag(vk.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(kf.Bytes(), vk.Bytes()) {
					t.Fatal("kfrag round trip differs")
				}
				if _, err := kf.Verify(g.signer.sk.PublicKey(), g.alice.sk.PublicKey(), g.bob.sk.PublicKey()); err != nil {
					t.Fatalf("%d-of-%d %v: kfrag %d: %v", tc.m, tc.n, flags, i, err)
				}
			}
			// The last m kfrags, in reverse order, decrypt.
			var idx []int
			for i := tc.n - 1; i >= tc.n-tc.m; i-- {
				idx = append(idx, i)
			}
			got, err := DecryptReencrypted(g.bob.sk, g.alice.sk.PublicKey(), g.capsule, g.cfrags(t, idx...), g.ct)
			if err != nil || !bytes.Equal(got, g.pt) {
				t.Fatalf("%d-of-%d %v: decrypt = %q, %v", tc.m, tc.n, flags, got, err)
			}
			if tc.m > 1 {
				_, err := DecryptReencrypted(g.bob.sk, g.alice.sk.PublicKey(), g.capsule, g.cfrags(t, idx[1:]...), g.ct)
				if !errors.Is(err, ErrDecryption) {
					t.Fatalf("%d-of-%d with %d cfrags: %v", tc.m, tc.n, tc.m-1, err)
				}
			}
			if tc.n > tc.m {
				// More than threshold works too.
				all := make([]int, tc.n)
				for i := range all {
					all[i] = i
				}
				if _, err := DecryptReencrypted(g.bob.sk, g.alice.sk.PublicKey(), g.capsule, g.cfrags(t, all...), g.ct); err != nil {
					t.Fatalf("all cfrags: %v", err)
				}
			}
		}
	}
}

func TestKFragVerifyFlags(t *testing.T) {
	g := newGrant(t, 2, 3, true, true)
	kf := g.kfrags[0].Unverify()
	spk, apk, bpk := g.signer.sk.PublicKey(), g.alice.sk.PublicKey(), g.bob.sk.PublicKey()
	if _, err := kf.Verify(spk, nil, bpk); !errors.Is(err, ErrDelegatingKeyNotProvided) {
		t.Fatalf("no delegating key: %v", err)
	}
	if _, err := kf.Verify(spk, apk, nil); !errors.Is(err, ErrReceivingKeyNotProvided) {
		t.Fatalf("no receiving key: %v", err)
	}
	if _, err := kf.Verify(apk, apk, bpk); !errors.Is(err, ErrVerification) {
		t.Fatalf("wrong verifying key: %v", err)
	}
	if _, err := kf.Verify(spk, bpk, bpk); !errors.Is(err, ErrVerification) {
		t.Fatalf("wrong delegating key: %v", err)
	}
	// Unsigned keys are ignored, whatever is passed.
	g2 := newGrant(t, 2, 3, false, false)
	if _, err := g2.kfrags[0].Unverify().Verify(spk, bpk, apk); err != nil {
		t.Fatalf("unsigned keys: %v", err)
	}
}

func TestDecryptReencryptedRefusals(t *testing.T) {
	g := newGrant(t, 2, 3, true, true)
	apk := g.alice.sk.PublicKey()
	cf := g.cfrags(t, 0, 1, 2)
	if _, err := DecryptReencrypted(g.bob.sk, apk, g.capsule, nil, g.ct); !errors.Is(err, ErrNoCapsuleFrags) {
		t.Fatalf("no cfrags: %v", err)
	}
	if _, err := DecryptReencrypted(g.bob.sk, apk, g.capsule, []*VerifiedCapsuleFrag{cf[0], cf[0]}, g.ct); !errors.Is(err, ErrRepeatingCapsuleFrags) {
		t.Fatalf("repeated cfrags: %v", err)
	}
	other := newGrant(t, 2, 3, true, true) // same keys, another kfrag set
	ocf := other.cfrags(t, 1)
	if _, err := DecryptReencrypted(g.bob.sk, apk, g.capsule, []*VerifiedCapsuleFrag{cf[0], ocf[0]}, g.ct); !errors.Is(err, ErrMismatchedCapsuleFrags) {
		t.Fatalf("two grants: %v", err)
	}
	mallory := newParty(t, "mallory")
	if _, err := DecryptReencrypted(mallory.sk, apk, g.capsule, cf[:2], g.ct); !errors.Is(err, ErrDecryption) {
		t.Fatalf("wrong recipient key: %v", err)
	}
	if _, err := DecryptReencrypted(g.bob.sk, mallory.sk.PublicKey(), g.capsule, cf[:2], g.ct); !errors.Is(err, ErrDecryption) {
		t.Fatalf("wrong delegating key: %v", err)
	}
	// cfrags of another capsule under the same kfrags.
	c2, ct2, err := Encrypt(apk, g.pt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptReencrypted(g.bob.sk, apk, c2, cf[:2], ct2); !errors.Is(err, ErrDecryption) {
		t.Fatalf("cfrags for another capsule: %v", err)
	}
	// A cfrag of another capsule fails its proof against this one.
	wrong := mustReencrypt(t, c2, g.kfrags[0]).Unverify()
	if _, err := wrong.Verify(g.capsule, g.signer.sk.PublicKey(), apk, g.bob.sk.PublicKey()); !errors.Is(err, ErrVerification) {
		t.Fatalf("cfrag for another capsule verified: %v", err)
	}
	tampered := bytes.Clone(g.ct)
	tampered[len(tampered)-1] ^= 1
	if _, err := DecryptReencrypted(g.bob.sk, apk, g.capsule, cf[:2], tampered); !errors.Is(err, ErrDecryption) {
		t.Fatalf("tampered ciphertext: %v", err)
	}
}

func TestGenerateKFragsBounds(t *testing.T) {
	a, b := newParty(t, "alice"), newParty(t, "bob")
	for _, tc := range []struct{ m, n int }{{0, 1}, {2, 1}, {1, 0}, {-1, 3}, {1, MaxShares + 1}} {
		if _, err := GenerateKFrags(a.sk, b.sk.PublicKey(), a.signer, tc.m, tc.n, true, true); err == nil {
			t.Fatalf("%d-of-%d accepted", tc.m, tc.n)
		}
	}
}

func TestWithRandIsDeterministic(t *testing.T) {
	a, b := newParty(t, "alice"), newParty(t, "bob")
	run := func() []byte {
		r := newDetReader("kat")
		c, ct, err := EncryptWithRand(r, a.sk.PublicKey(), []byte("pt"))
		if err != nil {
			t.Fatal(err)
		}
		kfs, err := GenerateKFragsWithRand(r, a.sk, b.sk.PublicKey(), a.signer, 2, 3, true, true)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := ReencryptWithRand(r, c, kfs[0])
		if err != nil {
			t.Fatal(err)
		}
		out := append(c.Bytes(), ct...)
		out = append(out, kfs[2].Bytes()...)
		return append(out, cf.Bytes()...)
	}
	if !bytes.Equal(run(), run()) {
		t.Fatal("WithRand twins are not deterministic")
	}
}

func TestSignatures(t *testing.T) {
	p := newParty(t, "signer")
	msg := []byte("kadre")
	sig := mustSign(t, p.signer, msg)
	if !sig.IsLowS() {
		t.Fatal("high-S signature produced")
	}
	if !sig.Verify(p.sk.PublicKey(), msg) {
		t.Fatal("signature does not verify")
	}
	if sig.Verify(p.sk.PublicKey(), []byte("kadrf")) || sig.Verify(newParty(t, "other").sk.PublicKey(), msg) {
		t.Fatal("signature verifies for the wrong message or key")
	}
	if !bytes.Equal(sig.Bytes(), mustSign(t, p.signer, msg).Bytes()) {
		t.Fatal("Sign is not deterministic")
	}
	rs, err := p.signer.SignWithRand(newDetReader("extra"), msg)
	if err != nil || !rs.Verify(p.sk.PublicKey(), msg) || bytes.Equal(rs.Bytes(), sig.Bytes()) {
		t.Fatalf("SignWithRand: %v", err)
	}
	// High-S is accepted, as by the reference.
	hi := *sig
	hi.s.Negate()
	if hi.IsLowS() || !hi.Verify(p.sk.PublicKey(), msg) {
		t.Fatal("high-S twin does not verify")
	}
	parsed, err := ParseSignature(sig.Bytes())
	if err != nil || !bytes.Equal(parsed.Bytes(), sig.Bytes()) {
		t.Fatalf("signature round trip: %v", err)
	}
}

func TestParseRefusals(t *testing.T) {
	g := newGrant(t, 2, 3, true, true)
	cf := g.cfrags(t, 0)[0]
	n := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	cases := []struct {
		name  string
		parse func([]byte) error
		b     []byte
	}{
		{"secret key zero", wrap(ParseSecretKey), make([]byte, 32)},
		{"secret key n", wrap(ParseSecretKey), n},
		{"secret key short", wrap(ParseSecretKey), make([]byte, 31)},
		{"public key identity", wrap(ParsePublicKey), []byte{0}},
		{"public key uncompressed", wrap(ParsePublicKey), append([]byte{4}, make([]byte, 64)...)},
		{"public key x not on curve", wrap(ParsePublicKey), append([]byte{2}, make([]byte, 32)...)},
		{"public key x = p", wrap(ParsePublicKey), append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...)},
		{"public key compact", wrap(ParsePublicKey), append([]byte{5}, g.alice.sk.PublicKey().Bytes()[1:]...)},
		{"signature zero r", wrap(ParseSignature), append(make([]byte, 32), n...)},
		{"signature s = n", wrap(ParseSignature), append(bytes.Repeat([]byte{1}, 32), n...)},
		{"capsule trailing byte", wrap(ParseCapsule), append(g.capsule.Bytes(), 0)},
		{"capsule truncated", wrap(ParseCapsule), g.capsule.Bytes()[:104]},
		{"capsule s = n", wrap(ParseCapsule), append(g.capsule.Bytes()[:73], n...)},
		{"kfrag trailing byte", wrap(ParseKeyFrag), append(g.kfrags[0].Bytes(), 0)},
		{"kfrag other U", wrap(ParseKeyFrag), replace(g.kfrags[0].Bytes(), 4, g.alice.sk.PublicKey().Bytes())},
		{"kfrag bool as int", wrap(ParseKeyFrag), replace(g.kfrags[0].Bytes(), 308, []byte{1})},
		{"cfrag trailing byte", wrap(ParseCapsuleFrag), append(cf.Bytes(), 0)},
		{"cfrag array length", wrap(ParseCapsuleFrag), replace(cf.Bytes(), 0, []byte{0x94})},
		{"cfrag bin16 header", wrap(ParseCapsuleFrag), append([]byte{0x95, 0xc5, 0, 33}, cf.Bytes()[3:]...)},
		{"empty", wrap(ParseCapsule), nil},
	}
	for _, tc := range cases {
		if err := tc.parse(tc.b); !errors.Is(err, ErrInvalidEncoding) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func wrap[T any](f func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error { _, err := f(b); return err }
}

func replace(b []byte, at int, with []byte) []byte {
	out := bytes.Clone(b)
	copy(out[at:], with)
	return out
}

func TestKeyring(t *testing.T) {
	seed := bytes.Repeat([]byte{1}, 32)
	k1, err := NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := NewKeyring(seed)
	if !k1.DelegatingKey("/home").Equal(k2.DelegatingKey("/home")) {
		t.Fatal("path keys are not deterministic")
	}
	keys := []*SecretKey{k1.Identity(), k1.Receiving(), k1.KFragSigner().sk,
		k1.DelegatingKey("/"), k1.DelegatingKey("/home"), k1.DelegatingKey("/home/ubuntu")}
	for i := range keys {
		for j := range keys[:i] {
			if keys[i].Equal(keys[j]) {
				t.Fatalf("keys %d and %d coincide", i, j)
			}
		}
	}
	if _, err := NewKeyring(seed[:31]); err == nil {
		t.Fatal("31-byte seed accepted")
	}
}

// Batch signing gives exactly the signatures of one-by-one signing.
func TestSignDigestsMatchesSign(t *testing.T) {
	p := newParty(t, "signer")
	var digests [][32]byte
	for i := 0; i < 9; i++ {
		digests = append(digests, sha256.Sum256([]byte{byte(i)}))
	}
	batch := p.signer.signDigests(digests)
	for i := range digests {
		one := p.signer.signDigest(&digests[i], nil)
		if !bytes.Equal(batch[i].Bytes(), one.Bytes()) {
			t.Fatalf("signature %d differs", i)
		}
	}
	if got := p.signer.signDigests(nil); len(got) != 0 {
		t.Fatal("signatures of nothing")
	}
}

func TestDiffieHellman(t *testing.T) {
	a, b, c := GenerateSecretKey(), GenerateSecretKey(), GenerateSecretKey()
	ab, err1 := a.DiffieHellman(b.PublicKey())
	ba, err2 := b.DiffieHellman(a.PublicKey())
	ac, err3 := a.DiffieHellman(c.PublicKey())
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if ab != ba {
		t.Fatal("a·B differs from b·A")
	}
	if ab == ac {
		t.Fatal("a·B equals a·C")
	}
	// Against decred's independent arithmetic: (a·b)·G.
	var ka, kb, kab secp256k1.ModNScalar
	ka.SetByteSlice(a.Bytes())
	kb.SetByteSlice(b.Bytes())
	kab.Mul2(&ka, &kb)
	want := secp256k1.NewPrivateKey(&kab).PubKey().SerializeCompressed()
	if !bytes.Equal(ab[:], want) {
		t.Fatalf("a·B = %x, decred says %x", ab, want)
	}
	if _, err := a.DiffieHellman(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil public key: %v", err)
	}
	if _, err := (&SecretKey{}).DiffieHellman(b.PublicKey()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zero secret key: %v", err)
	}
}
