package kfile_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors-v2.json from the current code")

const (
	v1VectorsFile = "testdata/vectors.json"
	v2VectorsFile = "testdata/vectors-v2.json"
)

// vector is one complete file. The plaintext is size bytes with byte i =
// i mod 251; the randomness of the header is ChaCha8 seeded with
// rand_seed; the owner's keyring is rekey.NewKeyring(master_seed). A
// version 2 vector may name a writer (keyring from writer_seed) whose
// certificate for writer_prefix the owner signed at issued_at; its level
// epochs are epochs (per prefix, absent: 0).
type vector struct {
	Name         string            `json:"name"`
	MasterSeed   string            `json:"master_seed"`
	RandSeed     string            `json:"rand_seed"`
	Path         string            `json:"path"`
	Size         int               `json:"plaintext_size"`
	Epochs       map[string]uint32 `json:"epochs,omitempty"`
	WriterSeed   string            `json:"writer_seed,omitempty"`
	WriterPrefix string            `json:"writer_prefix,omitempty"`
	IssuedAt     uint64            `json:"issued_at,omitempty"`
	DataKey      string            `json:"data_key"`
	Header       string            `json:"header"`
	FileSHA256   string            `json:"file_sha256"`
	File         string            `json:"file,omitempty"` // files up to 4 KiB only
}

func vectorPlaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func keyringOf(t testing.TB, seedHex string) *rekey.Keyring {
	t.Helper()
	seed, _ := hex.DecodeString(seedHex)
	k, err := rekey.NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randOf(seedHex string) *rand.ChaCha8 {
	var rs [32]byte
	hex.Decode(rs[:], []byte(seedHex))
	return rand.NewChaCha8(rs)
}

func (v vector) epoch(p policy.Path) uint32 { return v.Epochs[p.String()] }

// makeVectorV2 encrypts v's inputs with package kfile.
func makeVectorV2(t *testing.T, v vector) (vector, []byte) {
	t.Helper()
	k := keyringOf(t, v.MasterSeed)
	owner := policy.IdentityOf(k).IdentityKey
	p := policy.MustNormalizePath(v.Path)
	levels := kfile.OwnerLevels(k, p, v.epoch)
	author := &kfile.Author{Signer: policy.IdentitySigner(k)}
	if v.WriterSeed != "" {
		w := keyringOf(t, v.WriterSeed)
		prefix := policy.MustNormalizePath(v.WriterPrefix)
		cert := &policy.WriterCert{Writer: policy.IdentityOf(w).IdentityKey, IssuedAt: v.IssuedAt, Prefix: prefix}
		for _, l := range kfile.OwnerLevels(k, prefix, v.epoch) {
			cert.Levels = append(cert.Levels, policy.WriterLevel{Epoch: l.Epoch, DelegatingKey: policy.PublicKeyOf(l.Key)})
		}
		if err := cert.Sign(policy.IdentitySigner(k)); err != nil {
			t.Fatal(err)
		}
		var err error
		if levels, err = kfile.CertLevels(cert); err != nil {
			t.Fatal(err)
		}
		author = &kfile.Author{Signer: policy.IdentitySigner(w), Cert: cert}
	}
	h, key, err := kfile.NewHeaderWithRand(randOf(v.RandSeed), owner, p, levels, author)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	w, err := kfile.NewWriter(&file, h, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(vectorPlaintext(v.Size))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(file.Bytes())
	v.DataKey, v.Header, v.FileSHA256, v.File = hex.EncodeToString(key), hex.EncodeToString(h.Bytes()), hex.EncodeToString(sum[:]), ""
	if file.Len() <= 4096 {
		v.File = hex.EncodeToString(file.Bytes())
	}
	return v, file.Bytes()
}

var v2Inputs = []vector{
	{Name: "root, empty file", Path: "/", Size: 0},
	{Name: "three levels, short file", Path: "/docs/report.txt", Size: 17},
	{Name: "rotated epochs", Path: "/docs/2026/plan.txt", Size: 300, Epochs: map[string]uint32{"/docs": 3, "/": 1}},
	{Name: "one full final chunk", Path: "/docs/report.txt", Size: kfile.ChunkSize},
	{Name: "one full group", Path: "/home/ubuntu/data.bin", Size: kfile.GroupChunks * kfile.ChunkSize},
	{Name: "two groups, one byte in the last", Path: "/home/ubuntu/data.bin", Size: kfile.GroupChunks*kfile.ChunkSize + 1},
	{Name: "certified writer", Path: "/sensors/7/2026-12-01.csv", Size: 1000, Epochs: map[string]uint32{"/sensors": 2},
		WriterPrefix: "/sensors", IssuedAt: 1_800_000_000},
}

// The seeds are filled in here to keep the table readable: master seed
// byte i+1 × 32, randomness seed byte 0x80+i × 32, writer seed byte
// 0x40+i × 32.
func init() {
	for i := range v2Inputs {
		v := &v2Inputs[i]
		v.MasterSeed = hex.EncodeToString(bytes.Repeat([]byte{byte(i + 1)}, 32))
		v.RandSeed = hex.EncodeToString(bytes.Repeat([]byte{byte(0x80 + i)}, 32))
		if v.WriterPrefix != "" {
			v.WriterSeed = hex.EncodeToString(bytes.Repeat([]byte{byte(0x40 + i)}, 32))
		}
	}
}

func readVectors(t testing.TB, name string) []vector {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func readV1Vectors(t testing.TB) []vector { return readVectors(t, v1VectorsFile) }

// TestVectorsV2: package kfile still makes every version 2 vector; an
// implementation of SPEC.md §7 from primitives (specDecryptV2) decrypts
// each through every level and checks the writer's signatures; every bit
// flip is refused with nothing released beyond the groups before it.
func TestVectorsV2(t *testing.T) {
	if *update {
		var out []vector
		for _, in := range v2Inputs {
			v, _ := makeVectorV2(t, in)
			out = append(out, v)
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(v2VectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vs := readVectors(t, v2VectorsFile)
	if len(vs) != len(v2Inputs) {
		t.Fatalf("%d vectors, want %d", len(vs), len(v2Inputs))
	}
	for _, want := range vs {
		t.Run(want.Name, func(t *testing.T) {
			got, file := makeVectorV2(t, want)
			if !equalVectors(got, want) {
				t.Fatalf("kfile no longer produces the vector:\n got %+v\nwant %+v", got, want)
			}
			k := keyringOf(t, want.MasterSeed)
			owner := policy.IdentityOf(k).IdentityKey
			p := policy.MustNormalizePath(want.Path)
			writer := owner
			levels := p.Prefixes()
			if want.WriterSeed != "" {
				writer = policy.IdentityOf(keyringOf(t, want.WriterSeed)).IdentityKey
				levels = policy.MustNormalizePath(want.WriterPrefix).Prefixes()
			}
			pt := vectorPlaintext(want.Size)
			for level, prefix := range levels {
				sk := policy.DelegatingKey(k, prefix, want.epoch(prefix))
				out, path, w, err := specDecryptV2(file, sk, level)
				if err != nil || !bytes.Equal(out, pt) || path != want.Path || w != writer {
					t.Fatalf("the SPEC.md §7 decryption of level %d: %v (path %q, writer %s)", level, err, path, w)
				}
			}
			key, _ := hex.DecodeString(want.DataKey)
			flipAll(t, file, key, len(want.Header)/2)
		})
	}
}

func equalVectors(a, b vector) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// flipAll flips one bit at every byte of a small file (64 random ones of
// a large file) and checks that the package refuses each, releasing no
// plaintext of the group it is in or after.
func flipAll(t *testing.T, file, key []byte, hl int) {
	t.Helper()
	r := prng(uint64(len(file)))
	positions := make([]int, 0, 64)
	if len(file) <= 4096 {
		for i := range file {
			positions = append(positions, i)
		}
	} else {
		for range 64 {
			positions = append(positions, r.IntN(len(file)))
		}
	}
	h, err := kfile.ParseHeader(file[:hl])
	if err != nil {
		t.Fatal(err)
	}
	unit, per := kfile.EncryptedChunkSize, C
	if h.FormatVersion() == 2 {
		unit, per = kfile.GroupChunks*kfile.EncryptedChunkSize+kfile.GroupSigSize, G
	}
	for _, pos := range positions {
		mod := bytes.Clone(file)
		mod[pos] ^= 1 << r.IntN(8)
		out, err := decrypt(mod, key, 0)
		if err == nil {
			t.Fatalf("flip at byte %d accepted", pos)
		}
		limit := 0
		if pos >= hl {
			limit = (pos - hl) / unit * per
		}
		if len(out) > limit {
			t.Fatalf("flip at byte %d: released %d bytes, more than the groups before it", pos, len(out))
		}
	}
}

// specDecryptV2 decrypts a version 2 file with the owner's delegating key
// of one level, following SPEC.md §7 with primitives only (no code of
// package kfile), and returns the plaintext, the path and the writer.
func specDecryptV2(file []byte, sk *rekey.SecretKey, level int) ([]byte, string, policy.PublicKey, error) {
	var none policy.PublicKey
	fail := func(s string) ([]byte, string, policy.PublicKey, error) { return nil, "", none, errors.New(s) }
	if len(file) < 82 || string(file[:8]) != "KADRE\x00\r\n" || file[8] != 2 || file[9] != 1 || file[10] != 2 ||
		binary.BigEndian.Uint32(file[11:]) != 65536 || file[15] != 16 {
		return fail("fixed part")
	}
	owner, err := policy.ParsePublicKey(file[16:49])
	if err != nil {
		return fail("owner")
	}
	salt := file[49:81]
	l := int(file[81])
	if level >= l || len(file) < 82+197*l+2 {
		return fail("levels")
	}
	off := 82 + 197*level
	epoch := binary.BigEndian.Uint32(file[off:])
	capsule, err := rekey.ParseCapsule(file[off+20 : off+125])
	if err != nil {
		return fail("capsule")
	}
	// The level tag is SHA-256(label ‖ salt ‖ delegating key ‖ epoch).
	tag := sha256.Sum256(bytes.Join([][]byte{[]byte("kadre/file/v2 level\x00"), salt, sk.PublicKey().Bytes(), binary.BigEndian.AppendUint32(nil, epoch)}, nil))
	if !bytes.Equal(tag[:16], file[off+4:off+20]) {
		return fail("level tag")
	}
	dataKey, err := rekey.DecryptOriginal(sk, capsule, file[off+125:off+197])
	if err != nil {
		return nil, "", none, err
	}
	sl := int(binary.BigEndian.Uint16(file[82+197*l:]))
	hlen := 82 + 197*l + 2 + sl + 32
	if len(file) < hlen {
		return fail("short header")
	}
	macKey, _ := hkdf.Key(sha256.New, dataKey, nil, "kadre/file/v2 header", 32)
	m := hmac.New(sha256.New, macKey)
	m.Write(file[:hlen-32])
	if !hmac.Equal(m.Sum(nil), file[hlen-32:hlen]) {
		return fail("mac")
	}
	sealedKey, _ := hkdf.Key(sha256.New, dataKey, nil, "kadre/file/v2 sealed", 32)
	saead, _ := chacha20poly1305.NewX(sealedKey)
	public := file[:82+197*l+2]
	sealed, err := saead.Open(nil, make([]byte, 24), file[len(public):hlen-32], nil)
	if err != nil {
		return fail("sealed")
	}
	pl := int(binary.BigEndian.Uint16(sealed))
	path := string(sealed[2 : 2+pl])
	writer := owner
	if kind := sealed[2+pl]; kind == 2 {
		cl := int(binary.BigEndian.Uint16(sealed[3+pl:]))
		cert, err := policy.ParseWriterCert(sealed[5+pl : 5+pl+cl])
		if err != nil || policy.VerifyWriterCert(cert, owner) != nil {
			return fail("certificate")
		}
		writer = cert.Writer
	} else if kind != 1 {
		return fail("writer kind")
	}
	body := sealed[:len(sealed)-64]
	var sig policy.Signature
	copy(sig[:], sealed[len(sealed)-64:])
	if policy.Verify(writer, "kadre/file-header/v2\x00", append(bytes.Clone(public), body...), sig) != nil {
		return fail("header signature")
	}
	headerHash := sha256.Sum256(file[:hlen])
	bodyKey, _ := hkdf.Key(sha256.New, dataKey, headerHash[:], "kadre/file/v2 body", 32)
	aead, _ := chacha20poly1305.NewX(bodyKey)
	rest := file[hlen:]
	var out []byte
	nonce := func(i uint64, flag byte) []byte {
		var n [24]byte
		binary.BigEndian.PutUint64(n[15:], i)
		n[23] = flag
		return n[:]
	}
	const ecs, full = 65552, 16*65552 + 80
	for g, chunk := uint64(0), uint64(0); len(rest) > 0; g++ {
		size := min(len(rest), full)
		grp := rest[:size]
		final := size == len(rest)
		flag := byte(2)
		if final {
			flag = 3
		}
		cts, sealedSig := grp[:size-80], grp[size-80:]
		s, err := aead.Open(nil, nonce(g, flag), sealedSig, nil)
		if err != nil {
			return fail(fmt.Sprintf("signature of group %d", g))
		}
		var gsig policy.Signature
		copy(gsig[:], s)
		digest := blake3.Sum256(cts)
		msg := append(append(binary.BigEndian.AppendUint64(bytes.Clone(headerHash[:]), g), flag&1), digest[:]...)
		if policy.Verify(writer, "kadre/file-group/v2\x00", msg, gsig) != nil {
			return fail(fmt.Sprintf("group %d not signed", g))
		}
		for len(cts) > 0 {
			n := min(len(cts), ecs)
			f := byte(0)
			if final && n == len(cts) {
				f = 1
			}
			pt, err := aead.Open(nil, nonce(chunk, f), cts[:n], nil)
			if err != nil {
				return fail(fmt.Sprintf("chunk %d", chunk))
			}
			out = append(out, pt...)
			cts = cts[n:]
			chunk++
		}
		rest = rest[size:]
	}
	return out, path, writer, nil
}

// TestVectorsV1: version 1 files, which this package no longer writes,
// still decrypt. specEncryptV1 (primitives only) makes each vector's file
// from its seeds, the stored vector must match it, and both the package
// and specDecryptV1 decrypt it through every level; every bit flip is
// refused.
func TestVectorsV1(t *testing.T) {
	vs := readV1Vectors(t)
	if len(vs) != 5 {
		t.Fatalf("%d version 1 vectors, want 5", len(vs))
	}
	for _, want := range vs {
		t.Run(want.Name, func(t *testing.T) {
			k := keyringOf(t, want.MasterSeed)
			p := policy.MustNormalizePath(want.Path)
			pt := vectorPlaintext(want.Size)
			file, key := specEncryptV1(t, k, p, randOf(want.RandSeed), pt)
			sum := sha256.Sum256(file)
			if hex.EncodeToString(key) != want.DataKey || hex.EncodeToString(sum[:]) != want.FileSHA256 ||
				!bytes.HasPrefix(file, mustHex(want.Header)) || (want.File != "" && hex.EncodeToString(file) != want.File) {
				t.Fatal("the stored vector is not the version 1 encryption of its inputs")
			}
			h, err := kfile.ReadHeader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if path, clear := h.ClearPath(); !clear || path != p || h.FormatVersion() != 1 {
				t.Fatalf("version 1 header: path %s %v", path, clear)
			}
			for level, prefix := range p.Prefixes() {
				sk := policy.DelegatingKey(k, prefix, 0)
				dk, err := h.UnwrapOriginal(level, sk)
				if err != nil || !bytes.Equal(dk, key) {
					t.Fatalf("level %d: %v", level, err)
				}
				c, err := h.Open(dk)
				if err != nil || c.Signed || c.Path != p {
					t.Fatalf("Open of a version 1 header: %+v, %v", c, err)
				}
				if out, err := decrypt(file, dk, 0); err != nil || !bytes.Equal(out, pt) {
					t.Fatalf("package decryption of level %d: %v", level, err)
				}
				if out, err := specDecryptV1(file, sk, level); err != nil || !bytes.Equal(out, pt) {
					t.Fatalf("the SPEC.md §7 decryption of level %d: %v", level, err)
				}
			}
			ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), h, key)
			if err != nil {
				t.Fatal(err)
			}
			all := make([]byte, ra.Size())
			if n, err := ra.ReadAt(all, 0); n != len(pt) || (err != nil && err != io.EOF) || !bytes.Equal(all, pt) {
				t.Fatalf("ReaderAt of a version 1 file: %d, %v", n, err)
			}
			flipAll(t, file, key, h.Len())
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// specEncryptV1 writes a version 1 file (SPEC.md §7.5) from primitives:
// the data key and then every level's encapsulation from rnd, in that
// order.
func specEncryptV1(t *testing.T, k *rekey.Keyring, p policy.Path, rnd io.Reader, pt []byte) ([]byte, []byte) {
	t.Helper()
	dataKey := make([]byte, 32)
	io.ReadFull(rnd, dataKey)
	owner := policy.IdentityOf(k).IdentityKey
	h := []byte("KADRE\x00\r\n\x01\x01\x01")
	h = binary.BigEndian.AppendUint32(h, 65536)
	h = append(h, owner[:]...)
	h = binary.BigEndian.AppendUint16(h, uint16(len(p.String())))
	h = append(h, p.String()...)
	h = append(h, byte(p.Depth()+1))
	for _, prefix := range p.Prefixes() {
		c, ct, err := rekey.EncryptWithRand(rnd, policy.DelegatingKey(k, prefix, 0).PublicKey(), dataKey)
		if err != nil {
			t.Fatal(err)
		}
		h = append(append(h, c.Bytes()...), ct...)
	}
	macKey, _ := hkdf.Key(sha256.New, dataKey, nil, "kadre/file/v1 header", 32)
	m := hmac.New(sha256.New, macKey)
	m.Write(h)
	h = m.Sum(h)
	salt := sha256.Sum256(h)
	bodyKey, _ := hkdf.Key(sha256.New, dataKey, salt[:], "kadre/file/v1 body", 32)
	aead, _ := chacha20poly1305.NewX(bodyKey)
	n := max(1, (len(pt)+65535)/65536)
	for i := range n {
		var nonce [24]byte
		binary.BigEndian.PutUint64(nonce[15:], uint64(i))
		if i == n-1 {
			nonce[23] = 1
		}
		h = aead.Seal(h, nonce[:], pt[i*65536:min((i+1)*65536, len(pt))], nil)
	}
	return h, dataKey
}

// specDecryptV1 decrypts a version 1 file with the owner's path key of one
// level, following SPEC.md §7.5 with primitives only (no code of package
// kfile).
func specDecryptV1(file []byte, sk *rekey.SecretKey, level int) ([]byte, error) {
	if len(file) < 50 || string(file[:8]) != "KADRE\x00\r\n" || file[8] != 1 || file[9] != 1 || file[10] != 1 ||
		binary.BigEndian.Uint32(file[11:]) != 65536 {
		return nil, errors.New("fixed part")
	}
	p := int(binary.BigEndian.Uint16(file[48:]))
	if len(file) < 51+p {
		return nil, errors.New("short")
	}
	l := int(file[50+p])
	hlen := 83 + p + 177*l
	if level >= l || len(file) < hlen {
		return nil, errors.New("short")
	}
	off := 51 + p + 177*level
	capsule, err := rekey.ParseCapsule(file[off : off+105])
	if err != nil {
		return nil, err
	}
	dataKey, err := rekey.DecryptOriginal(sk, capsule, file[off+105:off+177])
	if err != nil {
		return nil, err
	}
	macKey, _ := hkdf.Key(sha256.New, dataKey, nil, "kadre/file/v1 header", 32)
	m := hmac.New(sha256.New, macKey)
	m.Write(file[:hlen-32])
	if !hmac.Equal(m.Sum(nil), file[hlen-32:hlen]) {
		return nil, errors.New("mac")
	}
	salt := sha256.Sum256(file[:hlen])
	bodyKey, _ := hkdf.Key(sha256.New, dataKey, salt[:], "kadre/file/v1 body", 32)
	aead, _ := chacha20poly1305.NewX(bodyKey)
	body := file[hlen:]
	n := (len(body) + 65552 - 1) / 65552
	var out []byte
	for i := range n {
		var nonce [24]byte
		binary.BigEndian.PutUint64(nonce[15:], uint64(i))
		if i == n-1 {
			nonce[23] = 1
		}
		ct := body[i*65552 : min((i+1)*65552, len(body))]
		pt, err := aead.Open(nil, nonce[:], ct, nil)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		out = append(out, pt...)
	}
	return out, nil
}
