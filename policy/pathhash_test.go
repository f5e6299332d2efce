package policy

import (
	"encoding/hex"
	"errors"
	"testing"
)

func mustKey(t testing.TB, s string) PublicKey {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// Known answers computed from SPEC.md §3.2.3 by scripts/vectors/pairkey.py
// (Python's hmac and hashlib, its own secp256k1 arithmetic, none of this
// package): the owner's identity secret key is 3, the recipient's 5.
func TestPairKeyVectors(t *testing.T) {
	owner := mustKey(t, "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9")
	recipient := mustKey(t, "022f8bde4d1a07209355b4a7250a5c5128e88b84bddc619ab7cba8d569b240efe4")
	dh := [PublicKeySize]byte(mustKey(t, "02d7924d4f7d43ea965a465ae3095ff41131e5946f3c85f79e44adbcf8e27e080e"))
	k, err := pairKeyFromDH(dh, owner, recipient)
	if err != nil {
		t.Fatal(err)
	}
	points := []string{
		"cc182f8270ca9bfaf6fea24f629d59ef8ed7493dd94c32526055b2f00165e226",
		"e227f94570b05e5e31106f7c498c96be012ccfa05631c074f01619d49a8f275a",
		"01f5d90fb3c1529f440ac163c6e52ad8b7d353c8a99061c9098b87441ef7e0ae",
	}
	for j, p := range k.Points() {
		if p.String() != points[j] {
			t.Errorf("point %d: %s, want %s", j, p, points[j])
		}
	}
	for _, v := range []struct {
		prefix string
		epoch  uint32
		want   string
	}{
		{"/", 0, "24ae167662c4545981bbab69ec6100da4fc4174f0a14f10c2cbfb5eb4c43b5e5"},
		{"/home", 0, "65b16663ac9e9145afac7cfc1b2b5ccaaf738171dbcf6fcd8c48517968192cf0"},
		{"//home/ubuntu/.", 0, "137248fb11708941c90634a0ac588f6f5b8e365bdabc22170e59ace830fe8df5"},
		{"/home/ubuntu/secret.txt", 0, "d54da6ca831beee1fc49bffab42c1a33861009d386416db0d1d9efe77d126e1b"},
		{"/home", 1, "1b2a3b1a6c158b2181d5a0bca27a4eb7eff71f20b42c69eca453b2f7483f8267"},
		{"/home", 1<<32 - 1, "4dd2694ce50cfc18b0d613c6065c90c524159c8321c9cb772748b6e79d561dcd"},
		// NFD and NFC spellings have one hash, over the NFC bytes.
		{"/caf\u00e9", 0, "639e5bf03bd0eb2023620b0e5bfcd32608ee382e537220f48cfbac0ec86f6296"},
		{"/cafe\u0301", 0, "639e5bf03bd0eb2023620b0e5bfcd32608ee382e537220f48cfbac0ec86f6296"},
	} {
		if h := k.PathHash(MustNormalizePath(v.prefix), v.epoch); h.String() != v.want {
			t.Errorf("%+q epoch %d: %s, want %s", v.prefix, v.epoch, h, v.want)
		}
	}
}

// Owner and recipient derive the same pair key, and only they: another
// recipient, the swapped roles, or public keys alone give other hashes
// and points.
func TestPairKeyAgreement(t *testing.T) {
	alice, _ := testIdentity(t, 1)
	bob, _ := testIdentity(t, 2)
	carol, _ := testIdentity(t, 3)
	a, b := IdentityOf(alice).IdentityKey, IdentityOf(bob).IdentityKey
	ab, err1 := OwnerPairKey(alice, b)
	ba, err2 := RecipientPairKey(bob, a)
	ac, err3 := OwnerPairKey(alice, IdentityOf(carol).IdentityKey)
	swapped, err4 := OwnerPairKey(bob, a)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	p := MustNormalizePath("/docs")
	if ab.PathHash(p, 0) != ba.PathHash(p, 0) || ab.Points() != ba.Points() {
		t.Fatal("owner and recipient derive different pair keys")
	}
	for name, other := range map[string]*PairKey{"another recipient": ac, "swapped roles": swapped} {
		if other.PathHash(p, 0) == ab.PathHash(p, 0) || other.Points()[0] == ab.Points()[0] {
			t.Errorf("%s: same path hash or point", name)
		}
	}
	if ab.PathHash(p, 0) == ab.PathHash(p, 1) || ab.PathHash(p, 0) == ab.PathHash(MustNormalizePath("/docs/a"), 0) {
		t.Error("epoch or prefix does not change the path hash")
	}
	if ab.Owner() != a || ab.Recipient() != b || ba.Owner() != a || ba.Recipient() != b {
		t.Error("roles")
	}
	if _, err := OwnerPairKey(alice, PublicKey{}); !errors.Is(err, ErrInvalidIdentity) {
		t.Errorf("invalid recipient key: %v", err)
	}
}
