package policy

import (
	"encoding/hex"
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

// Known answers computed independently with Python's hmac and
// hashlib.sha3_256; the keys are G and 2G.
func TestPathHashVectors(t *testing.T) {
	owner := mustKey(t, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	recipient := mustKey(t, "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
	want := []string{
		"c60b3e7ff1ceca111bc9e92a278fea9af5c1fcfc423f4ad1e1bd011434469c0f",
		"f0a1157dbda288bafc24f0b489228a338f58262efc40553d4ddba94254d6477f",
		"a5213890a297cef3073cd2c146ca19d2bbcef20c467a24704784690f30278fa5",
		"13333101887e62aedd8f7722a1b28c094d7188e56c8d7a6f4799e7a6cd40713e",
	}
	got := PathHashes(owner, recipient, MustNormalizePath("//home/ubuntu/./secret.txt/"))
	if len(got) != len(want) {
		t.Fatalf("%d levels, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("level %d: %s, want %s", i, got[i], want[i])
		}
	}
	// NFD and NFC spellings have one hash, over the NFC bytes 2f 63 61 66 c3
	// a9 (SPEC.md §3.2.3). This answer comes from this package;
	// TestNormalizePathCanonicalEquivalence checks that its message is
	// those bytes.
	const cafe = "7efd513bc98186a1b7e96d7f2571e4136790344ef9ac2cfca76f44fd5b4bd2c1"
	for _, s := range []string{"/caf\u00e9", "/cafe\u0301"} {
		if h := ComputePathHash(owner, recipient, MustNormalizePath(s)); h.String() != cafe {
			t.Errorf("%+q: %s, want %s", s, h, cafe)
		}
	}
	// The hash depends on both keys and on their order.
	swapped := ComputePathHash(recipient, owner, RootPath())
	if swapped == got[0] {
		t.Error("path hash does not depend on the key order")
	}
}
