package policy

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kadre/kadre/rekey"
)

// Valid Bech32m strings from BIP 350.
func TestBech32mVectors(t *testing.T) {
	for _, s := range []string{
		"A1LQFN3A",
		"a1lqfn3a",
		"an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
		"abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
		"split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
		"?1v759aa",
	} {
		hrp, data, err := bech32mDecode(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if got := bech32mEncode(hrp, data); got != strings.ToLower(s) {
			t.Errorf("re-encode %q = %q", s, got)
		}
	}
	for _, s := range []string{
		"M1VUXWEZ",     // checksum over the upper-case HRP
		"qyrz8wqd2c9m", // no separator
		"y1b0jsk6g",    // 'b' is not in the alphabet
		"in1muywd",     // checksum too short
		"A1LQfN3A",     // mixed case
		"a1lqfn3q",     // bad checksum
		"a12uel5l",     // Bech32 (not m) checksum
	} {
		if _, _, err := bech32mDecode(s); err == nil {
			t.Errorf("%q decoded", s)
		}
	}
}

func testIdentity(t testing.TB, seed byte) (*rekey.Keyring, Identity) {
	t.Helper()
	k, err := rekey.NewKeyring(bytes.Repeat([]byte{seed}, rekey.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k, IdentityOf(k)
}

func TestIdentityString(t *testing.T) {
	_, id := testIdentity(t, 1)
	s := id.String()
	if len(s) != IdentityStringLen || !strings.HasPrefix(s, "kadre1q") || strings.ToLower(s) != s {
		t.Fatalf("identity string %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), "  " + s + "\n"} {
		got, err := ParseIdentity(in)
		if err != nil || got != id {
			t.Fatalf("ParseIdentity(%q) = %v, %v", in, got, err)
		}
	}
	// Every single-character substitution is detected.
	for i := len("kadre1"); i < len(s); i++ {
		for _, c := range []byte("qpzry9x8gf2tvdw0s3jn54khce6mua7l") {
			if c == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := ParseIdentity(typo); !errors.Is(err, ErrInvalidIdentity) {
				t.Fatalf("typo at %d accepted: %v", i, err)
			}
		}
	}
	b, err := ParseIdentityBytes(id.Bytes())
	if err != nil || b != id {
		t.Fatalf("ParseIdentityBytes: %v", err)
	}
}

func TestParseIdentityRefusals(t *testing.T) {
	_, id := testIdentity(t, 1)
	good := id.String()
	bad := id
	bad.ReceivingKey[0] = 0x04
	notOnCurve := id
	notOnCurve.IdentityKey = offCurveKey(t)
	wrongVersion := bech32mEncode(identityHRP, convertBits8to5([]byte{1}, id.Bytes()))
	wrongHRP := bech32mEncode("kadri", convertBits8to5([]byte{0}, id.Bytes()))
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"truncated", good[:len(good)-1]},
		{"extended", good + "q"},
		{"mixed case", strings.ToUpper(good[:10]) + good[10:]},
		{"not bech32", strings.Repeat("b", IdentityStringLen)},
		{"bad checksum", good[:len(good)-1] + map[bool]string{true: "p", false: "q"}[good[len(good)-1] == 'q']},
		{"wrong hrp", wrongHRP},
		{"wrong version", wrongVersion},
		{"uncompressed prefix", bech32mEncode(identityHRP, convertBits8to5([]byte{0}, bad.Bytes()))},
		{"not on curve", bech32mEncode(identityHRP, convertBits8to5([]byte{0}, notOnCurve.Bytes()))},
		{"hex", id.IdentityKey.String() + id.ReceivingKey.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseIdentity(tc.in); !errors.Is(err, ErrInvalidIdentity) {
				t.Fatalf("ParseIdentity error = %v, want ErrInvalidIdentity", err)
			}
		})
	}
	if _, err := ParseIdentityBytes(id.Bytes()[1:]); !errors.Is(err, ErrInvalidIdentity) {
		t.Errorf("short bytes: %v", err)
	}
}

func TestConvertBitsStrict(t *testing.T) {
	// 66 bytes = 528 bits = 105 groups + 3 bits of padding; a set padding
	// bit or an extra group must be refused.
	_, id := testIdentity(t, 2)
	data := convertBits8to5(nil, id.Bytes())
	if out, ok := convertBits5to8(data); !ok || !bytes.Equal(out, id.Bytes()) {
		t.Fatal("round trip failed")
	}
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)-1] |= 1
	if _, ok := convertBits5to8(flipped); ok {
		t.Error("non-zero padding accepted")
	}
	if _, ok := convertBits5to8(append(data, 0)); ok {
		t.Error("extra padding group accepted")
	}
}

func FuzzParseIdentity(f *testing.F) {
	_, id := testIdentity(f, 1)
	f.Add(id.String())
	f.Add("kadre1")
	f.Add(strings.ToUpper(id.String()))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidIdentity) {
				t.Fatalf("error %v does not wrap ErrInvalidIdentity", err)
			}
			return
		}
		if got.String() != strings.ToLower(strings.TrimSpace(s)) {
			t.Fatalf("%q parsed but formats as %q", s, got.String())
		}
	})
}

// offCurveKey returns a 02-prefixed 33-byte string whose x is not the
// x-coordinate of a curve point.
func offCurveKey(t testing.TB) PublicKey {
	t.Helper()
	for x := byte(1); ; x++ {
		k := PublicKey{0x02}
		k[32] = x
		if _, err := ParsePublicKey(k[:]); err != nil {
			return k
		}
	}
}
