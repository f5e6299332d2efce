package policy

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/kadre/kadre/rekey"
)

// Admission list limits (SPEC.md §3.4.9).
const (
	MaxAdmitted       = 10000
	admissionBodyBase = 54
)

// AdmissionList is an operator's signed list of the nodes admitted to a
// private deployment: owners who trust the operator place fragments only
// on these nodes, and their nodes hand fragments off only to them, so
// identities the operator did not admit never hold a fragment, however
// many there are (SPEC.md §5.2). It is a local file, never sent on the
// wire.
type AdmissionList struct {
	SigAlg    SignatureAlgorithm
	Operator  PublicKey
	IssuedAt  uint64
	Expiry    uint64      // the list is not used from this second on
	Nodes     []PublicKey // strictly increasing, 1..MaxAdmitted
	Signature Signature
}

// Admits reports whether node is on the list.
func (a *AdmissionList) Admits(node PublicKey) bool {
	_, ok := slices.BinarySearchFunc(a.Nodes, node, func(x, y PublicKey) int { return bytes.Compare(x[:], y[:]) })
	return ok
}

// ExpiryTime returns Expiry as a time.
func (a *AdmissionList) ExpiryTime() time.Time { return unixTime(a.Expiry) }

func (a *AdmissionList) checkFields() error {
	if err := a.SigAlg.check(); err != nil {
		return err
	}
	if _, err := ParsePublicKey(a.Operator[:]); err != nil {
		return fmt.Errorf("operator key: %w", err)
	}
	if err := checkTimestamp("issue time", a.IssuedAt); err != nil {
		return err
	}
	if err := checkTimestamp("expiry", a.Expiry); err != nil {
		return err
	}
	if len(a.Nodes) == 0 || len(a.Nodes) > MaxAdmitted {
		return fmt.Errorf("%w: %d admitted nodes (1..%d)", ErrMalformed, len(a.Nodes), MaxAdmitted)
	}
	for i := range a.Nodes {
		if _, err := ParsePublicKey(a.Nodes[i][:]); err != nil {
			return fmt.Errorf("node key: %w", err)
		}
		if i > 0 && bytes.Compare(a.Nodes[i-1][:], a.Nodes[i][:]) >= 0 {
			return fmt.Errorf("%w: node keys not strictly increasing", ErrMalformed)
		}
	}
	return nil
}

// BodyBytes returns the canonical body, the part the signature covers.
func (a *AdmissionList) BodyBytes() []byte {
	b := make([]byte, 0, admissionBodyBase+PublicKeySize*len(a.Nodes))
	b = append(b, admissionVersion, recordTypeAdmission, byte(a.SigAlg))
	b = append(b, a.Operator[:]...)
	b = appendU64(b, a.IssuedAt)
	b = appendU64(b, a.Expiry)
	b = appendU16(b, uint16(len(a.Nodes)))
	for _, n := range a.Nodes {
		b = append(b, n[:]...)
	}
	return b
}

// Bytes returns body ‖ signature.
func (a *AdmissionList) Bytes() []byte { return append(a.BodyBytes(), a.Signature[:]...) }

// Sign sorts Nodes, fills SigAlg and Operator when zero and signs.
func (a *AdmissionList) Sign(operator *rekey.Signer) error {
	if a.SigAlg == 0 {
		a.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(operator, &a.Operator, "operator"); err != nil {
		return err
	}
	slices.SortFunc(a.Nodes, func(x, y PublicKey) int { return bytes.Compare(x[:], y[:]) })
	a.Nodes = slices.Compact(a.Nodes)
	if err := a.checkFields(); err != nil {
		return err
	}
	var err error
	a.Signature, err = signRecord(operator, LabelAdmission, a.BodyBytes())
	return err
}

// ParseAdmissionList parses a signed list. It does not verify the
// signature (VerifyAdmissionList does).
func ParseAdmissionList(b []byte) (*AdmissionList, error) {
	if len(b) < admissionBodyBase+PublicKeySize+SignatureSize || len(b) > admissionBodyBase+PublicKeySize*MaxAdmitted+SignatureSize {
		return nil, fmt.Errorf("%w: admission list of %d bytes", ErrMalformed, len(b))
	}
	d := decoder{b: b}
	d.header(admissionVersion, recordTypeAdmission, "admission list")
	a := &AdmissionList{SigAlg: SignatureAlgorithm(d.u8())}
	a.Operator = d.key("operator key")
	a.IssuedAt = d.u64()
	a.Expiry = d.u64()
	n := int(d.u16())
	if n > MaxAdmitted {
		d.fail("%d admitted nodes (at most %d)", n, MaxAdmitted)
	}
	for i := 0; i < n && d.err == nil; i++ {
		a.Nodes = append(a.Nodes, d.key("node key"))
	}
	a.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := a.checkFields(); err != nil {
		return nil, err
	}
	return a, nil
}

// VerifyAdmissionList checks a list against the operator key the owner
// trusts, at now: fields, the operator's signature, not expired.
func VerifyAdmissionList(a *AdmissionList, operator PublicKey, now time.Time) error {
	if err := a.checkFields(); err != nil {
		return err
	}
	if a.Operator != operator {
		return fmt.Errorf("%w: the admission list is signed by another operator", ErrMismatch)
	}
	if err := verifyRecord(a.Operator, LabelAdmission, a.BodyBytes(), a.Signature); err != nil {
		return err
	}
	if now.Unix() >= int64(a.Expiry) {
		return fmt.Errorf("%w: the admission list expired at %s", ErrExpired, a.ExpiryTime().Format(time.RFC3339))
	}
	return nil
}
