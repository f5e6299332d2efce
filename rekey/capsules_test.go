package rekey

import (
	"bytes"
	"errors"
	"testing"
)

// freshCapsules encrypts n capsules and returns their encodings.
func freshCapsules(t testing.TB, n int) [][]byte {
	t.Helper()
	sk := GenerateSecretKey()
	var out [][]byte
	for range n {
		c, _, err := Encrypt(sk.PublicKey(), []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Bytes())
	}
	return out
}

// forge keeps a capsule's encoding valid and breaks its self-check: E and
// V of one capsule with s of another.
func forge(a, b []byte) []byte {
	f := bytes.Clone(a)
	copy(f[len(f)-32:], b[len(b)-32:])
	return f
}

// ParseCapsules answers exactly what ParseCapsule answers for each
// capsule, whether the batch is valid or not: a forged capsule anywhere in
// a batch is found, and only it.
func TestParseCapsules(t *testing.T) {
	good := freshCapsules(t, 40)
	caps, errs := ParseCapsules(good)
	for i := range good {
		if errs[i] != nil || !bytes.Equal(caps[i].Bytes(), good[i]) {
			t.Fatalf("valid capsule %d: %v", i, errs[i])
		}
	}
	for _, bad := range [][]int{{0}, {39}, {7, 8, 30}, {5}} {
		batch := make([][]byte, len(good))
		copy(batch, good)
		want := map[int]bool{}
		for _, i := range bad {
			batch[i] = forge(good[i], good[(i+1)%len(good)])
			want[i] = true
			if _, err := ParseCapsule(batch[i]); !errors.Is(err, ErrInvalidEncoding) {
				t.Fatalf("the forged capsule parses alone: %v", err)
			}
		}
		batch[20] = []byte("not a capsule")
		caps, errs := ParseCapsules(batch)
		for i := range batch {
			switch {
			case i == 20 || want[i]:
				if !errors.Is(errs[i], ErrInvalidEncoding) || caps[i] != nil {
					t.Fatalf("bad capsule %d accepted in a batch", i)
				}
			case errs[i] != nil || !bytes.Equal(caps[i].Bytes(), good[i]):
				t.Fatalf("good capsule %d refused in a batch with bad ones: %v", i, errs[i])
			}
		}
	}
	// One, none, and a forged pair whose errors would cancel in a sum
	// without random coefficients: s1 + s2 swapped between two capsules of
	// the same E and V halves is still two forgeries.
	if caps, errs := ParseCapsules(good[:1]); errs[0] != nil || caps[0] == nil {
		t.Fatal("a batch of one")
	}
	if caps, errs := ParseCapsules(nil); len(caps) != 0 || len(errs) != 0 {
		t.Fatal("an empty batch")
	}
	a, b := good[0], good[1]
	swapped := [][]byte{forge(a, b), forge(b, a)}
	if _, errs := ParseCapsules(swapped); errs[0] == nil || errs[1] == nil {
		t.Fatal("two capsules with their s swapped pass together")
	}
}

func BenchmarkParseCapsules32(b *testing.B) {
	batch := freshCapsules(b, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := ParseCapsules(batch); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/capsule")
}

func BenchmarkVerifyCapsules32(b *testing.B) {
	var cs []*Capsule
	for _, e := range freshCapsules(b, 32) {
		c, _ := ParseCapsule(e)
		cs = append(cs, c)
	}
	for b.Loop() {
		if !verifyCapsules(cs) {
			b.Fatal("refused")
		}
	}
}
