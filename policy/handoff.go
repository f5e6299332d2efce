package policy

import (
	"fmt"
	"time"

	"github.com/kadre/kadre/rekey"
)

// Hand-off link sizes (SPEC.md §3.4.8).
const (
	HandoffBodySize = 207
	// HandoffOfferSize is a link signed by its From node only: what a
	// hand-off request carries.
	HandoffOfferSize = HandoffBodySize + SignatureSize
	HandoffSize      = HandoffBodySize + 2*SignatureSize
)

// HandoffLink records that one fragment of a pair's grant moved from one
// node to another (seed 003's hand-off): signed by the node that held it
// (From) and by the node that accepted it (To), over the same body. A
// recipient follows the links from the owner-signed holder map to the
// fragment's current holder (CurrentHolders); nobody but the two nodes can
// make one, and a link only counts if From was the fragment's holder.
type HandoffLink struct {
	SigAlg    SignatureAlgorithm
	Owner     PublicKey // the pair of the holder map
	Recipient PublicKey
	GrantID   RecordID // the fragment that moved
	PathHash  PathHash // its grant's path hash
	From, To  PublicKey
	At        uint64 // Unix seconds, From's clock
	SigFrom   Signature
	SigTo     Signature
}

// AtTime returns At as a time.
func (l *HandoffLink) AtTime() time.Time { return unixTime(l.At) }

func (l *HandoffLink) checkFields() error {
	if err := l.SigAlg.check(); err != nil {
		return err
	}
	for _, k := range []*PublicKey{&l.Owner, &l.Recipient, &l.From, &l.To} {
		if _, err := ParsePublicKey(k[:]); err != nil {
			return err
		}
	}
	if l.From == l.To {
		return fmt.Errorf("%w: a hand-off from a node to itself", ErrMalformed)
	}
	return checkTimestamp("hand-off time", l.At)
}

// BodyBytes returns the canonical body, the part both signatures cover.
func (l *HandoffLink) BodyBytes() []byte {
	b := make([]byte, 0, HandoffBodySize)
	b = append(b, handoffVersion, recordTypeHandoff, byte(l.SigAlg))
	b = append(b, l.Owner[:]...)
	b = append(b, l.Recipient[:]...)
	b = append(b, l.GrantID[:]...)
	b = append(b, l.PathHash[:]...)
	b = append(b, l.From[:]...)
	b = append(b, l.To[:]...)
	return appendU64(b, l.At)
}

// Bytes returns body ‖ From's signature ‖ To's signature.
func (l *HandoffLink) Bytes() []byte {
	b := append(l.BodyBytes(), l.SigFrom[:]...)
	return append(b, l.SigTo[:]...)
}

// ID returns the SHA-256 of Bytes.
func (l *HandoffLink) ID() RecordID { return recordID(l.Bytes()) }

// OfferBytes returns body ‖ From's signature: the link before its To node
// countersigned it.
func (l *HandoffLink) OfferBytes() []byte { return append(l.BodyBytes(), l.SigFrom[:]...) }

// SignFrom signs the link as its From node, filling SigAlg and From when
// zero.
func (l *HandoffLink) SignFrom(from *rekey.Signer) error {
	if l.SigAlg == 0 {
		l.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(from, &l.From, "from"); err != nil {
		return err
	}
	if err := l.checkFields(); err != nil {
		return err
	}
	var err error
	l.SigFrom, err = signRecord(from, LabelHandoff, l.BodyBytes())
	return err
}

// SignTo countersigns the link as its To node, accepting the fragment.
func (l *HandoffLink) SignTo(to *rekey.Signer) error {
	if PublicKeyOf(to.VerifyingKey()) != l.To {
		return fmt.Errorf("%w: the signer is not the link's To node", ErrMismatch)
	}
	if err := l.checkFields(); err != nil {
		return err
	}
	var err error
	l.SigTo, err = signRecord(to, LabelHandoff, l.BodyBytes())
	return err
}

// VerifyFrom checks From's signature, VerifySignatures both.
func (l *HandoffLink) VerifyFrom() error {
	return verifyRecord(l.From, LabelHandoff, l.BodyBytes(), l.SigFrom)
}

// VerifySignatures checks both signatures.
func (l *HandoffLink) VerifySignatures() error {
	if err := l.checkFields(); err != nil {
		return err
	}
	if err := l.VerifyFrom(); err != nil {
		return err
	}
	return verifyRecord(l.To, LabelHandoff, l.BodyBytes(), l.SigTo)
}

// ParseHandoffLink parses a link signed by both nodes. It does not verify
// the signatures.
func ParseHandoffLink(b []byte) (*HandoffLink, error) {
	if len(b) != HandoffSize {
		return nil, fmt.Errorf("%w: hand-off link of %d bytes (must be %d)", ErrMalformed, len(b), HandoffSize)
	}
	return parseHandoff(b, true)
}

// ParseHandoffOffer parses a link signed by its From node only
// (OfferBytes). It does not verify the signature.
func ParseHandoffOffer(b []byte) (*HandoffLink, error) {
	if len(b) != HandoffOfferSize {
		return nil, fmt.Errorf("%w: hand-off offer of %d bytes (must be %d)", ErrMalformed, len(b), HandoffOfferSize)
	}
	return parseHandoff(b, false)
}

func parseHandoff(b []byte, countersigned bool) (*HandoffLink, error) {
	d := decoder{b: b}
	d.header(handoffVersion, recordTypeHandoff, "hand-off link")
	l := &HandoffLink{SigAlg: SignatureAlgorithm(d.u8())}
	l.Owner = d.key("owner key")
	l.Recipient = d.key("recipient key")
	l.GrantID = d.hash32()
	l.PathHash = d.hash32()
	l.From = d.key("from key")
	l.To = d.key("to key")
	l.At = d.u64()
	l.SigFrom = d.signature()
	if countersigned {
		l.SigTo = d.signature()
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := l.checkFields(); err != nil {
		return nil, err
	}
	return l, nil
}

// CurrentHolders follows hand-off links from the holders an owner-signed
// map entry names: for every fragment (grant ID) of e, the nodes that hold
// it now. A link counts only if both signatures verify, it belongs to the
// map's pair and this grant (same owner, recipient, path hash and a grant
// ID of e), its From held the fragment (the map's holder, or the To of a
// link that counted), and its To is no holder of another fragment of the
// same grant (one node never holds two fragments of one grant). A holder
// that hands one fragment to two nodes leaves two current holders.
// Links are tried until none adds a holder, so their order does not matter.
func CurrentHolders(m *HolderMap, e *MapEntry, links []*HandoffLink) map[RecordID][]PublicKey {
	cur := make(map[RecordID][]PublicKey, len(e.Holders))
	holderOf := map[PublicKey]RecordID{}
	for _, h := range e.Holders {
		cur[h.GrantID] = []PublicKey{h.Node}
		holderOf[h.Node] = h.GrantID
	}
	valid := make([]bool, len(links))
	for i, l := range links {
		_, ours := cur[l.GrantID]
		valid[i] = ours && l.Owner == m.Owner && l.Recipient == m.Recipient && l.PathHash == e.PathHash &&
			l.VerifySignatures() == nil
	}
	used := make([]bool, len(links))
	for progress := true; progress; {
		progress = false
		for i, l := range links {
			if !valid[i] || used[i] {
				continue
			}
			from, ok := holderOf[l.From]
			if !ok || from != l.GrantID {
				continue
			}
			if other, held := holderOf[l.To]; held && other != l.GrantID {
				used[i] = true // would give one node two fragments of one grant
				continue
			}
			used[i], progress = true, true
			if _, held := holderOf[l.To]; held {
				continue // a link back to a node that holds it already
			}
			holderOf[l.To] = l.GrantID
			cur[l.GrantID] = append(cur[l.GrantID], l.To)
			// From no longer holds it, unless another valid link keeps it
			// there; an honest node deletes its copy after the link.
			hs := cur[l.GrantID]
			for j, k := range hs {
				if k == l.From {
					cur[l.GrantID] = append(hs[:j:j], hs[j+1:]...)
					break
				}
			}
		}
	}
	return cur
}
