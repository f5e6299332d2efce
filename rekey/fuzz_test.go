package rekey

import (
	"bytes"
	"testing"
)

// The parsers take bytes from the network and the disk: they must never
// panic, and whatever they accept must re-serialize to the same bytes (one
// canonical encoding per object).

func fuzzSeeds(f *testing.F) {
	v := loadVectors(f)
	g := v.Grants[3]
	for _, s := range []string{g.Capsule, g.KFrags[0], g.CFrags[0], g.DelegatingPK, g.ReceivingSK, v.Signatures[0].Signature} {
		f.Add(unhex(f, s))
	}
	f.Add([]byte{})
	f.Add([]byte{0})
}

func FuzzParseCapsule(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCapsule(b); err == nil && !bytes.Equal(c.Bytes(), b) {
			t.Fatal("capsule not canonical")
		}
	})
}

func FuzzParseKeyFrag(f *testing.F) {
	fuzzSeeds(f)
	pk := newParty(f, "fuzz").sk.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := ParseKeyFrag(b)
		if err != nil {
			return
		}
		if !bytes.Equal(kf.Bytes(), b) {
			t.Fatal("kfrag not canonical")
		}
		kf.Verify(pk, pk, pk)
	})
}

func FuzzParseCapsuleFrag(f *testing.F) {
	fuzzSeeds(f)
	v := loadVectors(f)
	c, err := ParseCapsule(unhex(f, v.Grants[3].Capsule))
	if err != nil {
		f.Fatal(err)
	}
	pk := newParty(f, "fuzz").sk.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := ParseCapsuleFrag(b)
		if err != nil {
			return
		}
		if !bytes.Equal(cf.Bytes(), b) {
			t.Fatal("cfrag not canonical")
		}
		cf.Verify(c, pk, pk, pk)
	})
}

func FuzzParsePublicKey(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if pk, err := ParsePublicKey(b); err == nil && !bytes.Equal(pk.Bytes(), b) {
			t.Fatal("public key not canonical")
		}
	})
}

func FuzzParseSecretKey(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if sk, err := ParseSecretKey(b); err == nil && !bytes.Equal(sk.Bytes(), b) {
			t.Fatal("secret key not canonical")
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	fuzzSeeds(f)
	pk := newParty(f, "fuzz").sk.PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := ParseSignature(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sig.Bytes(), b) {
			t.Fatal("signature not canonical")
		}
		sig.Verify(pk, b)
	})
}

// FuzzDecrypt feeds arbitrary ciphertexts and capsules to both decryption
// paths.
func FuzzDecrypt(f *testing.F) {
	v := loadVectors(f)
	g := v.Grants[3]
	f.Add(unhex(f, g.Capsule), unhex(f, g.Ciphertext))
	sk := mustSK(f, g.DelegatingSK)
	f.Fuzz(func(t *testing.T, cb, ct []byte) {
		c, err := ParseCapsule(cb)
		if err != nil {
			return
		}
		DecryptOriginal(sk, c, ct)
	})
}
