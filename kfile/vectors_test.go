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
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the current code")

const vectorsFile = "testdata/vectors.json"

// vector is one complete file. The plaintext is size bytes with byte i =
// i mod 251; the randomness of NewHeaderWithRand is ChaCha8 seeded with
// rand_seed; the owner's keyring is rekey.NewKeyring(master_seed).
type vector struct {
	Name       string `json:"name"`
	MasterSeed string `json:"master_seed"`
	RandSeed   string `json:"rand_seed"`
	Path       string `json:"path"`
	Size       int    `json:"plaintext_size"`
	DataKey    string `json:"data_key"`
	Header     string `json:"header"`
	FileSHA256 string `json:"file_sha256"`
	File       string `json:"file,omitempty"` // files up to 4 KiB only
}

func vectorPlaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// makeVector encrypts v's inputs with package kfile.
func makeVector(t *testing.T, v vector) (vector, []byte) {
	t.Helper()
	seed, _ := hex.DecodeString(v.MasterSeed)
	k, err := rekey.NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	var rs [32]byte
	hex.Decode(rs[:], []byte(v.RandSeed))
	p := policy.MustNormalizePath(v.Path)
	h, key, err := kfile.NewHeaderWithRand(rand.NewChaCha8(rs), policy.IdentityOf(k).IdentityKey, p, kfile.LevelKeys(k, p))
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

var vectorInputs = []vector{
	{Name: "root, empty file", Path: "/", Size: 0},
	{Name: "three levels, short file", Path: "/docs/report.txt", Size: 17},
	{Name: "one full final chunk", Path: "/docs/report.txt", Size: kfile.ChunkSize},
	{Name: "two chunks, one byte in the last", Path: "/home/ubuntu/data.bin", Size: kfile.ChunkSize + 1},
	{Name: "three chunks", Path: "/a/b/c/d", Size: 2*kfile.ChunkSize + 1000},
}

// The seeds are filled in here to keep the table readable: master seed
// byte i+1 × 32, randomness seed byte 0x80+i × 32.
func init() {
	for i := range vectorInputs {
		v := &vectorInputs[i]
		v.MasterSeed = hex.EncodeToString(bytes.Repeat([]byte{byte(i + 1)}, 32))
		v.RandSeed = hex.EncodeToString(bytes.Repeat([]byte{byte(0x80 + i)}, 32))
	}
}

func TestVectors(t *testing.T) {
	if *update {
		var out []vector
		for _, in := range vectorInputs {
			v, _ := makeVector(t, in)
			out = append(out, v)
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(vectorInputs) {
		t.Fatalf("%d vectors, want %d", len(vs), len(vectorInputs))
	}
	for _, want := range vs {
		t.Run(want.Name, func(t *testing.T) {
			got, file := makeVector(t, want)
			if got != want {
				t.Fatalf("kfile no longer produces the vector:\n got %+v\nwant %+v", got, want)
			}
			seed, _ := hex.DecodeString(want.MasterSeed)
			k, _ := rekey.NewKeyring(seed)
			p := policy.MustNormalizePath(want.Path)
			pt := vectorPlaintext(want.Size)
			for level, prefix := range p.Prefixes() {
				out, err := specDecrypt(file, policy.DelegatingKey(k, prefix, 0), level)
				if err != nil || !bytes.Equal(out, pt) {
					t.Fatalf("the SPEC.md §7 decryption of level %d: %v", level, err)
				}
			}
			// Every mutation is refused.
			r := prng(uint64(want.Size))
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
			key, _ := hex.DecodeString(want.DataKey)
			for _, pos := range positions {
				mod := bytes.Clone(file)
				mod[pos] ^= 1 << r.IntN(8)
				out, err := decrypt(mod, key, 0)
				if err == nil {
					t.Fatalf("flip at byte %d accepted", pos)
				}
				limit, hl := 0, len(want.Header)/2
				if pos >= hl {
					limit = (pos - hl) / kfile.EncryptedChunkSize * kfile.ChunkSize
				}
				if len(out) > limit {
					t.Fatalf("flip at byte %d: released %d bytes, more than the chunks before it", pos, len(out))
				}
			}
		})
	}
}

// specDecrypt decrypts a file with the owner's path key of one level,
// following SPEC.md §7 with primitives only (no code of package kfile).
func specDecrypt(file []byte, sk *rekey.SecretKey, level int) ([]byte, error) {
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
