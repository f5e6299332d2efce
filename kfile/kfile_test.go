package kfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

const C = kfile.ChunkSize

// fixture is an owner, a header for one path and its data key.
type fixture struct {
	keyring *rekey.Keyring
	owner   policy.PublicKey
	h       *kfile.Header
	key     []byte
}

func newFixture(t testing.TB, path string, seed uint64) *fixture {
	t.Helper()
	var s [32]byte
	s[0] = byte(seed)
	k, err := rekey.NewKeyring(s[:])
	if err != nil {
		t.Fatal(err)
	}
	p := policy.MustNormalizePath(path)
	owner := policy.IdentityOf(k).IdentityKey
	h, key, err := kfile.NewHeaderWithRand(rng(seed), owner, p, kfile.OwnerLevels(k, p, nil), ownerAuthor(k))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{keyring: k, owner: owner, h: h, key: key}
}

func ownerAuthor(k *rekey.Keyring) *kfile.Author {
	return &kfile.Author{Signer: policy.IdentitySigner(k)}
}

var (
	sharedOnce sync.Once
	shared     *fixture
)

// sharedFixture is the /docs/report.txt fixture most tests use; making a
// header costs three Umbral encapsulations.
func sharedFixture(t testing.TB) *fixture {
	t.Helper()
	sharedOnce.Do(func() { shared = newFixture(t, "/docs/report.txt", 1) })
	return shared
}

func rng(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

func prng(seed uint64) *rand.Rand { return rand.New(rng(seed)) }

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng(seed + 1000).Read(b)
	return b
}

// encrypt returns the whole file for pt, written in pieces of up to step
// bytes (step 0: one Write).
func (f *fixture) encrypt(t testing.TB, pt []byte, step int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := kfile.NewWriter(&out, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if step == 0 {
		step = len(pt) + 1
	}
	for p := pt; len(p) > 0; {
		n := min(step, len(p))
		if k, err := w.Write(p[:n]); err != nil || k != n {
			t.Fatalf("Write = %d, %v", k, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// decrypt reads a whole file through ReadHeader and NewReader, reading
// with Read into a buffer of bufSize bytes (0: through WriteTo).
func decrypt(file, key []byte, bufSize int) ([]byte, error) {
	r := bytes.NewReader(file)
	h, err := kfile.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	br, err := kfile.NewReader(r, h, key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if bufSize == 0 {
		_, err = br.WriteTo(&out)
		return out.Bytes(), err
	}
	buf := make([]byte, bufSize)
	for {
		n, err := br.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// G is the plaintext of a full signed group.
const G = kfile.GroupChunks * C

// checkReleased fails unless out, the plaintext released before an error,
// is a whole number of signed groups of want: nothing unauthenticated and
// nothing out of place.
func checkReleased(t *testing.T, what string, out, want []byte) {
	t.Helper()
	if len(out)%G != 0 || len(out) > len(want) || !bytes.Equal(out, want[:len(out)]) {
		t.Errorf("%s: released %d bytes that are not an authenticated prefix", what, len(out))
	}
}

var sizes = []int{0, 1, 15, 16, 17, C - 1, C, C + 1, 2*C - 1, 2 * C, 2*C + 1, G - 1, G, G + 1, 3<<20 + 123}

func TestRoundTrip(t *testing.T) {
	f := sharedFixture(t)
	r := prng(7)
	all := append([]int(nil), sizes...)
	for range 4 {
		all = append(all, r.IntN(5*C))
	}
	for _, n := range all {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			pt := randomBytes(n, uint64(n))
			file := f.encrypt(t, pt, 0)
			if want, err := f.h.FileSize(int64(n)); err != nil || int64(len(file)) != want {
				t.Fatalf("file of %d bytes, FileSize = %d, %v", len(file), want, err)
			}
			if got, err := f.h.PlaintextSize(int64(len(file))); err != nil || got != int64(n) {
				t.Fatalf("PlaintextSize = %d, %v", got, err)
			}
			// Every way of writing gives the same bytes: the encoding is
			// canonical and the body deterministic given header and key.
			for _, step := range []int{1 + r.IntN(1000), C, C + 1} {
				if n > 200000 && step < 1000 {
					continue
				}
				if got := f.encrypt(t, pt, step); !bytes.Equal(got, file) {
					t.Fatalf("writing in steps of %d gives other bytes", step)
				}
			}
			var viaReadFrom bytes.Buffer
			w, err := kfile.NewWriter(&viaReadFrom, f.h, f.key)
			if err != nil {
				t.Fatal(err)
			}
			src := iotest.HalfReader(bytes.NewReader(pt)) // no WriterTo: io.Copy uses ReadFrom
			if k, err := io.Copy(w, src); err != nil || k != int64(n) {
				t.Fatalf("io.Copy = %d, %v", k, err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(viaReadFrom.Bytes(), file) {
				t.Fatal("ReadFrom gives other bytes")
			}

			for _, bufSize := range []int{0, 1 + r.IntN(100), C, 3 * C} {
				if n > 200000 && bufSize > 0 && bufSize < 1000 {
					continue
				}
				got, err := decrypt(file, f.key, bufSize)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("decrypt(buf %d) = %d bytes, %v", bufSize, len(got), err)
				}
			}
			ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, f.key)
			if err != nil {
				t.Fatal(err)
			}
			if ra.Size() != int64(n) {
				t.Fatalf("Size = %d", ra.Size())
			}
			got := make([]byte, n)
			if k, err := ra.ReadAt(got, 0); k != n || (err != nil && err != io.EOF) || !bytes.Equal(got, pt) {
				t.Fatalf("ReadAt = %d, %v", k, err)
			}
		})
	}
}

func TestIOContracts(t *testing.T) {
	f := sharedFixture(t)
	pt := randomBytes(2*C+500, 3)
	file := f.encrypt(t, pt, 0)
	r := bytes.NewReader(file)
	h, err := kfile.ReadHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	br, err := kfile.NewReader(iotest.OneByteReader(r), h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(br, pt); err != nil {
		t.Error(err)
	}
	// Data returned together with io.EOF.
	r = bytes.NewReader(file)
	if _, err := kfile.ReadHeader(r); err != nil {
		t.Fatal(err)
	}
	br, err = kfile.NewReader(iotest.DataErrReader(r), h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(br); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("DataErrReader: %v", err)
	}
	// A ReaderAt that reports io.EOF with the last full read, as the
	// io.ReaderAt contract allows.
	ra, err := kfile.NewReaderAt(eofReaderAt{bytes.NewReader(file)}, int64(len(file)), f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(io.NewSectionReader(ra, 0, ra.Size()), pt); err != nil {
		t.Error(err)
	}
}

type eofReaderAt struct{ r *bytes.Reader }

func (e eofReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.r.ReadAt(p, off)
	if err == nil && off+int64(n) == e.r.Size() {
		err = io.EOF
	}
	return n, err
}

func TestReadHeaderReadsExactlyTheHeader(t *testing.T) {
	f := sharedFixture(t)
	file := f.encrypt(t, []byte("hello"), 0)
	r := bytes.NewReader(file)
	h, err := kfile.ReadHeader(iotest.OneByteReader(r))
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != len(file)-h.Len() {
		t.Fatalf("ReadHeader left %d bytes, want %d", r.Len(), len(file)-h.Len())
	}
	if !bytes.Equal(h.Bytes(), f.h.Bytes()) || !bytes.Equal(file[:h.Len()], h.Bytes()) {
		t.Fatal("header bytes differ")
	}
	if _, err := kfile.ParseHeader(file); !errors.Is(err, kfile.ErrMalformedHeader) {
		t.Fatalf("ParseHeader(header ‖ body) = %v, want ErrMalformedHeader", err)
	}
	if h.Len() != 82+3*197+2+144+32 || h.Len() != 851 {
		t.Fatalf("header of %d bytes, SPEC.md §7.1 says 851", h.Len())
	}
	if _, clear := h.ClearPath(); h.Owner() != f.owner || clear || h.FormatVersion() != 2 || h.Levels() != 3 || len(h.Capsules()) != 3 {
		t.Fatal("accessors disagree")
	}
	if bytes.Contains(file, []byte("report")) || bytes.Contains(file, []byte("docs")) {
		t.Fatal("the path is in the file in clear")
	}
	c, err := h.Open(f.key)
	if err != nil || c.Path.String() != "/docs/report.txt" || c.Writer != f.owner || !c.ByOwner(f.owner) || c.Cert != nil {
		t.Fatalf("Open = %+v, %v", c, err)
	}
	for i, l := range kfile.OwnerLevels(f.keyring, c.Path, nil) {
		for j := range h.Levels() {
			if h.Matches(j, policy.PublicKeyOf(l.Key)) != (i == j) {
				t.Fatalf("level %d matches the key of level %d: %v", j, i, i != j)
			}
		}
	}
	for i := range h.Levels() {
		c, wrapped, err := h.Level(i)
		if err != nil || !c.Equal(h.Capsules()[i]) || len(wrapped) != kfile.WrappedKeySize {
			t.Fatalf("Level(%d): %v", i, err)
		}
	}
	for _, i := range []int{-1, 3} {
		if _, _, err := h.Level(i); err == nil {
			t.Errorf("Level(%d) succeeded", i)
		}
		if _, err := h.UnwrapOriginal(i, f.keyring.Identity()); err == nil {
			t.Errorf("UnwrapOriginal(%d) succeeded", i)
		}
	}
}

// TestOwnerPathKeys is the owner's side with real path keys: every level
// opens with its own prefix key and with no other.
func TestOwnerPathKeys(t *testing.T) {
	f := sharedFixture(t)
	pt := []byte("quarterly figures")
	file := f.encrypt(t, pt, 0)
	h, err := kfile.ReadHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Open(f.key)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := c.Path.Prefixes()
	for i, p := range prefixes {
		key, err := h.UnwrapOriginal(i, policy.DelegatingKey(f.keyring, p, 0))
		if err != nil || !bytes.Equal(key, f.key) {
			t.Fatalf("level %d (%s): %v", i, p, err)
		}
		got, err := decrypt(file, key, 0)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("level %d: decrypt: %v", i, err)
		}
		other := policy.DelegatingKey(f.keyring, prefixes[(i+1)%len(prefixes)], 0)
		if _, err := h.UnwrapOriginal(i, other); !errors.Is(err, kfile.ErrWrongKey) {
			t.Fatalf("level %d with the key of another prefix: %v", i, err)
		}
	}
}

// TestRecipient: bob is granted /docs 2-of-3 and opens /docs/report.txt
// through level 1 with two cfrags.
func TestRecipient(t *testing.T) {
	f := sharedFixture(t)
	pt := randomBytes(C+10, 9)
	file := f.encrypt(t, pt, 0)
	bob, err := rekey.NewKeyring(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	docs := policy.DelegatingKey(f.keyring, policy.MustNormalizePath("/docs"), 0)
	kfrags, err := rekey.GenerateKFrags(docs, bob.Receiving().PublicKey(), f.keyring.KFragSigner(), 2, 3, true, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := kfile.ReadHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	capsule := h.Capsules()[1]
	var cfrags []*rekey.VerifiedCapsuleFrag
	for _, kf := range kfrags[:2] {
		served, err := rekey.Reencrypt(capsule, kf)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := served.Unverify().Verify(capsule, f.keyring.KFragSigner().VerifyingKey(), docs.PublicKey(), bob.Receiving().PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		cfrags = append(cfrags, cf)
	}
	key, err := h.UnwrapReencrypted(1, bob.Receiving(), docs.PublicKey(), cfrags)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decrypt(file, key, 0); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %v", err)
	}
	// The cfrags of level 1 do not open level 2.
	if _, err := h.UnwrapReencrypted(2, bob.Receiving(), docs.PublicKey(), cfrags); !errors.Is(err, kfile.ErrWrongKey) {
		t.Fatalf("level 2 with level 1 cfrags: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	f := sharedFixture(t)
	file := f.encrypt(t, []byte("x"), 0)
	for _, key := range [][]byte{randomBytes(32, 5), f.key[:31], nil, append(bytes.Clone(f.key), 0)} {
		if _, err := decrypt(file, key, 0); !errors.Is(err, kfile.ErrWrongKey) {
			t.Errorf("NewReader with a wrong key: %v", err)
		}
		if _, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, key); !errors.Is(err, kfile.ErrWrongKey) {
			t.Errorf("NewReaderAt with a wrong key: %v", err)
		}
		if _, err := kfile.NewWriter(io.Discard, f.h, key); !errors.Is(err, kfile.ErrWrongKey) {
			t.Errorf("NewWriter with a wrong key: %v", err)
		}
	}
	// A header for another file wrapping the same path does not take this
	// file's key.
	g := newFixture(t, "/docs/report.txt", 2)
	if err := g.h.VerifyKey(f.key); !errors.Is(err, kfile.ErrWrongKey) {
		t.Errorf("VerifyKey of another header: %v", err)
	}
}

// chunks splits a file of one group into its header, encrypted chunks
// and sealed group signature.
func chunks(h *kfile.Header, file []byte) (head []byte, cs [][]byte, sig []byte) {
	head, body := file[:h.Len()], file[h.Len():]
	body, sig = body[:len(body)-kfile.GroupSigSize], body[len(body)-kfile.GroupSigSize:]
	for len(body) > 0 {
		n := min(len(body), kfile.EncryptedChunkSize)
		cs = append(cs, body[:n])
		body = body[n:]
	}
	return head, cs, sig
}

// join makes a file of one group from a header, chunks and a signature.
func join(head, sig []byte, cs ...[]byte) []byte {
	out := bytes.Clone(head)
	for _, c := range cs {
		out = append(out, c...)
	}
	return append(out, sig...)
}

func TestTruncation(t *testing.T) {
	f := sharedFixture(t)
	pt := randomBytes(G+3*C+100, 11) // two groups, a short final chunk
	file := f.encrypt(t, pt, 0)
	hl := f.h.Len()
	ecs, gs := kfile.EncryptedChunkSize, kfile.GroupSigSize
	// Body offsets of every chunk end.
	var boundaries []int
	for k := 1; k <= kfile.GroupChunks; k++ {
		boundaries = append(boundaries, k*ecs)
	}
	for k := 1; k <= 3; k++ {
		boundaries = append(boundaries, kfile.GroupChunks*ecs+gs+k*ecs)
	}
	var cuts []int
	for i := range hl + 20 {
		cuts = append(cuts, i)
	}
	for _, b := range boundaries {
		for _, d := range []int{-17, -16, -15, -1, 0, 1, 15, 16, 17, gs} {
			cuts = append(cuts, hl+b+d)
		}
	}
	r := prng(12)
	for range 50 {
		cuts = append(cuts, hl+r.IntN(len(file)-hl))
	}
	onBoundary := func(cut int) bool {
		for _, b := range boundaries {
			if cut-hl == b {
				return true
			}
		}
		return cut-hl == kfile.GroupChunks*ecs+gs // the end of the first group
	}
	for _, cut := range cuts {
		if cut >= len(file) {
			continue
		}
		got, err := decrypt(file[:cut], f.key, 1000)
		if err == nil {
			t.Fatalf("cut at %d: no error", cut)
		}
		checkReleased(t, fmt.Sprintf("cut at %d", cut), got, pt)
		switch {
		case cut == 0:
			if !errors.Is(err, kfile.ErrNotKadreFile) {
				t.Errorf("cut at 0: %v", err)
			}
		case cut <= hl || onBoundary(cut):
			if !errors.Is(err, kfile.ErrTruncated) {
				t.Errorf("cut at %d (header, chunk or group boundary): %v, want ErrTruncated", cut, err)
			}
		default:
			if !errors.Is(err, kfile.ErrTruncated) && !errors.Is(err, kfile.ErrCorrupt) {
				t.Errorf("cut at %d: %v", cut, err)
			}
		}
		if cut >= hl {
			_, err := kfile.NewReaderAt(bytes.NewReader(file[:cut]), int64(cut), f.h, f.key)
			if !errors.Is(err, kfile.ErrTruncated) && !errors.Is(err, kfile.ErrCorrupt) {
				t.Errorf("NewReaderAt cut at %d: %v", cut, err)
			}
			if onBoundary(cut) && !errors.Is(err, kfile.ErrTruncated) {
				t.Errorf("NewReaderAt cut at boundary %d: %v", cut, err)
			}
		}
	}
}

// TestChunkSurgery rearranges whole chunks; every result must fail and
// release only the authentic prefix.
func TestChunkSurgery(t *testing.T) {
	f := sharedFixture(t)
	for _, n := range []int{3*C + 100, 4 * C} { // short and full final chunk
		pt := randomBytes(n, uint64(n))
		head, c, sig := chunks(f.h, f.encrypt(t, pt, 0))
		other := newFixture(t, "/docs/report.txt", 3)
		_, oc, osig := chunks(other.h, other.encrypt(t, pt, 0))
		last := c[len(c)-1]
		cases := map[string][]byte{
			"swap 0 1":                  join(head, sig, c[1], c[0], c[2], c[3]),
			"swap 1 2":                  join(head, sig, c[0], c[2], c[1], c[3]),
			"duplicate 1":               join(head, sig, c[0], c[1], c[1], c[2], c[3]),
			"duplicate final":           join(head, sig, c[0], c[1], c[2], c[3], last),
			"delete 0":                  join(head, sig, c[1], c[2], c[3]),
			"delete 1":                  join(head, sig, c[0], c[2], c[3]),
			"delete final":              join(head, sig, c[0], c[1], c[2]),
			"delete the signature":      join(head, nil, c...),
			"final moved first":         join(head, sig, last, c[0], c[1], c[2]),
			"body of another file":      join(head, osig, oc...),
			"chunk of another file":     join(head, sig, c[0], oc[1], c[2], c[3]),
			"signature of another file": join(head, osig, c...),
			"trailing byte":             append(join(head, sig, c...), 0),
			"trailing tag":              append(join(head, sig, c...), make([]byte, 16)...),
			"trailing chunk":            append(join(head, sig, c...), c[0]...),
			"trailing group":            append(join(head, sig, c...), join(nil, sig, c...)...),
			"only header":               head,
		}
		for name, file := range cases {
			got, err := decrypt(file, f.key, 0)
			if err == nil {
				t.Errorf("%d/%s: no error", n, name)
				continue
			}
			if !errors.Is(err, kfile.ErrCorrupt) && !errors.Is(err, kfile.ErrTruncated) {
				t.Errorf("%d/%s: %v", n, name, err)
			}
			checkReleased(t, name, got, pt)
			if ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, f.key); err == nil {
				buf := make([]byte, ra.Size())
				if _, err := ra.ReadAt(buf, 0); err == nil {
					t.Errorf("%d/%s: ReaderAt read everything", n, name)
				}
			}
		}
		// The diagnosis names what happened where it can.
		for _, name := range []string{"delete final", "delete the signature"} {
			if _, err := decrypt(cases[name], f.key, 0); !errors.Is(err, kfile.ErrTruncated) {
				t.Errorf("%d/%s: %v, want ErrTruncated", n, name, err)
			}
		}
		if _, err := decrypt(cases["trailing chunk"], f.key, 0); !errors.Is(err, kfile.ErrCorrupt) {
			t.Errorf("%d/trailing chunk: %v", n, err)
		}
	}
}

func TestBodyBitFlips(t *testing.T) {
	f := sharedFixture(t)
	for _, n := range []int{0, 100, 2*C + 7, G + 5} {
		pt := randomBytes(n, uint64(n)+50)
		file := f.encrypt(t, pt, 0)
		hl := f.h.Len()
		var bits []int
		if len(file)-hl <= 200 {
			for i := range (len(file) - hl) * 8 {
				bits = append(bits, hl*8+i)
			}
		} else {
			r := prng(13)
			for k := range 3 { // first and last bytes of some chunks, the first group's signature, random ones
				b := hl + k*kfile.EncryptedChunkSize
				bits = append(bits, b*8, b*8+7, min(b+kfile.EncryptedChunkSize, len(file))*8-1)
			}
			if n > G {
				sig := hl + kfile.GroupChunks*kfile.EncryptedChunkSize
				bits = append(bits, sig*8, (sig+kfile.GroupSigSize)*8-1)
			}
			for range 40 {
				bits = append(bits, hl*8+r.IntN((len(file)-hl)*8))
			}
		}
		fullGroup := kfile.GroupChunks*kfile.EncryptedChunkSize + kfile.GroupSigSize
		for _, bit := range bits {
			mod := bytes.Clone(file)
			mod[bit/8] ^= 1 << (bit % 8)
			got, err := decrypt(mod, f.key, 0)
			if !errors.Is(err, kfile.ErrCorrupt) {
				t.Fatalf("%d: flip of bit %d: %v, want ErrCorrupt", n, bit, err)
			}
			checkReleased(t, fmt.Sprintf("flip %d", bit), got, pt)
			if g := (bit/8 - hl) / fullGroup; g*G != len(got) {
				t.Fatalf("flip in group %d released %d bytes", g, len(got))
			}
		}
	}
}

// TestHeaderBitFlips flips every bit of a header. Each flip must be refused
// by the parser or by the key check; the expected sentinel depends on the
// field.
func TestHeaderBitFlips(t *testing.T) {
	f := sharedFixture(t)
	file := f.encrypt(t, []byte("payload"), 0)
	hl := f.h.Len()
	levels := 82 + f.h.Levels()*197
	fields := []struct {
		name string
		end  int // exclusive
		want []error
	}{
		{"magic", 8, []error{kfile.ErrNotKadreFile}},
		{"version", 9, []error{kfile.ErrUnsupportedVersion, kfile.ErrUnsupportedAlgorithm, kfile.ErrMalformedHeader, kfile.ErrTruncated}},
		{"pre", 10, []error{kfile.ErrUnsupportedAlgorithm}},
		{"body algorithm", 11, []error{kfile.ErrUnsupportedAlgorithm}},
		{"chunk size", 15, []error{kfile.ErrUnsupportedAlgorithm}},
		{"group", 16, []error{kfile.ErrUnsupportedAlgorithm}},
		{"owner", 49, []error{kfile.ErrMalformedHeader, kfile.ErrWrongKey}},
		{"salt", 81, []error{kfile.ErrWrongKey}},
		{"level count", 82, []error{kfile.ErrMalformedHeader, kfile.ErrTruncated}},
		{"levels", levels, []error{kfile.ErrMalformedHeader, kfile.ErrWrongKey}},
		{"sealed length", levels + 2, []error{kfile.ErrMalformedHeader, kfile.ErrTruncated, kfile.ErrWrongKey}},
		{"sealed part and mac", hl, []error{kfile.ErrWrongKey}},
	}
	start := 0
	for _, fl := range fields {
		for bit := start * 8; bit < fl.end*8; bit++ {
			mod := bytes.Clone(file)
			mod[bit/8] ^= 1 << (bit % 8)
			got, err := decrypt(mod, f.key, 0)
			if len(got) != 0 {
				t.Fatalf("%s: flip of bit %d released plaintext", fl.name, bit)
			}
			ok := false
			for _, w := range fl.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Fatalf("%s: flip of bit %d: %v, want one of %v", fl.name, bit, err, fl.want)
			}
		}
		start = fl.end
	}
}

func TestWriterClose(t *testing.T) {
	f := sharedFixture(t)
	var out bytes.Buffer
	w, err := kfile.NewWriter(&out, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	pt := randomBytes(2*C+5, 21)
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	// Without Close the file is detectably incomplete.
	unclosed := bytes.Clone(out.Bytes())
	got, err := decrypt(unclosed, f.key, 0)
	if !errors.Is(err, kfile.ErrTruncated) {
		t.Fatalf("unclosed file: %v, want ErrTruncated", err)
	}
	checkReleased(t, "unclosed", got, pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, kfile.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := w.ReadFrom(bytes.NewReader([]byte{1})); !errors.Is(err, kfile.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if got, err := decrypt(out.Bytes(), f.key, 0); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("closed file: %v", err)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestWriterErrorsAreSticky(t *testing.T) {
	f := sharedFixture(t)
	if _, err := kfile.NewWriter(&failWriter{0}, f.h, f.key); err == nil {
		t.Fatal("header write error lost")
	}
	w, err := kfile.NewWriter(&failWriter{1}, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	// The first group is written in the background: its error surfaces
	// when the next group completes.
	if _, err := w.Write(make([]byte, 2*G+1)); err == nil {
		t.Fatal("group write error lost")
	}
	if _, err := w.Write([]byte{1}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("second Write: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

type failReader struct{ err error }

func (r failReader) Read([]byte) (int, error) { return 0, r.err }

func TestReaderIOError(t *testing.T) {
	f := sharedFixture(t)
	file := f.encrypt(t, randomBytes(C+1, 1), 0)
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(file[f.h.Len():f.h.Len()+100]), failReader{boom})
	br, err := kfile.NewReader(r, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, br); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("Copy = %d, %v; want the reader's error", n, err)
	}
}

func TestReaderAt(t *testing.T) {
	f := sharedFixture(t)
	pt := randomBytes(5*C+1234, 31)
	file := f.encrypt(t, pt, 0)
	ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	r := prng(32)
	for range 500 {
		off := r.Int64N(int64(len(pt)) + 10)
		n := r.IntN(3 * C)
		if r.IntN(4) == 0 {
			n = r.IntN(100)
		}
		buf := make([]byte, n)
		k, err := ra.ReadAt(buf, off)
		wantN := max(0, min(n, len(pt)-int(off)))
		if k != wantN || !bytes.Equal(buf[:k], pt[min(off, int64(len(pt))):min(off, int64(len(pt)))+int64(k)]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
		}
		if (k < n) != (err == io.EOF) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
		}
	}
	if _, err := ra.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	// Concurrent readers see consistent data.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := prng(uint64(40 + g))
			buf := make([]byte, 5000)
			for range 50 {
				off := r.Int64N(int64(len(pt) - len(buf)))
				if _, err := ra.ReadAt(buf, off); err != nil || !bytes.Equal(buf, pt[off:off+int64(len(buf))]) {
					t.Errorf("concurrent ReadAt at %d: %v", off, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// A damaged chunk fails the reads that touch its group, and only
	// those.
	pt = randomBytes(2*G+5*C+1234, 33)
	file = f.encrypt(t, pt, 0)
	mod := bytes.Clone(file)
	fullGroup := kfile.GroupChunks*kfile.EncryptedChunkSize + kfile.GroupSigSize
	mod[f.h.Len()+fullGroup+2*kfile.EncryptedChunkSize+5] ^= 1 // chunk 2 of group 1
	ra, err = kfile.NewReaderAt(bytes.NewReader(mod), int64(len(mod)), f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	for _, off := range []int64{G + 2*C + 3, G + 3} {
		if _, err := ra.ReadAt(buf, off); !errors.Is(err, kfile.ErrCorrupt) {
			t.Fatalf("read at %d in the damaged group: %v", off, err)
		}
	}
	for _, off := range []int64{C + 3, 2*G + 3} {
		if _, err := ra.ReadAt(buf, off); err != nil || !bytes.Equal(buf, pt[off:off+10]) {
			t.Fatalf("read at %d in an intact group: %v", off, err)
		}
	}
	if k, err := ra.ReadAt(make([]byte, 2*C), G-C); !errors.Is(err, kfile.ErrCorrupt) || k != C {
		t.Fatalf("read across into the damaged group = %d, %v", k, err)
	}
}

func TestImpossibleSizes(t *testing.T) {
	f := sharedFixture(t)
	hl := int64(f.h.Len())
	ecs, gs := int64(kfile.EncryptedChunkSize), int64(kfile.GroupSigSize)
	cases := []struct {
		size int64
		want error
	}{
		{hl - 1, kfile.ErrTruncated},
		{hl, kfile.ErrTruncated},
		{hl + 15, kfile.ErrTruncated},
		{hl + 15 + gs, kfile.ErrTruncated},
		{hl + ecs + 15 + gs, kfile.ErrTruncated},
		{hl + ecs + 16 + gs, kfile.ErrCorrupt}, // an empty final chunk after a full one
	}
	for _, c := range cases {
		if _, err := f.h.PlaintextSize(c.size); !errors.Is(err, c.want) {
			t.Errorf("PlaintextSize(header+%d) = %v, want %v", c.size-hl, err, c.want)
		}
		ra := bytes.NewReader(make([]byte, max(c.size, 0)))
		if _, err := kfile.NewReaderAt(ra, c.size, f.h, f.key); !errors.Is(err, c.want) {
			t.Errorf("NewReaderAt(header+%d) = %v, want %v", c.size-hl, err, c.want)
		}
	}
	if _, err := f.h.FileSize(-1); err == nil {
		t.Error("FileSize(-1) succeeded")
	}
	if _, err := f.h.FileSize(1<<63 - 1); err == nil {
		t.Error("FileSize(MaxInt64) succeeded")
	}
	// An empty final chunk after full ones is never written.
	pt := randomBytes(C, 4)
	file := f.encrypt(t, pt, 0)
	if len(file) != int(hl+ecs+gs) {
		t.Fatalf("a %d-byte file is %d bytes, want one full final chunk and its signature", C, len(file))
	}
	// A full group that ends the file has no group after it.
	file = f.encrypt(t, randomBytes(G, 5), 0)
	if len(file) != int(hl+kfile.GroupChunks*ecs+gs) {
		t.Fatalf("a %d-byte file is %d bytes, want one full group", G, len(file))
	}
}

func TestNewHeaderErrors(t *testing.T) {
	f := sharedFixture(t)
	p := policy.MustNormalizePath("/a/b")
	levels := kfile.OwnerLevels(f.keyring, p, nil)
	me := ownerAuthor(f.keyring)
	if _, _, err := kfile.NewHeader(f.owner, p, levels[:2], me); err == nil {
		t.Error("too few levels accepted")
	}
	if _, _, err := kfile.NewHeader(f.owner, p, append(levels, levels[0]), me); err == nil {
		t.Error("too many levels accepted")
	}
	if _, _, err := kfile.NewHeader(f.owner, p, []kfile.Level{levels[0], {}, levels[2]}, me); err == nil {
		t.Error("level without a key accepted")
	}
	if _, _, err := kfile.NewHeader(policy.PublicKey{}, p, levels, me); err == nil {
		t.Error("invalid owner key accepted")
	}
	if _, _, err := kfile.NewHeader(f.owner, p, levels, nil); err == nil {
		t.Error("a file without an author accepted")
	}
	stranger, _ := rekey.NewKeyring(bytes.Repeat([]byte{9}, 32))
	if _, _, err := kfile.NewHeader(f.owner, p, levels, ownerAuthor(stranger)); err == nil {
		t.Error("someone other than the owner wrote without a certificate")
	}
	if _, _, err := kfile.NewHeaderWithRand(iotest.ErrReader(errors.New("no entropy")), f.owner, p, levels, me); err == nil {
		t.Error("randomness failure ignored")
	}
	// Deterministic twin: same randomness, same header and key.
	h1, k1, err := kfile.NewHeaderWithRand(rng(99), f.owner, p, levels, me)
	if err != nil {
		t.Fatal(err)
	}
	h2, k2, err := kfile.NewHeaderWithRand(rng(99), f.owner, p, levels, me)
	if err != nil || !bytes.Equal(h1.Bytes(), h2.Bytes()) || !bytes.Equal(k1, k2) {
		t.Fatal("NewHeaderWithRand is not deterministic")
	}
	// A parsed header cannot start a file: it has no author.
	parsed, err := kfile.ParseHeader(h1.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kfile.NewWriter(io.Discard, parsed, k1); err == nil {
		t.Error("a parsed header started a file")
	}
	// Root and the deepest, longest paths make headers the parser takes.
	deep := "/" + strings.Repeat(strings.Repeat("x", 120)+"/", policy.MaxPathDepth-1) + "end"
	for _, s := range []string{"/", deep} {
		p := policy.MustNormalizePath(s)
		h, key, err := kfile.NewHeader(f.owner, p, kfile.OwnerLevels(f.keyring, p, nil), me)
		if err != nil {
			t.Fatal(err)
		}
		if h.Len() < kfile.MinHeaderSize || h.Len() > kfile.MaxHeaderSize {
			t.Fatalf("header of %d bytes outside %d..%d", h.Len(), kfile.MinHeaderSize, kfile.MaxHeaderSize)
		}
		g, err := kfile.ParseHeader(h.Bytes())
		if err != nil || !bytes.Equal(g.Bytes(), h.Bytes()) {
			t.Fatalf("%s: ParseHeader: %v", s, err)
		}
		if c, err := g.Open(key); err != nil || c.Path != p {
			t.Fatalf("%s: Open: %v", s, err)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, err := range []error{kfile.ErrNotKadreFile, kfile.ErrUnsupportedVersion, kfile.ErrUnsupportedAlgorithm,
		kfile.ErrMalformedHeader, kfile.ErrWrongKey, kfile.ErrTruncated, kfile.ErrCorrupt, kfile.ErrClosed,
		kfile.ErrBadSignature, kfile.ErrNotAuthorized, kfile.ErrUnsigned} {
		if s := err.Error(); !strings.HasPrefix(s, "kfile: ") || strings.ToLower(s) != s {
			t.Errorf("%q: want a lowercase message prefixed \"kfile: \"", s)
		}
	}
}

// TestAllocs bounds the allocations per signed group (1 MiB): the
// signature and BLAKE3's tree (about 140 small values); nothing grows
// with the file.
func TestAllocs(t *testing.T) {
	f := sharedFixture(t)
	const perGroup = 200
	pt := randomBytes(G, 1)
	w, err := kfile.NewWriter(io.Discard, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { w.Write(pt) }); a > perGroup {
		t.Errorf("Write: %v allocations per group", a)
	}
	file := f.encrypt(t, randomBytes(30*G, 2), 0)
	body := bytes.NewReader(file[f.h.Len():])
	r, err := kfile.NewReader(body, f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, G)
	if a := testing.AllocsPerRun(20, func() { io.ReadFull(r, buf) }); a > perGroup {
		t.Errorf("Read: %v allocations per group", a)
	}
	ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, f.key)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(0)
	if a := testing.AllocsPerRun(20, func() { ra.ReadAt(buf, off); off += G }); a > perGroup {
		t.Errorf("ReadAt: %v allocations per group", a)
	}
}
