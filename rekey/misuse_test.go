package rekey

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// badValues are the receivers and arguments a careless caller can pass:
// all nil pointers, or pointers to zero values.
type badValues struct {
	sk     *SecretKey
	pk     *PublicKey
	sig    *Signature
	signer *Signer
	f      *SecretKeyFactory
	k      *Keyring
	c      *Capsule
	kf     *KeyFrag
	vk     *VerifiedKeyFrag
	cf     *CapsuleFrag
	vc     *VerifiedCapsuleFrag
}

// misuseCase is one call with one bad value. For a call with an error
// result, wantErr is the sentinel and want a word the message must
// contain; for one without, wantErr is nil and call returns what differs
// from the documented answer.
type misuseCase struct {
	method  string // "Type.Method" or "Function"
	wantErr error
	want    string
	call    func() error
}

// answer turns a check of a documented answer into a misuseCase call.
func answer(ok bool, got any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("undocumented answer %#v", got)
}

// nilBytes checks that Bytes gave nil and that the parser refuses it.
func nilBytes[T any](b []byte, parse func([]byte) (T, error)) error {
	if b != nil {
		return fmt.Errorf("Bytes = %x, want nil", b)
	}
	if _, err := parse(b); !errors.Is(err, ErrInvalidEncoding) {
		return fmt.Errorf("parser accepted Bytes of an invalid value: %v", err)
	}
	return nil
}

func misuseCases(t *testing.T, b badValues) []misuseCase {
	g := newGrant(t, 2, 3, true, true)
	sk, pk := g.alice.sk, g.alice.sk.PublicKey()
	bsk, bpk := g.bob.sk, g.bob.sk.PublicKey()
	signer, spk := g.signer.signer, g.signer.sk.PublicKey()
	c, ct := g.capsule, g.ct
	vk := g.kfrags[0]
	kf := vk.Unverify()
	vcs := g.cfrags(t, 0, 1)
	vc := vcs[0]
	cf := vc.Unverify()
	sig := mustSign(t, signer, []byte("msg"))
	rnd := newDetReader("misuse")
	f, err := NewSecretKeyFactory(make([]byte, SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	var zeroID [32]byte
	inv := ErrInvalidArgument
	e := func(err error) func() error { return func() error { return err } }
	e2 := func(_ any, err error) error { return err }
	e3 := func(_, _ any, err error) error { return err }

	return []misuseCase{
		// Functions.
		{"GenerateSecretKeyWithRand", inv, "io.Reader", func() error { return e2(GenerateSecretKeyWithRand(nil)) }},
		{"NewSigner", nil, "", func() error { s := NewSigner(b.sk); return answer(s == nil, s) }},
		{"Encrypt", inv, "public key", func() error { return e3(Encrypt(b.pk, []byte("pt"))) }},
		{"EncryptWithRand", inv, "public key", func() error { return e3(EncryptWithRand(rnd, b.pk, []byte("pt"))) }},
		{"EncryptWithRand", inv, "io.Reader", func() error { return e3(EncryptWithRand(nil, pk, []byte("pt"))) }},
		{"DecryptOriginal", inv, "secret key", func() error { return e2(DecryptOriginal(b.sk, c, ct)) }},
		{"DecryptOriginal", inv, "capsule", func() error { return e2(DecryptOriginal(sk, b.c, ct)) }},
		{"GenerateKFrags", inv, "delegating secret key", func() error { return e2(GenerateKFrags(b.sk, bpk, signer, 2, 3, true, true)) }},
		{"GenerateKFrags", inv, "receiving key", func() error { return e2(GenerateKFrags(sk, b.pk, signer, 2, 3, true, true)) }},
		{"GenerateKFrags", inv, "signer", func() error { return e2(GenerateKFrags(sk, bpk, b.signer, 2, 3, true, true)) }},
		{"GenerateKFrags", inv, "threshold", func() error { return e2(GenerateKFrags(sk, bpk, signer, 0, 3, true, true)) }},
		{"GenerateKFragsWithRand", inv, "io.Reader", func() error { return e2(GenerateKFragsWithRand(nil, sk, bpk, signer, 2, 3, true, true)) }},
		{"GenerateKFragsWithRand", inv, "signer", func() error { return e2(GenerateKFragsWithRand(rnd, sk, bpk, b.signer, 2, 3, true, true)) }},
		{"Reencrypt", inv, "capsule", func() error { return e2(Reencrypt(b.c, vk)) }},
		{"Reencrypt", inv, "kfrag", func() error { return e2(Reencrypt(c, b.vk)) }},
		{"ReencryptWithRand", inv, "io.Reader", func() error { return e2(ReencryptWithRand(nil, c, vk)) }},
		{"ReencryptWithRand", inv, "capsule", func() error { return e2(ReencryptWithRand(rnd, b.c, vk)) }},
		{"ReencryptWithRand", inv, "kfrag", func() error { return e2(ReencryptWithRand(rnd, c, b.vk)) }},
		{"DecryptReencrypted", inv, "receiving secret key", func() error { return e2(DecryptReencrypted(b.sk, pk, c, vcs, ct)) }},
		{"DecryptReencrypted", inv, "delegating key", func() error { return e2(DecryptReencrypted(bsk, b.pk, c, vcs, ct)) }},
		{"DecryptReencrypted", inv, "capsule", func() error { return e2(DecryptReencrypted(bsk, pk, b.c, vcs, ct)) }},
		{"DecryptReencrypted", inv, "cfrag 1", func() error {
			return e2(DecryptReencrypted(bsk, pk, c, []*VerifiedCapsuleFrag{vcs[0], b.vc}, ct))
		}},

		// SecretKey.
		{"SecretKey.Bytes", nil, "", func() error { return nilBytes(b.sk.Bytes(), ParseSecretKey) }},
		{"SecretKey.PublicKey", nil, "", func() error { p := b.sk.PublicKey(); return answer(p == nil, p) }},
		{"SecretKey.Equal", nil, "", func() error {
			return answer(!b.sk.Equal(sk) && !sk.Equal(b.sk) && !b.sk.Equal(b.sk), "true")
		}},
		{"SecretKey.DiffieHellman", inv, "secret key", func() error { return e2(b.sk.DiffieHellman(pk)) }},
		{"SecretKey.DiffieHellman", inv, "public key", func() error { return e2(sk.DiffieHellman(b.pk)) }},

		// PublicKey.
		{"PublicKey.Bytes", nil, "", func() error { return nilBytes(b.pk.Bytes(), ParsePublicKey) }},
		{"PublicKey.Equal", nil, "", func() error {
			return answer(!b.pk.Equal(pk) && !pk.Equal(b.pk) && !b.pk.Equal(b.pk), "true")
		}},
		{"PublicKey.String", nil, "", func() error { s := b.pk.String(); return answer(s == "<nil>", s) }},

		// Signature.
		{"Signature.Bytes", nil, "", func() error { return nilBytes(b.sig.Bytes(), ParseSignature) }},
		{"Signature.IsLowS", nil, "", func() error { return answer(!b.sig.IsLowS(), true) }},
		{"Signature.Equal", nil, "", func() error {
			return answer(!b.sig.Equal(sig) && !sig.Equal(b.sig) && !b.sig.Equal(b.sig), "true")
		}},
		{"Signature.Verify", nil, "", func() error {
			return answer(!b.sig.Verify(spk, []byte("msg")) && !sig.Verify(b.pk, []byte("msg")), true)
		}},

		// Signer.
		{"Signer.VerifyingKey", nil, "", func() error { p := b.signer.VerifyingKey(); return answer(p == nil, p) }},
		{"Signer.Sign", inv, "signer", func() error { return e2(b.signer.Sign([]byte("msg"))) }},
		{"Signer.SignWithRand", inv, "signer", func() error { return e2(b.signer.SignWithRand(rnd, []byte("msg"))) }},
		{"Signer.SignWithRand", inv, "io.Reader", func() error { return e2(signer.SignWithRand(nil, []byte("msg"))) }},

		// SecretKeyFactory.
		{"SecretKeyFactory.MakeKey", nil, "", func() error { k := b.f.MakeKey([]byte("l")); return answer(k == nil, k) }},
		{"SecretKeyFactory.MakeSecret", nil, "", func() error { s := b.f.MakeSecret([]byte("l")); return answer(s == nil, s) }},
		{"SecretKeyFactory.MakeFactory", nil, "", func() error {
			sub := b.f.MakeFactory([]byte("l"))
			// The all-zero seed is a seed; the zero factory is not.
			return answer(sub == nil && f.MakeKey([]byte("l")) != nil, sub)
		}},

		// Keyring.
		{"Keyring.Identity", nil, "", func() error { k := b.k.Identity(); return answer(k == nil, k) }},
		{"Keyring.Receiving", nil, "", func() error { k := b.k.Receiving(); return answer(k == nil, k) }},
		{"Keyring.KFragSigner", nil, "", func() error { s := b.k.KFragSigner(); return answer(s == nil, s) }},
		{"Keyring.DelegatingKey", nil, "", func() error { k := b.k.DelegatingKey("/"); return answer(k == nil, k) }},

		// Capsule.
		{"Capsule.Bytes", nil, "", func() error { return nilBytes(b.c.Bytes(), ParseCapsule) }},
		{"Capsule.Equal", nil, "", func() error { return answer(!b.c.Equal(c) && !c.Equal(b.c) && !b.c.Equal(b.c), "true") }},

		// KeyFrag.
		{"KeyFrag.Bytes", nil, "", func() error { return nilBytes(b.kf.Bytes(), ParseKeyFrag) }},
		{"KeyFrag.ID", nil, "", func() error { id := b.kf.ID(); return answer(id == zeroID, id) }},
		{"KeyFrag.DelegatingKeySigned", nil, "", func() error { return answer(!b.kf.DelegatingKeySigned(), true) }},
		{"KeyFrag.ReceivingKeySigned", nil, "", func() error { return answer(!b.kf.ReceivingKeySigned(), true) }},
		{"KeyFrag.Equal", nil, "", func() error { return answer(!b.kf.Equal(kf) && !kf.Equal(b.kf) && !b.kf.Equal(b.kf), "true") }},
		{"KeyFrag.Verify", inv, "kfrag", func() error { return e2(b.kf.Verify(spk, pk, bpk)) }},
		{"KeyFrag.Verify", inv, "verifying key", func() error { return e2(kf.Verify(b.pk, pk, bpk)) }},
		{"KeyFrag.Verify", delegatingRefusal(b.pk), "delegating key", func() error { return e2(kf.Verify(spk, b.pk, bpk)) }},
		{"KeyFrag.Verify", receivingRefusal(b.pk), "receiving key", func() error { return e2(kf.Verify(spk, pk, b.pk)) }},

		// VerifiedKeyFrag.
		{"VerifiedKeyFrag.Bytes", nil, "", func() error { return nilBytes(b.vk.Bytes(), ParseKeyFrag) }},
		{"VerifiedKeyFrag.Unverify", nil, "", func() error { k := b.vk.Unverify(); return answer(k == nil, k) }},
		{"VerifiedKeyFrag.ID", nil, "", func() error { id := b.vk.ID(); return answer(id == zeroID, id) }},
		{"VerifiedKeyFrag.DelegatingKeySigned", nil, "", func() error { return answer(!b.vk.DelegatingKeySigned(), true) }},
		{"VerifiedKeyFrag.ReceivingKeySigned", nil, "", func() error { return answer(!b.vk.ReceivingKeySigned(), true) }},
		{"VerifiedKeyFrag.Equal", nil, "", func() error { return answer(!b.vk.Equal(vk) && !vk.Equal(b.vk) && !b.vk.Equal(b.vk), "true") }},

		// CapsuleFrag.
		{"CapsuleFrag.Bytes", nil, "", func() error { return nilBytes(b.cf.Bytes(), ParseCapsuleFrag) }},
		{"CapsuleFrag.KFragID", nil, "", func() error { id := b.cf.KFragID(); return answer(id == zeroID, id) }},
		{"CapsuleFrag.Equal", nil, "", func() error { return answer(!b.cf.Equal(cf) && !cf.Equal(b.cf) && !b.cf.Equal(b.cf), "true") }},
		{"CapsuleFrag.Verify", inv, "cfrag", func() error { return e2(b.cf.Verify(c, spk, pk, bpk)) }},
		{"CapsuleFrag.Verify", inv, "capsule", func() error { return e2(cf.Verify(b.c, spk, pk, bpk)) }},
		{"CapsuleFrag.Verify", inv, "verifying key", func() error { return e2(cf.Verify(c, b.pk, pk, bpk)) }},
		{"CapsuleFrag.Verify", inv, "delegating key", func() error { return e2(cf.Verify(c, spk, b.pk, bpk)) }},
		{"CapsuleFrag.Verify", inv, "receiving key", func() error { return e2(cf.Verify(c, spk, pk, b.pk)) }},

		// VerifiedCapsuleFrag.
		{"VerifiedCapsuleFrag.Bytes", nil, "", func() error { return nilBytes(b.vc.Bytes(), ParseCapsuleFrag) }},
		{"VerifiedCapsuleFrag.Unverify", nil, "", func() error { x := b.vc.Unverify(); return answer(x == nil, x) }},
		{"VerifiedCapsuleFrag.Equal", nil, "", func() error { return answer(!b.vc.Equal(vc) && !vc.Equal(b.vc) && !b.vc.Equal(b.vc), "true") }},

		// A control that the harness can tell a wrong answer from a right
		// one: the good values answer differently.
		{"control", nil, "", e(answer(pk.Bytes() != nil && kf.DelegatingKeySigned() && sk.Equal(sk) && vc.Equal(vc), "bad control"))},
	}
}

// A kfrag that signs the delegating key and is given none says so; one
// given a zero-value key is told the key is invalid.
func delegatingRefusal(pk *PublicKey) error {
	if pk == nil {
		return ErrDelegatingKeyNotProvided
	}
	return ErrInvalidArgument
}

func receivingRefusal(pk *PublicKey) error {
	if pk == nil {
		return ErrReceivingKeyNotProvided
	}
	return ErrInvalidArgument
}

// TestNilAndZeroValues calls every exported method on nil pointers and
// zero values, and every exported function with each pointer argument nil
// or zero: nothing panics, calls with an error result fail clearly, the
// others give their documented answer.
func TestNilAndZeroValues(t *testing.T) {
	for _, bad := range []struct {
		name string
		v    badValues
	}{
		{"nil", badValues{}},
		{"zero", badValues{new(SecretKey), new(PublicKey), new(Signature), new(Signer), new(SecretKeyFactory),
			new(Keyring), new(Capsule), new(KeyFrag), new(VerifiedKeyFrag), new(CapsuleFrag), new(VerifiedCapsuleFrag)}},
	} {
		covered := map[string]bool{}
		for i, tc := range misuseCases(t, bad.v) {
			covered[tc.method] = true
			t.Run(fmt.Sprintf("%s/%d/%s", bad.name, i, tc.method), func(t *testing.T) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err := tc.call()
				switch {
				case tc.wantErr == nil && err != nil:
					t.Fatal(err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				case tc.wantErr != nil && !strings.Contains(err.Error(), tc.want):
					t.Fatalf("error %q does not name the %s", err, tc.want)
				}
			})
		}
		// Every exported method of every type has a case.
		for _, typ := range []any{(*SecretKey)(nil), (*PublicKey)(nil), (*Signature)(nil), (*Signer)(nil),
			(*SecretKeyFactory)(nil), (*Keyring)(nil), (*Capsule)(nil), (*KeyFrag)(nil), (*VerifiedKeyFrag)(nil),
			(*CapsuleFrag)(nil), (*VerifiedCapsuleFrag)(nil)} {
			rt := reflect.TypeOf(typ)
			for i := range rt.NumMethod() {
				if name := rt.Elem().Name() + "." + rt.Method(i).Name; !covered[name] {
					t.Errorf("%s: no case for %s", bad.name, name)
				}
			}
		}
	}
}

func TestEqual(t *testing.T) {
	g := newGrant(t, 2, 3, true, true)
	other := newGrant(t, 2, 3, true, true)
	spk, apk, bpk := g.signer.sk.PublicKey(), g.alice.sk.PublicKey(), g.bob.sk.PublicKey()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	sk, err := ParseSecretKey(g.alice.sk.Bytes())
	must(err)
	pk, err := ParsePublicKey(apk.Bytes())
	must(err)
	sig := mustSign(t, g.signer.signer, []byte("a"))
	sig2, err := ParseSignature(sig.Bytes())
	must(err)
	c, err := ParseCapsule(g.capsule.Bytes())
	must(err)
	kf, err := ParseKeyFrag(g.kfrags[0].Bytes())
	must(err)
	vk, err := kf.Verify(spk, apk, bpk)
	must(err)
	vcs := g.cfrags(t, 0, 1)
	cf, err := ParseCapsuleFrag(vcs[0].Bytes())
	must(err)
	vc, err := cf.Verify(g.capsule, spk, apk, bpk)
	must(err)
	// Kfrags that differ from kf only in the last byte of the secret share
	// key, or only in the receiving-key-signed flag.
	keyFlip := bytes.Clone(kf.Bytes())
	keyFlip[104] ^= 1
	otherKey, err := ParseKeyFrag(keyFlip)
	must(err)
	otherFlag, err := ParseKeyFrag(replace(kf.Bytes(), KeyFragSize-1, []byte{mpFalse}))
	must(err)

	for _, tc := range []struct {
		name          string
		same, differs bool
	}{
		{"SecretKey", g.alice.sk.Equal(sk), g.alice.sk.Equal(g.bob.sk)},
		{"PublicKey", apk.Equal(pk), apk.Equal(bpk)},
		{"Signature", sig.Equal(sig2), sig.Equal(mustSign(t, g.signer.signer, []byte("b")))},
		{"Capsule", g.capsule.Equal(c), g.capsule.Equal(other.capsule)},
		{"KeyFrag", g.kfrags[0].Unverify().Equal(kf), kf.Equal(g.kfrags[1].Unverify())},
		{"KeyFrag key", kf.Equal(kf), kf.Equal(otherKey)},
		{"KeyFrag flag", kf.Equal(kf), kf.Equal(otherFlag)},
		{"VerifiedKeyFrag", g.kfrags[0].Equal(vk), vk.Equal(g.kfrags[1])},
		{"CapsuleFrag", vcs[0].Unverify().Equal(cf), cf.Equal(vcs[1].Unverify())},
		{"VerifiedCapsuleFrag", vcs[0].Equal(vc), vc.Equal(vcs[1])},
	} {
		if !tc.same || tc.differs {
			t.Errorf("%s: Equal on equal values %v, on different values %v", tc.name, tc.same, tc.differs)
		}
	}
}

func TestKFragSignFlags(t *testing.T) {
	for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		g := newGrant(t, 1, 1, flags[0], flags[1])
		vk := g.kfrags[0]
		kf, err := ParseKeyFrag(vk.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string][2]bool{
			"VerifiedKeyFrag": {vk.DelegatingKeySigned(), vk.ReceivingKeySigned()},
			"KeyFrag":         {kf.DelegatingKeySigned(), kf.ReceivingKeySigned()},
		} {
			if got != flags {
				t.Errorf("%s generated with %v reports %v", name, flags, got)
			}
		}
	}
}
