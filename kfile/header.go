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

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Format constants (SPEC.md §7.1).
const (
	// Magic starts every kadre file. The NUL makes it binary to tools that
	// sniff text; the CR LF detects a text-mode transfer that rewrote line
	// endings, as PNG's signature does.
	Magic = "KADRE\x00\r\n"

	// Version is the format version this package writes. It reads
	// versions 1 and 2.
	Version = 2

	// PREUmbral is the re-encryption algorithm of the capsules: Umbral on
	// secp256k1 as umbral-pre 0.10 (package rekey), the identifier records
	// use for it.
	PREUmbral = policy.PREUmbral

	// BodyXChaCha20Poly1305Stream is the body algorithm of version 1:
	// STREAM over XChaCha20-Poly1305 with a 64 KiB chunk size.
	BodyXChaCha20Poly1305Stream BodyAlgorithm = 1

	// BodySignedStream is the body algorithm of version 2: the same STREAM,
	// its chunks in groups of GroupChunks, each group followed by the
	// writer's signature over it (SPEC.md §7.3).
	BodySignedStream BodyAlgorithm = 2

	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10

	// TagSize is the Poly1305 tag appended to every chunk.
	TagSize = 16

	// EncryptedChunkSize is the size of every encrypted chunk but the last.
	EncryptedChunkSize = ChunkSize + TagSize

	// GroupChunks is how many chunks one group signature covers (1 MiB of
	// plaintext): a reader holds at most one group before it releases it.
	GroupChunks = 16

	// GroupSigSize is a sealed group signature: 64 bytes and their tag.
	GroupSigSize = policy.SignatureSize + TagSize

	// DataKeySize is the size of the data key a header wraps.
	DataKeySize = 32

	// WrappedKeySize is the Umbral DEM ciphertext of the data key: a 24-byte
	// nonce, the 32 encrypted bytes and a 16-byte tag.
	WrappedKeySize = 24 + DataKeySize + 16

	// LevelTagSize is the size of a version 2 level's key tag.
	LevelTagSize = 16

	// SaltSize is the size of a version 2 header's salt.
	SaltSize = 32

	// MACSize is the header MAC that ends the header.
	MACSize = sha256.Size

	// sealedPad is the block the sealed part's plaintext is padded to, so
	// that its length tells little about the path's.
	sealedPad = 64
)

// Sizes of version 1 headers (read only).
const (
	v1LevelSize = rekey.CapsuleSize + WrappedKeySize
	v1Fixed     = len(Magic) + 3 + 4 + policy.PublicKeySize + 2 // 50
)

// Sizes of version 2 headers.
const (
	v2LevelSize = 4 + LevelTagSize + rekey.CapsuleSize + WrappedKeySize
	v2Fixed     = len(Magic) + 3 + 4 + 1 + policy.PublicKeySize + SaltSize + 1 // 82
	// maxSealed bounds the sealed part: the longest path, a writer
	// certificate, the padding and the signature, with the AEAD tag.
	maxSealed = (2+policy.MaxPathLen+1+2+policy.MaxWriterCertSize+policy.SignatureSize+sealedPad-1)/sealedPad*sealedPad + TagSize

	// MinHeaderSize and MaxHeaderSize bound the headers of both versions.
	MinHeaderSize = v1Fixed + 1 + 1 + v1LevelSize + MACSize
	MaxHeaderSize = v2Fixed + policy.MaxLevels*v2LevelSize + 2 + maxSealed + MACSize
)

// BodyAlgorithm names the body encryption of a file.
type BodyAlgorithm uint8

// Domain-separation labels of the keys derived from the data key and of
// the writer's signatures (SPEC.md §7.2).
const (
	labelHeaderKeyV1 = "kadre/file/v1 header"
	labelBodyKeyV1   = "kadre/file/v1 body"
	labelHeaderKey   = "kadre/file/v2 header"
	labelSealedKey   = "kadre/file/v2 sealed"
	labelBodyKey     = "kadre/file/v2 body"
	labelLevelTag    = "kadre/file/v2 level\x00"
	// LabelHeaderSignature and LabelGroupSignature are the policy.Sign
	// labels of a writer's signatures.
	LabelHeaderSignature = "kadre/file-header/v2\x00"
	LabelGroupSignature  = "kadre/file-group/v2\x00"
)

// Writer kinds in a version 2 header's sealed part.
const (
	writerOwner     = 1 // the owner wrote the file: her identity key signs
	writerCertified = 2 // a writer certificate (policy.WriterCert) follows
)

// Header is a parsed or freshly made file header. It is immutable; its
// canonical encoding (Bytes) is what the header MAC and the body key cover.
//
// A version 2 header shows only the owner, the number of levels and each
// level's key epoch; the path and the writer are in its sealed part, which
// Open decrypts with the data key.
type Header struct {
	version byte
	owner   policy.PublicKey
	path    policy.Path // version 1 only: the path in clear
	salt    [SaltSize]byte
	levels  []level
	sealed  []byte // version 2: the sealed part's ciphertext, aliasing raw
	raw     []byte // canonical encoding, MAC included

	author *Author // set by NewHeader: who signs the body
}

type level struct {
	epoch   uint32
	tag     [LevelTagSize]byte
	capsule *rekey.Capsule
	wrapped []byte // WrappedKeySize bytes, aliasing raw
}

// Level is one level a new header wraps the data key to: the key epoch
// and delegating public key of one prefix of the path, root first.
type Level struct {
	Epoch uint32
	Key   *rekey.PublicKey
}

// Author is who writes a new file. Signer signs the header and every
// group of the body. The owner writes with her identity signer and no
// Cert, and wraps the key to every prefix of the path; any other writer
// names the owner's certificate (policy.WriterCert) for his identity key,
// and wraps the key to the certificate's levels.
type Author struct {
	Signer *rekey.Signer
	Cert   *policy.WriterCert
}

// OwnerLevels returns the levels of every prefix of path, root first, from
// an owner's keyring, each at the epoch epoch returns for it (nil: epoch
// 0 everywhere).
func OwnerLevels(k *rekey.Keyring, path policy.Path, epoch func(policy.Path) uint32) []Level {
	prefixes := path.Prefixes()
	out := make([]Level, len(prefixes))
	for i, p := range prefixes {
		var e uint32
		if epoch != nil {
			e = epoch(p)
		}
		out[i] = Level{Epoch: e, Key: policy.DelegatingKey(k, p, e).PublicKey()}
	}
	return out
}

// CertLevels returns the levels of a writer certificate.
func CertLevels(c *policy.WriterCert) ([]Level, error) {
	out := make([]Level, len(c.Levels))
	for i, l := range c.Levels {
		pk, err := l.DelegatingKey.Rekey()
		if err != nil {
			return nil, err
		}
		out[i] = Level{Epoch: l.Epoch, Key: pk}
	}
	return out, nil
}

// NewHeader draws a fresh data key and wraps it to every level; the
// header's sealed part holds path and the author's identity, signed by
// the author. owner is the owner's identity key. An owner's file has a
// level for every prefix of path (OwnerLevels); a certified writer's has
// the certificate's levels (CertLevels), and path must lie under the
// certificate's prefix. The caller encrypts the body with the returned
// data key (NewWriter) and should forget it afterwards.
func NewHeader(owner policy.PublicKey, path policy.Path, levels []Level, a *Author) (*Header, []byte, error) {
	return NewHeaderWithRand(rand.Reader, owner, path, levels, a)
}

// NewHeaderWithRand is NewHeader with every random byte (the data key, the
// salt and the Umbral encapsulations) drawn from rnd, for known-answer
// tests.
func NewHeaderWithRand(rnd io.Reader, owner policy.PublicKey, path policy.Path, levels []Level, a *Author) (*Header, []byte, error) {
	if _, err := policy.ParsePublicKey(owner[:]); err != nil {
		return nil, nil, fmt.Errorf("kfile: invalid owner key: %w", err)
	}
	ps := path.String()
	if len(ps) > policy.MaxPathLen || path.Depth() > policy.MaxPathDepth {
		return nil, nil, fmt.Errorf("kfile: path of %d bytes and depth %d is over the limits", len(ps), path.Depth())
	}
	if a == nil || a.Signer == nil || a.Signer.VerifyingKey() == nil {
		return nil, nil, errors.New("kfile: a file needs an author who signs it")
	}
	signer := policy.PublicKeyOf(a.Signer.VerifyingKey())
	want := path.Depth() + 1
	if a.Cert == nil {
		if signer != owner {
			return nil, nil, errors.New("kfile: only the owner writes without a writer certificate")
		}
	} else {
		if err := policy.VerifyWriterCert(a.Cert, owner); err != nil {
			return nil, nil, fmt.Errorf("kfile: writer certificate: %w", err)
		}
		if a.Cert.Writer != signer {
			return nil, nil, errors.New("kfile: the writer certificate names another writer")
		}
		if !a.Cert.Covers(path) {
			return nil, nil, fmt.Errorf("%w: %s is not under %s, the prefix the certificate lets its writer write", ErrNotAuthorized, ps, a.Cert.Prefix)
		}
		want = len(a.Cert.Levels)
	}
	if len(levels) != want {
		return nil, nil, fmt.Errorf("kfile: %d levels given for %s, which needs %d", len(levels), ps, want)
	}
	for i, l := range levels {
		if l.Key == nil {
			return nil, nil, fmt.Errorf("kfile: level %d has no key", i)
		}
		if a.Cert != nil && (a.Cert.Levels[i].Epoch != l.Epoch || a.Cert.Levels[i].DelegatingKey != policy.PublicKeyOf(l.Key)) {
			return nil, nil, fmt.Errorf("kfile: level %d is not the certificate's", i)
		}
	}
	return buildHeader(rnd, owner, path, levels, a)
}

// buildHeader makes the header NewHeaderWithRand checked the inputs of.
func buildHeader(rnd io.Reader, owner policy.PublicKey, path policy.Path, levels []Level, a *Author) (*Header, []byte, error) {
	ps := path.String()
	dataKey := make([]byte, DataKeySize)
	h := &Header{version: Version, owner: owner, levels: make([]level, len(levels)), author: a}
	if _, err := io.ReadFull(rnd, dataKey); err != nil {
		return nil, nil, fmt.Errorf("kfile: failed to read randomness: %w", err)
	}
	if _, err := io.ReadFull(rnd, h.salt[:]); err != nil {
		return nil, nil, fmt.Errorf("kfile: failed to read randomness: %w", err)
	}
	raw := make([]byte, 0, v2Fixed+len(levels)*v2LevelSize+2+len(ps)+512+MACSize)
	raw = append(raw, Magic...)
	raw = append(raw, Version, byte(PREUmbral), byte(BodySignedStream))
	raw = binary.BigEndian.AppendUint32(raw, ChunkSize)
	raw = append(raw, GroupChunks)
	raw = append(raw, owner[:]...)
	raw = append(raw, h.salt[:]...)
	raw = append(raw, byte(len(levels)))
	for i, l := range levels {
		c, ct, err := rekey.EncryptWithRand(rnd, l.Key, dataKey)
		if err != nil {
			return nil, nil, fmt.Errorf("kfile: failed to wrap the data key for level %d: %w", i, err)
		}
		if len(ct) != WrappedKeySize {
			return nil, nil, fmt.Errorf("kfile: wrapped key of %d bytes, want %d", len(ct), WrappedKeySize)
		}
		h.levels[i].epoch, h.levels[i].tag, h.levels[i].capsule = l.Epoch, levelTag(&h.salt, policy.PublicKeyOf(l.Key), l.Epoch), c
		raw = binary.BigEndian.AppendUint32(raw, l.Epoch)
		raw = append(raw, h.levels[i].tag[:]...)
		raw = append(raw, c.Bytes()...)
		raw = append(raw, ct...)
	}
	// The sealed part: path, writer, padding, then the author's signature
	// over the public part and everything sealed before it.
	pt := binary.BigEndian.AppendUint16(nil, uint16(len(ps)))
	pt = append(pt, ps...)
	if a.Cert == nil {
		pt = append(pt, writerOwner)
	} else {
		cert := a.Cert.Bytes()
		pt = append(pt, writerCertified)
		pt = binary.BigEndian.AppendUint16(pt, uint16(len(cert)))
		pt = append(pt, cert...)
	}
	padded := (len(pt) + policy.SignatureSize + sealedPad - 1) / sealedPad * sealedPad
	pt = append(pt, make([]byte, padded-policy.SignatureSize-len(pt))...)
	raw = binary.BigEndian.AppendUint16(raw, uint16(padded+TagSize))
	sig, err := policy.Sign(a.Signer, LabelHeaderSignature, headerSigned(raw, pt))
	if err != nil {
		return nil, nil, err
	}
	pt = append(pt, sig[:]...)
	aead := sealedAEAD(dataKey)
	raw = aead.Seal(raw, make([]byte, chacha20poly1305.NonceSizeX), pt, nil)
	raw = append(raw, headerMAC(labelHeaderKey, dataKey, raw)...)
	h.raw = raw
	h.setSlices()
	return h, dataKey, nil
}

// headerSigned is what the author's header signature covers: the public
// part (every byte before the sealed part, its length included) and the
// sealed plaintext before the signature.
func headerSigned(public, sealedPlain []byte) []byte {
	b := make([]byte, 0, len(public)+len(sealedPlain))
	return append(append(b, public...), sealedPlain...)
}

// levelTag is the first LevelTagSize bytes of SHA-256(label ‖ salt ‖
// delegating key ‖ epoch): who knows a prefix's delegating public key finds
// its level in a file without the path; nobody else can tell two files'
// levels apart.
func levelTag(salt *[SaltSize]byte, key policy.PublicKey, epoch uint32) (tag [LevelTagSize]byte) {
	d := sha256.New()
	d.Write([]byte(labelLevelTag))
	d.Write(salt[:])
	d.Write(key[:])
	d.Write(binary.BigEndian.AppendUint32(nil, epoch))
	copy(tag[:], d.Sum(nil))
	return tag
}

func sealedAEAD(dataKey []byte) interface {
	Seal(dst, nonce, pt, ad []byte) []byte
	Open(dst, nonce, ct, ad []byte) ([]byte, error)
} {
	k := derive(dataKey, nil, labelSealedKey)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		panic("kfile: xchacha20poly1305: " + err.Error())
	}
	return aead
}

// derive is HKDF-SHA256(ikm = dataKey, salt, info = label), 32 bytes.
func derive(dataKey, salt []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, dataKey, salt, label, 32)
	if err != nil {
		// hkdf.Key fails only for an output longer than 255 hashes.
		panic("kfile: hkdf failed: " + err.Error())
	}
	return k
}

// setSlices points every level's wrapped key and the sealed part into raw.
func (h *Header) setSlices() {
	if h.version == 1 {
		off := len(h.raw) - MACSize - len(h.levels)*v1LevelSize
		for i := range h.levels {
			start := off + i*v1LevelSize + rekey.CapsuleSize
			h.levels[i].wrapped = h.raw[start : start+WrappedKeySize : start+WrappedKeySize]
		}
		return
	}
	for i := range h.levels {
		start := v2Fixed + i*v2LevelSize + 4 + LevelTagSize + rekey.CapsuleSize
		h.levels[i].wrapped = h.raw[start : start+WrappedKeySize : start+WrappedKeySize]
	}
	start := v2Fixed + len(h.levels)*v2LevelSize + 2
	h.sealed = h.raw[start : len(h.raw)-MACSize : len(h.raw)-MACSize]
}

// headerMAC is HMAC-SHA256(HKDF-SHA256(dataKey, info = label), header
// bytes before the MAC).
func headerMAC(label string, dataKey, body []byte) []byte {
	m := hmac.New(sha256.New, derive(dataKey, nil, label))
	m.Write(body)
	return m.Sum(nil)
}

// ReadHeader reads exactly one header from r and nothing after it (it
// issues reads of exact lengths, without buffering), so r is positioned at
// the first body byte afterwards. The header is parsed strictly (see
// ParseHeader) but not authenticated: that needs the data key (VerifyKey,
// Open, and every function that takes a data key, do it).
func ReadHeader(r io.Reader) (*Header, error) {
	var fixed [v2Fixed]byte
	if n, err := io.ReadFull(r, fixed[:len(Magic)+1]); err != nil {
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
	switch v := fixed[len(Magic)]; v {
	case 1:
		return readHeaderV1(r, fixed[:v1Fixed])
	case 2:
		return readHeaderV2(r, fixed[:])
	default:
		if v > Version {
			return nil, fmt.Errorf("%w: version %d, written by a newer kadre (this one reads versions 1 and 2)", ErrUnsupportedVersion, v)
		}
		return nil, fmt.Errorf("%w: version %d (this kadre reads versions 1 and 2)", ErrUnsupportedVersion, v)
	}
}

// checkAlgorithms checks the algorithm bytes and chunk size after the
// version.
func checkAlgorithms(b []byte, version byte, body BodyAlgorithm) error {
	if a := policy.PREAlgorithm(b[0]); a != PREUmbral {
		return fmt.Errorf("%w: re-encryption algorithm %d", ErrUnsupportedAlgorithm, a)
	}
	if a := BodyAlgorithm(b[1]); a != body {
		return fmt.Errorf("%w: body algorithm %d in a version %d file", ErrUnsupportedAlgorithm, a, version)
	}
	if cs := binary.BigEndian.Uint32(b[2:]); cs != ChunkSize {
		return fmt.Errorf("%w: chunk size %d (version %d uses %d)", ErrUnsupportedAlgorithm, cs, version, ChunkSize)
	}
	return nil
}

func readHeaderV1(r io.Reader, fixed []byte) (*Header, error) {
	const offOwner, offPathLen = len(Magic) + 3 + 4, len(Magic) + 3 + 4 + policy.PublicKeySize
	if err := readFull(r, fixed[len(Magic)+1:]); err != nil {
		return nil, err
	}
	if err := checkAlgorithms(fixed[len(Magic)+1:], 1, BodyXChaCha20Poly1305Stream); err != nil {
		return nil, err
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
	raw := make([]byte, v1Fixed+pathLen+1, v1Fixed+pathLen+1+policy.MaxLevels*v1LevelSize+MACSize)
	copy(raw, fixed)
	if err := readFull(r, raw[v1Fixed:]); err != nil {
		return nil, err
	}
	ps := string(raw[v1Fixed : v1Fixed+pathLen])
	path, err := policy.NormalizePath(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedHeader, err)
	}
	if path.String() != ps {
		return nil, fmt.Errorf("%w: path %q is not in normalized form (%q)", ErrMalformedHeader, ps, path.String())
	}
	nLevels := int(raw[v1Fixed+pathLen])
	if nLevels != path.Depth()+1 {
		return nil, fmt.Errorf("%w: %d levels for a path of depth %d", ErrMalformedHeader, nLevels, path.Depth())
	}
	start := len(raw)
	raw = raw[:start+nLevels*v1LevelSize+MACSize]
	if err := readFull(r, raw[start:]); err != nil {
		return nil, err
	}
	h := &Header{version: 1, owner: owner, path: path, levels: make([]level, nLevels), raw: raw}
	for i := range h.levels {
		off := start + i*v1LevelSize
		c, err := rekey.ParseCapsule(raw[off : off+rekey.CapsuleSize])
		if err != nil {
			return nil, fmt.Errorf("%w: capsule of level %d: %w", ErrMalformedHeader, i, err)
		}
		h.levels[i].capsule = c
	}
	h.setSlices()
	return h, nil
}

func readHeaderV2(r io.Reader, fixed []byte) (*Header, error) {
	const offGroup = len(Magic) + 3 + 4
	const offOwner = offGroup + 1
	if err := readFull(r, fixed[len(Magic)+1:]); err != nil {
		return nil, err
	}
	if err := checkAlgorithms(fixed[len(Magic)+1:], 2, BodySignedStream); err != nil {
		return nil, err
	}
	if g := fixed[offGroup]; g != GroupChunks {
		return nil, fmt.Errorf("%w: %d chunks per signed group (version 2 uses %d)", ErrUnsupportedAlgorithm, g, GroupChunks)
	}
	owner, err := policy.ParsePublicKey(fixed[offOwner : offOwner+policy.PublicKeySize])
	if err != nil {
		return nil, fmt.Errorf("%w: owner key: %w", ErrMalformedHeader, err)
	}
	nLevels := int(fixed[v2Fixed-1])
	if nLevels < 1 || nLevels > policy.MaxLevels {
		return nil, fmt.Errorf("%w: %d levels (1..%d)", ErrMalformedHeader, nLevels, policy.MaxLevels)
	}
	// Levels and the sealed length; every allocation is bounded by the
	// level count just checked and the sealed length checked next.
	raw := make([]byte, v2Fixed+nLevels*v2LevelSize+2, v2Fixed+nLevels*v2LevelSize+2+maxSealed+MACSize)
	copy(raw, fixed)
	if err := readFull(r, raw[v2Fixed:]); err != nil {
		return nil, err
	}
	sealedLen := int(binary.BigEndian.Uint16(raw[len(raw)-2:]))
	if sealedLen < sealedPad+TagSize || sealedLen > maxSealed || (sealedLen-TagSize)%sealedPad != 0 {
		return nil, fmt.Errorf("%w: sealed part of %d bytes (a multiple of %d plus %d, at most %d)", ErrMalformedHeader, sealedLen, sealedPad, TagSize, maxSealed)
	}
	start := len(raw)
	raw = raw[:start+sealedLen+MACSize]
	if err := readFull(r, raw[start:]); err != nil {
		return nil, err
	}
	h := &Header{version: 2, owner: owner, levels: make([]level, nLevels), raw: raw}
	copy(h.salt[:], fixed[offOwner+policy.PublicKeySize:])
	for i := range h.levels {
		off := v2Fixed + i*v2LevelSize
		h.levels[i].epoch = binary.BigEndian.Uint32(raw[off:])
		copy(h.levels[i].tag[:], raw[off+4:])
		c, err := rekey.ParseCapsule(raw[off+4+LevelTagSize : off+4+LevelTagSize+rekey.CapsuleSize])
		if err != nil {
			return nil, fmt.Errorf("%w: capsule of level %d: %w", ErrMalformedHeader, i, err)
		}
		h.levels[i].capsule = c
	}
	h.setSlices()
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
// strict: every field must be in range and canonical (compressed points,
// capsules that pass Umbral's self-check, and in version 1 a normalized
// path and a level count of depth+1), so that a header has exactly one
// encoding and Bytes reproduces b. What the sealed part of a version 2
// header holds is checked by Open. It never allocates more than
// MaxHeaderSize plus the parsed capsules, and never panics.
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

// FormatVersion returns the header's format version, 1 or 2.
func (h *Header) FormatVersion() int { return int(h.version) }

// Owner returns the owner's identity key.
func (h *Header) Owner() policy.PublicKey { return h.owner }

// ClearPath returns the path of a version 1 header, which carries it in
// clear; a version 2 header reveals its path only to Open.
func (h *Header) ClearPath() (policy.Path, bool) { return h.path, h.version == 1 }

// Levels returns the number of levels. Level i belongs to the prefix of
// depth i of the path.
func (h *Header) Levels() int { return len(h.levels) }

// Epoch returns the key epoch of level i (0 in version 1).
func (h *Header) Epoch(i int) uint32 {
	if i < 0 || i >= len(h.levels) {
		return 0
	}
	return h.levels[i].epoch
}

// Matches reports whether level i is encrypted to the delegating public
// key key (a grant's, or the owner's key of a prefix): the recipient's way
// to find his level without the path. A version 1 header matches every
// key; its path says which level is whose.
func (h *Header) Matches(i int, key policy.PublicKey) bool {
	if i < 0 || i >= len(h.levels) {
		return false
	}
	if h.version == 1 {
		return true
	}
	want := levelTag(&h.salt, key, h.levels[i].epoch)
	return hmac.Equal(want[:], h.levels[i].tag[:])
}

// Capsules returns the capsule of every level, root first.
func (h *Header) Capsules() []*rekey.Capsule {
	out := make([]*rekey.Capsule, len(h.levels))
	for i := range h.levels {
		out[i] = h.levels[i].capsule
	}
	return out
}

// Level returns the capsule and a copy of the wrapped data key of level i.
// Callers that combine cfrags in their own way pass both to
// rekey.DecryptReencrypted and then check the result with VerifyKey;
// UnwrapOriginal and UnwrapReencrypted do both steps.
func (h *Header) Level(i int) (*rekey.Capsule, []byte, error) {
	if i < 0 || i >= len(h.levels) {
		return nil, nil, fmt.Errorf("kfile: level %d out of range 0..%d", i, len(h.levels)-1)
	}
	return h.levels[i].capsule, bytes.Clone(h.levels[i].wrapped), nil
}

// UnwrapOriginal returns the data key with the owner's delegating secret
// key of level i (policy.DelegatingKey of the prefix of depth i at the
// level's epoch), and checks it against the header MAC.
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
	label := labelHeaderKey
	if h.version == 1 {
		label = labelHeaderKeyV1
	}
	n := len(h.raw) - MACSize
	if !hmac.Equal(headerMAC(label, dataKey, h.raw[:n]), h.raw[n:]) {
		return ErrWrongKey
	}
	return nil
}

// Contents is what a header holds for whoever has its data key.
type Contents struct {
	// Path is the path the file was encrypted under.
	Path policy.Path
	// Writer is the identity key that signed the file: the owner's, or a
	// certified writer's. Zero for an unsigned version 1 file.
	Writer policy.PublicKey
	// Cert is the writer's certificate, nil when the owner wrote the file
	// (or for version 1).
	Cert *policy.WriterCert
	// Signed is false for version 1 files, which nobody signed.
	Signed bool
}

// ByOwner reports whether the owner signed the file.
func (c *Contents) ByOwner(owner policy.PublicKey) bool { return c.Signed && c.Writer == owner }

// Open checks dataKey against the header and returns its contents. For
// version 2 it decrypts the sealed part and checks it: canonical
// encoding, the author's signature over the header, and for a certified
// writer the certificate (signed by the header's owner, naming the
// signer, its levels those of the header, its prefix above the path).
// Whether the owner still authorizes the writer is the caller's question
// (the owner's holder maps list revoked writers). A version 1 header
// returns its path, unsigned.
func (h *Header) Open(dataKey []byte) (*Contents, error) {
	if err := h.VerifyKey(dataKey); err != nil {
		return nil, err
	}
	if h.version == 1 {
		return &Contents{Path: h.path}, nil
	}
	pt, err := sealedAEAD(dataKey).Open(nil, make([]byte, chacha20poly1305.NonceSizeX), h.sealed, nil)
	if err != nil {
		// The MAC verified, so only a writer who sealed garbage gets here.
		return nil, fmt.Errorf("%w: the sealed part does not open", ErrMalformedHeader)
	}
	c, err := h.parseSealed(pt)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (h *Header) parseSealed(pt []byte) (*Contents, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sealed part: %s", ErrMalformedHeader, fmt.Sprintf(format, args...))
	}
	body, sigBytes := pt[:len(pt)-policy.SignatureSize], pt[len(pt)-policy.SignatureSize:]
	if len(body) < 3 {
		return nil, bad("too short")
	}
	n := int(binary.BigEndian.Uint16(body))
	if n < 1 || n > policy.MaxPathLen || 2+n+1 > len(body) {
		return nil, bad("path length %d", n)
	}
	ps := string(body[2 : 2+n])
	path, err := policy.NormalizePath(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedHeader, err)
	}
	if path.String() != ps {
		return nil, bad("path %q is not in normalized form", ps)
	}
	c := &Contents{Path: path, Signed: true}
	rest := body[2+n:]
	kind := rest[0]
	rest = rest[1:]
	switch kind {
	case writerOwner:
		c.Writer = h.owner
		if len(h.levels) != path.Depth()+1 {
			return nil, bad("%d levels for an owner's file of depth %d", len(h.levels), path.Depth())
		}
	case writerCertified:
		if len(rest) < 2 {
			return nil, bad("no certificate")
		}
		cl := int(binary.BigEndian.Uint16(rest))
		if cl > len(rest)-2 {
			return nil, bad("certificate of %d bytes", cl)
		}
		cert, err := policy.ParseWriterCert(rest[2 : 2+cl])
		if err != nil {
			return nil, fmt.Errorf("%w: writer certificate: %w", ErrMalformedHeader, err)
		}
		rest = rest[2+cl:]
		if err := policy.VerifyWriterCert(cert, h.owner); err != nil {
			return nil, fmt.Errorf("%w: writer certificate: %w", ErrNotAuthorized, err)
		}
		if len(cert.Levels) != len(h.levels) {
			return nil, fmt.Errorf("%w: the header has %d levels, the writer certificate %d", ErrNotAuthorized, len(h.levels), len(cert.Levels))
		}
		for i, l := range cert.Levels {
			if l.Epoch != h.levels[i].epoch || !h.Matches(i, l.DelegatingKey) {
				return nil, fmt.Errorf("%w: level %d is not encrypted to the writer certificate's key", ErrNotAuthorized, i)
			}
		}
		if !cert.Covers(path) {
			return nil, fmt.Errorf("%w: %s is not under %s, the prefix the owner lets this writer write", ErrNotAuthorized, path, cert.Prefix)
		}
		c.Writer, c.Cert = cert.Writer, cert
	default:
		return nil, bad("writer kind %d", kind)
	}
	for _, b := range rest {
		if b != 0 {
			return nil, bad("non-zero padding")
		}
	}
	if len(rest) >= sealedPad {
		return nil, bad("%d bytes of padding", len(rest))
	}
	var sig policy.Signature
	copy(sig[:], sigBytes)
	public := h.raw[:len(h.raw)-MACSize-len(h.sealed)]
	if err := policy.Verify(c.Writer, LabelHeaderSignature, headerSigned(public, body), sig); err != nil {
		return nil, fmt.Errorf("%w: the header is not signed by its writer %s: %w", ErrBadSignature, c.Writer, err)
	}
	return c, nil
}

// bodyKey is HKDF-SHA256(ikm = dataKey, salt = SHA-256(header), info =
// the version's body label): the key of the body's STREAM, bound to every
// header byte.
func (h *Header) bodyKey(dataKey []byte) (*[32]byte, error) {
	if err := h.VerifyKey(dataKey); err != nil {
		return nil, err
	}
	salt := sha256.Sum256(h.raw)
	label := labelBodyKey
	if h.version == 1 {
		label = labelBodyKeyV1
	}
	return (*[32]byte)(derive(dataKey, salt[:], label)), nil
}

// BodyKey returns the key of the body's STREAM for an application that
// decrypts the body itself (SPEC.md §7.3), after checking dataKey against
// the header.
func (h *Header) BodyKey(dataKey []byte) ([]byte, error) {
	k, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, err
	}
	return k[:], nil
}
