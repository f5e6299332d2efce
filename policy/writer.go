package policy

import (
	"fmt"
	"strings"

	"github.com/kadre/kadre/rekey"
)

// Writer certificate limits and string form (SPEC.md §3.4.10).
const (
	writerBodyBase = 3 + 2*PublicKeySize + 8 + 2 + 1
	writerLevel    = 4 + PublicKeySize
	// MaxWriterCertSize bounds a certificate: the longest prefix, every
	// level.
	MaxWriterCertSize = writerBodyBase + MaxPathLen + MaxLevels*writerLevel + SignatureSize
	writerHRP         = "kadrewriter"
)

// WriterLevel is one level of a writer certificate: the key epoch and the
// delegating public key of one prefix (SPEC.md §1), the key a file's level
// of that depth is encrypted to.
type WriterLevel struct {
	Epoch         uint32
	DelegatingKey PublicKey
}

// WriterCert is an owner's authorization of a writer: the writer's
// identity key may write files under Prefix, and these are the public
// keys to encrypt them to, one per level from "/" down to Prefix (SPEC.md
// §3.4.10). It carries everything a writer needs and no secret: the owner
// hands it over as one string (String), and every file the writer makes
// embeds it, so a reader checks the writer against the owner's signature
// without asking anyone. The owner revokes a writer through her holder
// maps (HolderMap.RevokedWriters).
type WriterCert struct {
	SigAlg    SignatureAlgorithm
	Owner     PublicKey
	Writer    PublicKey // the writer's identity key, which signs the files
	IssuedAt  uint64
	Prefix    Path
	Levels    []WriterLevel // len = Prefix.Depth()+1, root first
	Signature Signature
}

// ID returns the SHA-256 of Bytes.
func (c *WriterCert) ID() RecordID { return recordID(c.Bytes()) }

// Covers reports whether the certificate lets its writer write p.
func (c *WriterCert) Covers(p Path) bool { return p.HasPrefix(c.Prefix) }

func (c *WriterCert) checkFields() error {
	if err := c.SigAlg.check(); err != nil {
		return err
	}
	if _, err := ParsePublicKey(c.Owner[:]); err != nil {
		return fmt.Errorf("owner key: %w", err)
	}
	if _, err := ParsePublicKey(c.Writer[:]); err != nil {
		return fmt.Errorf("writer key: %w", err)
	}
	if err := checkTimestamp("issue time", c.IssuedAt); err != nil {
		return err
	}
	if len(c.Levels) != c.Prefix.Depth()+1 {
		return fmt.Errorf("%w: %d levels for a prefix of depth %d", ErrMalformed, len(c.Levels), c.Prefix.Depth())
	}
	for i := range c.Levels {
		if _, err := ParsePublicKey(c.Levels[i].DelegatingKey[:]); err != nil {
			return fmt.Errorf("level %d delegating key: %w", i, err)
		}
	}
	return nil
}

// BodyBytes returns the canonical body, the part the signature covers.
func (c *WriterCert) BodyBytes() []byte {
	ps := c.Prefix.String()
	b := make([]byte, 0, writerBodyBase+len(ps)+len(c.Levels)*writerLevel)
	b = append(b, writerVersion, recordTypeWriter, byte(c.SigAlg))
	b = append(b, c.Owner[:]...)
	b = append(b, c.Writer[:]...)
	b = appendU64(b, c.IssuedAt)
	b = appendU16(b, uint16(len(ps)))
	b = append(b, ps...)
	b = append(b, byte(len(c.Levels)))
	for _, l := range c.Levels {
		b = appendU32(b, l.Epoch)
		b = append(b, l.DelegatingKey[:]...)
	}
	return b
}

// Bytes returns body ‖ signature.
func (c *WriterCert) Bytes() []byte { return append(c.BodyBytes(), c.Signature[:]...) }

// Sign signs the certificate with the owner's identity signer, filling
// SigAlg and Owner when zero.
func (c *WriterCert) Sign(owner *rekey.Signer) error {
	if c.SigAlg == 0 {
		c.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(owner, &c.Owner, "owner"); err != nil {
		return err
	}
	if err := c.checkFields(); err != nil {
		return err
	}
	var err error
	c.Signature, err = signRecord(owner, LabelWriter, c.BodyBytes())
	return err
}

// ParseWriterCert parses a signed certificate. It does not verify the
// signature (VerifyWriterCert does).
func ParseWriterCert(b []byte) (*WriterCert, error) {
	if len(b) < writerBodyBase+1+writerLevel+SignatureSize || len(b) > MaxWriterCertSize {
		return nil, fmt.Errorf("%w: writer certificate of %d bytes", ErrMalformed, len(b))
	}
	d := decoder{b: b}
	d.header(writerVersion, recordTypeWriter, "writer certificate")
	c := &WriterCert{SigAlg: SignatureAlgorithm(d.u8())}
	c.Owner = d.key("owner key")
	c.Writer = d.key("writer key")
	c.IssuedAt = d.u64()
	ps := string(d.take(int(d.u16())))
	n := int(d.u8())
	if n > MaxLevels {
		d.fail("%d levels (at most %d)", n, MaxLevels)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c.Levels = append(c.Levels, WriterLevel{Epoch: d.u32(), DelegatingKey: d.key("delegating key")})
	}
	c.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	p, err := NormalizePath(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: writer prefix: %w", ErrMalformed, err)
	}
	if p.String() != ps {
		return nil, fmt.Errorf("%w: writer prefix %q is not in normalized form", ErrMalformed, ps)
	}
	c.Prefix = p
	if err := c.checkFields(); err != nil {
		return nil, err
	}
	return c, nil
}

// VerifyWriterCert checks a certificate against the owner a file names:
// fields, the owner's signature.
func VerifyWriterCert(c *WriterCert, owner PublicKey) error {
	if err := c.checkFields(); err != nil {
		return err
	}
	if c.Owner != owner {
		return fmt.Errorf("%w: the writer certificate is another owner's", ErrMismatch)
	}
	return verifyRecord(c.Owner, LabelWriter, c.BodyBytes(), c.Signature)
}

// String returns the copy-pasteable form: Bech32m with human-readable
// part "kadrewriter" over a 5-bit format version (0) and Bytes. It is long
// (about 1.6 characters per byte) but survives copy-paste and retyping
// errors are detected.
func (c *WriterCert) String() string {
	b := c.Bytes()
	data := make([]byte, 0, 1+(len(b)*8+4)/5)
	data = append(data, 0)
	data = convertBits8to5(data, b)
	return bech32mEncode(writerHRP, data)
}

// ParseWriterCertString parses the String form. It does not verify the
// signature.
func ParseWriterCertString(s string) (*WriterCert, error) {
	s = strings.Join(strings.Fields(s), "")
	if len(s) > len(writerHRP)+1+1+(MaxWriterCertSize*8+4)/5+6 {
		return nil, fmt.Errorf("%w: writer certificate string of %d characters is too long", ErrMalformed, len(s))
	}
	hrp, data, err := bech32mDecode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: writer certificate: %w", ErrMalformed, err)
	}
	if hrp != writerHRP {
		return nil, fmt.Errorf("%w: prefix %q is not %q (a writer certificate starts with %q)", ErrMalformed, hrp, writerHRP, writerHRP+"1")
	}
	if len(data) == 0 || data[0] != 0 {
		return nil, fmt.Errorf("%w: unsupported writer certificate string version", ErrMalformed)
	}
	raw, ok := convertBits5to8(data[1:])
	if !ok {
		return nil, fmt.Errorf("%w: writer certificate: bad payload encoding", ErrMalformed)
	}
	return ParseWriterCert(raw)
}

// Sign signs label ‖ body with signer as records are signed (SPEC.md
// §3.4.2), for formats outside this package that need the same
// construction (the file format's writer signatures). label must follow
// the rules of §3.4.2: "kadre/", a name and version, one final NUL.
func Sign(signer *rekey.Signer, label string, body []byte) (Signature, error) {
	if err := checkLabel(label); err != nil {
		return Signature{}, err
	}
	return signRecord(signer, label, body)
}

// Verify checks a signature made by Sign.
func Verify(pk PublicKey, label string, body []byte, sig Signature) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	return verifyRecord(pk, label, body, sig)
}

func checkLabel(label string) error {
	if !strings.HasPrefix(label, "kadre/") || !strings.HasSuffix(label, "\x00") || strings.Count(label, "\x00") != 1 {
		return fmt.Errorf("policy: invalid signature label %q", label)
	}
	switch label {
	case LabelGrant, LabelRevocation, LabelReceipt, LabelNodeInfo, LabelHolderMap, LabelAdmission, LabelHandoff, LabelWriter:
		// Those records are signed by their own methods, which check
		// their fields; Sign must not make one.
		return fmt.Errorf("policy: %q is the label of a kadre record", label)
	}
	return nil
}
