package kfile

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// TestStreamIsXChaCha checks that sealing with the precomputed subkey gives
// exactly XChaCha20-Poly1305 under the nonce SPEC.md §7.3 defines,
// including counters whose top byte changes the subkey.
func TestStreamIsXChaCha(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	s, err := newStream(&key)
	if err != nil {
		t.Fatal(err)
	}
	x, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 1000)
	rand.Read(pt)
	for _, i := range []uint64{0, 1, 2, 1<<56 - 1, 1 << 56, 1<<56 + 5, 0x0102030405060708, 1<<64 - 1, 3} {
		for _, final := range []bool{false, true} {
			var nonce [24]byte
			nonce[15], nonce[16], nonce[17], nonce[18] = byte(i>>56), byte(i>>48), byte(i>>40), byte(i>>32)
			nonce[19], nonce[20], nonce[21], nonce[22] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			if final {
				nonce[23] = 1
			}
			want := x.Seal(nil, nonce[:], pt, nil)
			got, err := s.seal(nil, pt, i, final)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("chunk %#x final %v: differs from XChaCha20-Poly1305", i, final)
			}
			if back, ok := s.open(nil, got, i, final); !ok || !bytes.Equal(back, pt) {
				t.Fatalf("chunk %#x final %v: open failed", i, final)
			}
			if _, ok := s.open(nil, got, i, !final); ok {
				t.Fatalf("chunk %#x opened with the other flag", i)
			}
			if _, ok := s.open(nil, got, i^1, final); ok {
				t.Fatalf("chunk %#x opened at another index", i)
			}
		}
	}
}

// TestBodyKeyBindsHeader checks the body key's binding on its own: a header
// changed and re-MACed with the right data key (what only someone holding
// the key can do) gets another body key, under which the original body
// does not open. (Open also refuses such a header: the writer signed it.)
func TestBodyKeyBindsHeader(t *testing.T) {
	k, err := rekey.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	p := policy.MustNormalizePath("/docs/report.txt")
	levels := OwnerLevels(k, p, nil)
	h, key, err := NewHeader(policy.IdentityOf(k).IdentityKey, p, levels, &Author{Signer: policy.IdentitySigner(k)})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	w, err := NewWriter(&file, h, key)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "body")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	chunk0 := file.Bytes()[h.Len() : file.Len()-GroupSigSize]
	other := policy.IdentityOf(k).ReceivingKey
	const offOwner = len(Magic) + 3 + 4 + 1
	edits := map[string]func(b []byte){
		"owner": func(b []byte) { copy(b[offOwner:], other[:]) },
		"salt":  func(b []byte) { b[offOwner+policy.PublicKeySize] ^= 1 },
		"epoch of level 1": func(b []byte) {
			b[v2Fixed+v2LevelSize+3] ^= 1
		},
		"sealed part": func(b []byte) { b[len(b)-MACSize-1] ^= 1 },
	}
	for i := range h.Levels() {
		// Replace level i's capsule and wrapped key by a fresh wrap of the
		// same data key: both still open, the header is different.
		c, ct, err := rekey.Encrypt(levels[i].Key, key)
		if err != nil {
			t.Fatal(err)
		}
		off := v2Fixed + i*v2LevelSize + 4 + LevelTagSize
		edits["level "+string(rune('0'+i))] = func(b []byte) {
			copy(b[off:], c.Bytes())
			copy(b[off+rekey.CapsuleSize:], ct)
		}
	}
	for name, edit := range edits {
		raw := bytes.Clone(h.raw)
		edit(raw)
		n := len(raw) - MACSize
		copy(raw[n:], headerMAC(labelHeaderKey, key, raw[:n]))
		g, err := ParseHeader(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := g.VerifyKey(key); err != nil {
			t.Fatalf("%s: the re-MACed header does not verify: %v", name, err)
		}
		if _, err := g.Open(key); err == nil {
			t.Fatalf("%s: Open accepted a header its writer did not sign", name)
		}
		bk, err := g.bodyKey(key)
		if err != nil {
			t.Fatal(err)
		}
		s, err := newStream(bk)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.open(nil, chunk0, 0, true); ok {
			t.Fatalf("%s: the body opens under a changed header", name)
		}
	}
}

// TestForgedWriters makes, without NewHeader's checks, the files a
// malicious writer or reader would make, and checks that Open refuses
// each with its reason.
func TestForgedWriters(t *testing.T) {
	keyring := func(b byte) *rekey.Keyring {
		k, err := rekey.NewKeyring(bytes.Repeat([]byte{b}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	alice, dave, mallory := keyring(1), keyring(2), keyring(3)
	owner := policy.IdentityOf(alice).IdentityKey
	docs := policy.MustNormalizePath("/docs")
	cert := func(signer *rekey.Keyring, writer *rekey.Keyring, prefix policy.Path) *policy.WriterCert {
		c := &policy.WriterCert{Writer: policy.IdentityOf(writer).IdentityKey, IssuedAt: 1_800_000_000, Prefix: prefix}
		for _, l := range OwnerLevels(alice, prefix, nil) {
			c.Levels = append(c.Levels, policy.WriterLevel{Epoch: l.Epoch, DelegatingKey: policy.PublicKeyOf(l.Key)})
		}
		if err := c.Sign(policy.IdentitySigner(signer)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	daveCert := cert(alice, dave, docs)
	daveLevels, _ := CertLevels(daveCert)
	path := policy.MustNormalizePath("/docs/x.txt")
	cases := []struct {
		name   string
		path   policy.Path
		levels []Level
		a      *Author
		want   error
	}{
		{"honest writer", path, daveLevels, &Author{Signer: policy.IdentitySigner(dave), Cert: daveCert}, nil},
		{"someone signs with another writer's certificate", path, daveLevels, &Author{Signer: policy.IdentitySigner(mallory), Cert: daveCert}, ErrBadSignature},
		{"a certificate the writer signed himself", path, daveLevels, &Author{Signer: policy.IdentitySigner(dave), Cert: cert(dave, dave, docs)}, ErrNotAuthorized},
		{"a path outside the certificate's prefix", policy.MustNormalizePath("/hr/pay.txt"), daveLevels, &Author{Signer: policy.IdentitySigner(dave), Cert: daveCert}, ErrNotAuthorized},
		{"levels to keys other than the certificate's", path, OwnerLevels(mallory, docs, nil), &Author{Signer: policy.IdentitySigner(dave), Cert: daveCert}, ErrNotAuthorized},
		{"levels at another epoch", path, []Level{{Epoch: 7, Key: daveLevels[0].Key}, daveLevels[1]}, &Author{Signer: policy.IdentitySigner(dave), Cert: daveCert}, ErrNotAuthorized},
		{"someone writes as the owner", path, OwnerLevels(alice, path, nil), &Author{Signer: policy.IdentitySigner(mallory)}, ErrBadSignature},
		{"the owner's kind with too few levels", path, daveLevels, &Author{Signer: policy.IdentitySigner(alice)}, ErrMalformedHeader},
	}
	for _, c := range cases {
		h, key, err := buildHeader(rand.Reader, owner, c.path, c.levels, c.a)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		parsed, err := ParseHeader(h.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := parsed.Open(key)
		if c.want == nil {
			if err != nil || got.Writer != policy.IdentityOf(dave).IdentityKey || got.Cert == nil {
				t.Fatalf("%s: %+v, %v", c.name, got, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, err := NewReader(bytes.NewReader(nil), parsed, key); !errors.Is(err, c.want) {
			t.Fatalf("%s: NewReader: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestGroupHash checks groupHash against blake3.Sum256 at every shape of
// the tree it builds: empty, within one chunk, one batch of 16 chunks and
// its edges, many batches with and without a partial last one, the size
// of a full group's chunks and of a final group's.
func TestGroupHash(t *testing.T) {
	sizes := []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3000, batch - 1, batch, batch + 1,
		2*batch - 1, 2 * batch, 2*batch + 1, 3 * batch, 3*batch + 5, 5*batch + 1024, 7*batch - 1,
		GroupChunks * EncryptedChunkSize, GroupChunks*EncryptedChunkSize - 1, 3*EncryptedChunkSize + 17, 128 * batch, 129*batch + 3}
	r := mrand.New(mrand.NewPCG(7, 7))
	for range 40 {
		sizes = append(sizes, r.IntN(70*batch))
	}
	buf := make([]byte, 129*batch+3)
	rand.Read(buf)
	for _, n := range sizes {
		if got, want := groupHash(buf[:n]), blake3.Sum256(buf[:n]); got != want {
			t.Fatalf("%d bytes: groupHash %x, BLAKE3 %x", n, got, want)
		}
	}
}
