package kfile

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Format constants of version 1 (SPEC.md §7.1).
const (
	// Magic starts every kadre file. The NUL makes it binary to tools that
	// sniff text; the CR LF detects a text-mode transfer that rewrote line
	// endings, as PNG's signature does.
	Magic = "KADRE\x00\r\n"

	// Version is the format version this package writes and reads.
	Version = 1

	// PREUmbral is the re-encryption algorithm of the capsules: Umbral on
	// secp256k1 as umbral-pre 0.10 (package rekey), the identifier records
	// use for it.
	PREUmbral = policy.PREUmbral

	// BodyXChaCha20Poly1305Stream is the body algorithm: STREAM over
	// XChaCha20-Poly1305 with a 64 KiB chunk size.
	BodyXChaCha20Poly1305Stream BodyAlgorithm = 1

	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10

	// TagSize is the Poly1305 tag appended to every chunk.
	TagSize = 16

	// EncryptedChunkSize is the size of every encrypted chunk but the last.
	EncryptedChunkSize = ChunkSize + TagSize

	// DataKeySize is the size of the data key a header wraps.
	DataKeySize = 32

	// WrappedKeySize is the Umbral DEM ciphertext of the data key: a 24-byte
	// nonce, the 32 encrypted bytes and a 16-byte tag.
	WrappedKeySize = 24 + DataKeySize + 16

	// LevelSize is one level's capsule and wrapped key.
	LevelSize = rekey.CapsuleSize + WrappedKeySize

	// MACSize is the header MAC that ends the header.
	MACSize = sha256.Size

	// MinHeaderSize and MaxHeaderSize bound the header: the root path "/"
	// (one level) and a path of policy.MaxPathLen bytes with
	// policy.MaxLevels levels.
	MinHeaderSize = fixedSize + 1 + 1 + LevelSize + MACSize
	MaxHeaderSize = fixedSize + policy.MaxPathLen + 1 + policy.MaxLevels*LevelSize + MACSize
)

// BodyAlgorithm names the body encryption of a file.
type BodyAlgorithm uint8

// Domain-separation labels of the keys derived from the data key
// (SPEC.md §7.2).
const (
	labelHeaderKey = "kadre/file/v1 header"
	labelBodyKey   = "kadre/file/v1 body"
)

// Offsets of the fixed part of the header (SPEC.md §7.1).
const (
	offVersion   = len(Magic)     // 8
	offPRE       = offVersion + 1 // 9
	offBody      = offPRE + 1     // 10
	offChunkSize = offBody + 1    // 11
	offOwner     = offChunkSize + 4
	offPathLen   = offOwner + policy.PublicKeySize
	fixedSize    = offPathLen + 2 // 50
)

// Header is a parsed or freshly made file header. It is immutable; its
// canonical encoding (Bytes) is what the header MAC and the body key cover.
type Header struct {
	owner  policy.PublicKey
	path   policy.Path
	levels []level
	raw    []byte // canonical encoding, MAC included
}

type level struct {
	capsule *rekey.Capsule
	wrapped []byte // WrappedKeySize bytes, aliasing raw
}

// LevelKeys returns the delegating public keys of every prefix of path,
// root first, from an owner's keyring: the levelKeys argument of NewHeader.
func LevelKeys(k *rekey.Keyring, path policy.Path) []*rekey.PublicKey {
	prefixes := path.Prefixes()
	out := make([]*rekey.PublicKey, len(prefixes))
	for i, p := range prefixes {
		out[i] = policy.DelegatingKey(k, p, 0).PublicKey()
	}
	return out
}

// NewHeader draws a fresh data key and wraps it to the delegating key of
// every prefix of path. levelKeys holds those keys root first, one per
// element of path.Prefixes() (see LevelKeys); owner is the owner's identity
// key, which recipients need to compute the path hashes of a request. The
// caller encrypts the body with the returned data key (NewWriter) and
// should forget it afterwards.
func NewHeader(owner policy.PublicKey, path policy.Path, levelKeys []*rekey.PublicKey) (*Header, []byte, error) {
	return NewHeaderWithRand(rand.Reader, owner, path, levelKeys)
}

// NewHeaderWithRand is NewHeader with every random byte (the data key and
// the Umbral encapsulations) drawn from rnd, for known-answer tests.
func NewHeaderWithRand(rnd io.Reader, owner policy.PublicKey, path policy.Path, levelKeys []*rekey.PublicKey) (*Header, []byte, error) {
	if _, err := policy.ParsePublicKey(owner[:]); err != nil {
		return nil, nil, fmt.Errorf("kfile: invalid owner key: %w", err)
	}
	// A Path can only be made by NormalizePath, but its limits are checked
	// again so that a header this package writes always parses.
	ps := path.String()
	if len(ps) > policy.MaxPathLen || path.Depth() > policy.MaxPathDepth {
		return nil, nil, fmt.Errorf("kfile: path of %d bytes and depth %d is over the limits", len(ps), path.Depth())
	}
	nLevels := path.Depth() + 1
	if len(levelKeys) != nLevels {
		return nil, nil, fmt.Errorf("kfile: %d level keys given for %s, which has %d levels", len(levelKeys), ps, nLevels)
	}
	for i, k := range levelKeys {
		if k == nil {
			return nil, nil, fmt.Errorf("kfile: level key %d is nil", i)
		}
	}

	dataKey := make([]byte, DataKeySize)
	if _, err := io.ReadFull(rnd, dataKey); err != nil {
		return nil, nil, fmt.Errorf("kfile: failed to read randomness: %w", err)
	}

	raw := make([]byte, 0, fixedSize+len(ps)+1+nLevels*LevelSize+MACSize)
	raw = append(raw, Magic...)
	raw = append(raw, Version, byte(PREUmbral), byte(BodyXChaCha20Poly1305Stream))
	raw = binary.BigEndian.AppendUint32(raw, ChunkSize)
	raw = append(raw, owner[:]...)
	raw = binary.BigEndian.AppendUint16(raw, uint16(len(ps)))
	raw = append(raw, ps...)
	raw = append(raw, byte(nLevels))
	h := &Header{owner: owner, path: path, levels: make([]level, nLevels)}
	for i, k := range levelKeys {
		c, ct, err := rekey.EncryptWithRand(rnd, k, dataKey)
		if err != nil {
			return nil, nil, fmt.Errorf("kfile: failed to wrap the data key for level %d: %w", i, err)
		}
		if len(ct) != WrappedKeySize {
			return nil, nil, fmt.Errorf("kfile: wrapped key of %d bytes, want %d", len(ct), WrappedKeySize)
		}
		raw = append(raw, c.Bytes()...)
		raw = append(raw, ct...)
		h.levels[i].capsule = c
	}
	raw = append(raw, headerMAC(dataKey, raw)...)
	h.raw = raw
	h.setWrapped()
	return h, dataKey, nil
}

// setWrapped points every level's wrapped key into raw.
func (h *Header) setWrapped() {
	off := len(h.raw) - MACSize - len(h.levels)*LevelSize
	for i := range h.levels {
		start := off + i*LevelSize + rekey.CapsuleSize
		h.levels[i].wrapped = h.raw[start : start+WrappedKeySize : start+WrappedKeySize]
	}
}

// headerMAC is HMAC-SHA256(HKDF-SHA256(dataKey, info = labelHeaderKey),
// header bytes before the MAC).
func headerMAC(dataKey, body []byte) []byte {
	k, err := hkdf.Key(sha256.New, dataKey, nil, labelHeaderKey, sha256.Size)
	if err != nil {
		// hkdf.Key fails only for an output longer than 255 hashes.
		panic("kfile: hkdf failed: " + err.Error())
	}
	m := hmac.New(sha256.New, k)
	m.Write(body)
	return m.Sum(nil)
}

// ReadHeader reads exactly one header from r and nothing after it (it
// issues reads of exact lengths, without buffering), so r is positioned at
// the first body byte afterwards. The header is parsed strictly (see
// ParseHeader) but not authenticated: that needs the data key (VerifyKey,
// and every function that takes a data key, does it).
func ReadHeader(r io.Reader) (*Header, error) {
	var fixed [fixedSize]byte
	if n, err := io.ReadFull(r, fixed[:offVersion+1]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if n == 0 || !bytes.HasPrefix([]byte(Magic), fixed[:min(n, len(Magic))]) {
				return nil, ErrNotKadreFile
			}
			return nil, fmt.Errorf("%w: %d bytes", ErrTruncated, n)
		}
		return nil, fmt.Errorf("kfile: failed to read header: %w", err)
	}
	if string(fixed[:len(Magic)]) != Magic {
		return nil, ErrNotKadreFile
	}
	// The version is checked before anything else is read so that a file
	// of a later version, whose layout may differ, is reported as such.
	if v := fixed[offVersion]; v != Version {
		if v > Version {
			return nil, fmt.Errorf("%w: version %d, written by a newer kadre (this one reads version %d)", ErrUnsupportedVersion, v, Version)
		}
		return nil, fmt.Errorf("%w: version %d (this kadre reads version %d)", ErrUnsupportedVersion, v, Version)
	}
	if err := readFull(r, fixed[offVersion+1:]); err != nil {
		return nil, err
	}
	if a := policy.PREAlgorithm(fixed[offPRE]); a != PREUmbral {
		return nil, fmt.Errorf("%w: re-encryption algorithm %d", ErrUnsupportedAlgorithm, a)
	}
	if a := BodyAlgorithm(fixed[offBody]); a != BodyXChaCha20Poly1305Stream {
		return nil, fmt.Errorf("%w: body algorithm %d", ErrUnsupportedAlgorithm, a)
	}
	if cs := binary.BigEndian.Uint32(fixed[offChunkSize:]); cs != ChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d (version %d uses %d)", ErrUnsupportedAlgorithm, cs, Version, ChunkSize)
	}
	owner, err := policy.ParsePublicKey(fixed[offOwner : offOwner+policy.PublicKeySize])
	if err != nil {
		return nil, fmt.Errorf("%w: owner key: %w", ErrMalformedHeader, err)
	}
	pathLen := int(binary.BigEndian.Uint16(fixed[offPathLen:]))
	if pathLen < 1 || pathLen > policy.MaxPathLen {
		return nil, fmt.Errorf("%w: path length %d outside 1..%d", ErrMalformedHeader, pathLen, policy.MaxPathLen)
	}

	// Path and level count; every allocation below is bounded by the
	// limits just checked (pathLen) or checked next (the level count).
	raw := make([]byte, fixedSize+pathLen+1, fixedSize+pathLen+1+policy.MaxLevels*LevelSize+MACSize)
	copy(raw, fixed[:])
	if err := readFull(r, raw[fixedSize:]); err != nil {
		return nil, err
	}
	ps := string(raw[fixedSize : fixedSize+pathLen])
	path, err := policy.NormalizePath(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedHeader, err)
	}
	if path.String() != ps {
		return nil, fmt.Errorf("%w: path %q is not in normalized form (%q)", ErrMalformedHeader, ps, path.String())
	}
	nLevels := int(raw[fixedSize+pathLen])
	if nLevels != path.Depth()+1 {
		return nil, fmt.Errorf("%w: %d levels for a path of depth %d", ErrMalformedHeader, nLevels, path.Depth())
	}

	start := len(raw)
	raw = raw[:start+nLevels*LevelSize+MACSize]
	if err := readFull(r, raw[start:]); err != nil {
		return nil, err
	}
	h := &Header{owner: owner, path: path, levels: make([]level, nLevels), raw: raw}
	for i := range h.levels {
		off := start + i*LevelSize
		c, err := rekey.ParseCapsule(raw[off : off+rekey.CapsuleSize])
		if err != nil {
			return nil, fmt.Errorf("%w: capsule of level %d: %w", ErrMalformedHeader, i, err)
		}
		h.levels[i].capsule = c
	}
	h.setWrapped()
	return h, nil
}

// readFull reads the rest of a header; an early end is ErrTruncated.
func readFull(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the header ends early", ErrTruncated)
		}
		return fmt.Errorf("kfile: failed to read header: %w", err)
	}
	return nil
}

// ParseHeader parses b, which must be exactly one header. The parser is
// strict: every field must be in range and canonical (a normalized path, a
// level count of depth+1, compressed points, capsules that pass Umbral's
// self-check), so that a header has exactly one encoding and Bytes
// reproduces b. It never allocates more than MaxHeaderSize plus the parsed
// capsules, and never panics.
func ParseHeader(b []byte) (*Header, error) {
	r := bytes.NewReader(b)
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the header", ErrMalformedHeader, r.Len())
	}
	return h, nil
}

// Bytes returns a copy of the canonical encoding.
func (h *Header) Bytes() []byte { return bytes.Clone(h.raw) }

// Len returns the length of the header in bytes: the offset of the body.
func (h *Header) Len() int { return len(h.raw) }

// Owner returns the owner's identity key.
func (h *Header) Owner() policy.PublicKey { return h.owner }

// Path returns the normalized path the file was encrypted under.
func (h *Header) Path() policy.Path { return h.path }

// Levels returns the number of levels, Path().Depth()+1.
func (h *Header) Levels() int { return len(h.levels) }

// Capsules returns the capsule of every level, root first: what a
// recipient sends, with the path hashes, in a re-encryption request.
func (h *Header) Capsules() []*rekey.Capsule {
	out := make([]*rekey.Capsule, len(h.levels))
	for i := range h.levels {
		out[i] = h.levels[i].capsule
	}
	return out
}

// Level returns the capsule and a copy of the wrapped data key of level i
// (the prefix of depth i). Callers that combine cfrags in their own way pass
// both to rekey.DecryptReencrypted and then check the result with
// VerifyKey; UnwrapOriginal and UnwrapReencrypted do both steps.
func (h *Header) Level(i int) (*rekey.Capsule, []byte, error) {
	if i < 0 || i >= len(h.levels) {
		return nil, nil, fmt.Errorf("kfile: level %d out of range 0..%d", i, len(h.levels)-1)
	}
	return h.levels[i].capsule, bytes.Clone(h.levels[i].wrapped), nil
}

// UnwrapOriginal returns the data key with the owner's delegating secret
// key of level i (policy.DelegatingKey of the prefix of depth i), and checks
// it against the header MAC.
func (h *Header) UnwrapOriginal(i int, sk *rekey.SecretKey) ([]byte, error) {
	if i < 0 || i >= len(h.levels) {
		return nil, fmt.Errorf("kfile: level %d out of range 0..%d", i, len(h.levels)-1)
	}
	k, err := rekey.DecryptOriginal(sk, h.levels[i].capsule, h.levels[i].wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: level %d does not open with this key", ErrWrongKey, i)
	}
	return k, h.VerifyKey(k)
}

// UnwrapReencrypted returns the data key from cfrags of level i's capsule
// (verified against the grant's keys, at least the grant's threshold of
// them), the recipient's receiving key and the grant's delegating key, and
// checks it against the header MAC.
func (h *Header) UnwrapReencrypted(i int, receivingSK *rekey.SecretKey, delegatingPK *rekey.PublicKey, cfrags []*rekey.VerifiedCapsuleFrag) ([]byte, error) {
	if i < 0 || i >= len(h.levels) {
		return nil, fmt.Errorf("kfile: level %d out of range 0..%d", i, len(h.levels)-1)
	}
	k, err := rekey.DecryptReencrypted(receivingSK, delegatingPK, h.levels[i].capsule, cfrags, h.levels[i].wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: level %d does not open with these cfrags: %w", ErrWrongKey, i, err)
	}
	return k, h.VerifyKey(k)
}

// VerifyKey checks that dataKey authenticates the header (its MAC). It
// fails with ErrWrongKey for any other key and for a header modified after
// it was made.
func (h *Header) VerifyKey(dataKey []byte) error {
	if len(dataKey) != DataKeySize {
		return fmt.Errorf("%w: data key of %d bytes, want %d", ErrWrongKey, len(dataKey), DataKeySize)
	}
	n := len(h.raw) - MACSize
	if !hmac.Equal(headerMAC(dataKey, h.raw[:n]), h.raw[n:]) {
		return ErrWrongKey
	}
	return nil
}

// bodyKey is HKDF-SHA256(ikm = dataKey, salt = SHA-256(header), info =
// labelBodyKey): the key of the body's STREAM, bound to every header byte.
func (h *Header) bodyKey(dataKey []byte) (*[32]byte, error) {
	if err := h.VerifyKey(dataKey); err != nil {
		return nil, err
	}
	salt := sha256.Sum256(h.raw)
	k, err := hkdf.Key(sha256.New, dataKey, salt[:], labelBodyKey, 32)
	if err != nil {
		panic("kfile: hkdf failed: " + err.Error())
	}
	return (*[32]byte)(k), nil
}

// PlaintextSize returns the plaintext size of a file of fileSize bytes with
// this header. Not every size is possible: the body is a sequence of full
// encrypted chunks and one final chunk of TagSize to EncryptedChunkSize
// bytes, which holds at least one byte unless the file is empty.
func (h *Header) PlaintextSize(fileSize int64) (int64, error) {
	_, pt, err := bodyLayout(fileSize - int64(len(h.raw)))
	return pt, err
}

// FileSize returns the size of the encrypted file of a plaintext of
// plaintextSize bytes under this header.
func (h *Header) FileSize(plaintextSize int64) (int64, error) {
	if plaintextSize < 0 {
		return 0, fmt.Errorf("kfile: negative plaintext size %d", plaintextSize)
	}
	chunks := max(1, (plaintextSize+ChunkSize-1)/ChunkSize)
	const maxInt64 = 1<<63 - 1
	if plaintextSize > maxInt64-int64(len(h.raw))-chunks*TagSize {
		return 0, fmt.Errorf("kfile: plaintext size %d too large", plaintextSize)
	}
	return int64(len(h.raw)) + plaintextSize + chunks*TagSize, nil
}

// bodyLayout returns the number of chunks and the plaintext size of a body
// of bodySize bytes, or why no body has that size.
func bodyLayout(bodySize int64) (chunks, plaintext int64, err error) {
	if bodySize < TagSize {
		return 0, 0, fmt.Errorf("%w: body of %d bytes is shorter than one chunk", ErrTruncated, max(bodySize, 0))
	}
	full, rem := bodySize/EncryptedChunkSize, bodySize%EncryptedChunkSize
	switch {
	case rem == 0:
		chunks = full
	case rem < TagSize:
		return 0, 0, fmt.Errorf("%w: the last chunk is %d bytes, shorter than its tag", ErrTruncated, rem)
	case rem == TagSize && full > 0:
		// An empty final chunk only ever follows nothing: the writer never
		// ends a non-empty file with one.
		return 0, 0, fmt.Errorf("%w: empty final chunk after %d full chunks", ErrCorrupt, full)
	default:
		chunks = full + 1
	}
	return chunks, bodySize - chunks*TagSize, nil
}
