package policy

import (
	"fmt"
	"time"
)

// Node info limits (SPEC.md §3.4.6).
const (
	// MaxNodeAlgorithms bounds the PRE algorithms a node advertises.
	MaxNodeAlgorithms = 8
	// MaxSoftwareLen bounds the software version string.
	MaxSoftwareLen = 64

	nodeInfoFixedSize = 72 // body bytes besides the algorithms and the software string
	// MinNodeInfoSize and MaxNodeInfoSize bound body ‖ signature.
	MinNodeInfoSize = nodeInfoFixedSize + 1 + SignatureSize
	MaxNodeInfoSize = nodeInfoFixedSize + MaxNodeAlgorithms + MaxSoftwareLen + SignatureSize
)

// NodeInfo is a node's signed advertisement: which protocol and algorithms
// it speaks, how long it keeps grants, how many it can hold. Owners read it
// before picking nodes for a grant and refuse to rely on a node whose
// MaxGrantDuration is shorter than the grant.
type NodeInfo struct {
	SigAlg           SignatureAlgorithm
	Node             PublicKey // node identity key: verifies Signature
	ProtocolVersion  uint16    // kadre wire protocol version, ≥ 1
	MaxGrantDuration uint64    // seconds; the node refuses longer grants
	Capacity         uint64    // grants it can hold in total
	FreeSlots        uint64    // ≤ Capacity
	IssuedAt         uint64    // Unix seconds, by the node's clock
	// Algorithms lists the PRE algorithms the node stores kfrags for, in
	// strictly increasing order (unknown values allowed: a newer node may
	// speak more than this implementation knows).
	Algorithms []PREAlgorithm
	// Software is a free-form version string, printable ASCII.
	Software string

	Signature Signature
}

// IssuedTime returns IssuedAt as a time.
func (ni *NodeInfo) IssuedTime() time.Time { return unixTime(ni.IssuedAt) }

// MaxDuration returns MaxGrantDuration as a time.Duration, saturating.
func (ni *NodeInfo) MaxDuration() time.Duration {
	if ni.MaxGrantDuration > uint64(1<<63-1)/uint64(time.Second) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ni.MaxGrantDuration) * time.Second
}

// Supports reports whether the node advertises a.
func (ni *NodeInfo) Supports(a PREAlgorithm) bool {
	for _, x := range ni.Algorithms {
		if x == a {
			return true
		}
	}
	return false
}

func (ni *NodeInfo) checkFields() error {
	if err := ni.SigAlg.check(); err != nil {
		return err
	}
	if _, err := ParsePublicKey(ni.Node[:]); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if ni.ProtocolVersion == 0 {
		return fmt.Errorf("%w: protocol version 0", ErrMalformed)
	}
	if ni.MaxGrantDuration == 0 || ni.MaxGrantDuration > MaxTimestamp {
		return fmt.Errorf("%w: maximum grant duration %d s outside 1..%d", ErrMalformed, ni.MaxGrantDuration, uint64(MaxTimestamp))
	}
	if ni.FreeSlots > ni.Capacity {
		return fmt.Errorf("%w: %d free slots exceed capacity %d", ErrMalformed, ni.FreeSlots, ni.Capacity)
	}
	if err := checkTimestamp("issue time", ni.IssuedAt); err != nil {
		return err
	}
	if len(ni.Algorithms) == 0 || len(ni.Algorithms) > MaxNodeAlgorithms {
		return fmt.Errorf("%w: %d algorithms (1..%d)", ErrMalformed, len(ni.Algorithms), MaxNodeAlgorithms)
	}
	for i, a := range ni.Algorithms {
		if a == 0 || (i > 0 && a <= ni.Algorithms[i-1]) {
			return fmt.Errorf("%w: algorithms must be non-zero and strictly increasing", ErrMalformed)
		}
	}
	if len(ni.Software) > MaxSoftwareLen {
		return fmt.Errorf("%w: software string of %d bytes (limit %d)", ErrMalformed, len(ni.Software), MaxSoftwareLen)
	}
	for i := 0; i < len(ni.Software); i++ {
		if c := ni.Software[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: software string is not printable ASCII", ErrMalformed)
		}
	}
	return nil
}

// BodyBytes returns the canonical body, the part the signature covers.
func (ni *NodeInfo) BodyBytes() []byte {
	b := make([]byte, 0, nodeInfoFixedSize+len(ni.Algorithms)+len(ni.Software))
	b = append(b, nodeInfoVersion, recordTypeNodeInfo, byte(ni.SigAlg))
	b = append(b, ni.Node[:]...)
	b = appendU16(b, ni.ProtocolVersion)
	b = appendU64(b, ni.MaxGrantDuration)
	b = appendU64(b, ni.Capacity)
	b = appendU64(b, ni.FreeSlots)
	b = appendU64(b, ni.IssuedAt)
	b = append(b, byte(len(ni.Algorithms)))
	for _, a := range ni.Algorithms {
		b = append(b, byte(a))
	}
	b = append(b, byte(len(ni.Software)))
	return append(b, ni.Software...)
}

// Bytes returns body ‖ signature.
func (ni *NodeInfo) Bytes() []byte { return append(ni.BodyBytes(), ni.Signature[:]...) }

// ID returns the SHA-256 of Bytes.
func (ni *NodeInfo) ID() RecordID { return recordID(ni.Bytes()) }

// ParseNodeInfo parses body ‖ signature. It does not verify the signature.
func ParseNodeInfo(b []byte) (*NodeInfo, error) {
	if len(b) < MinNodeInfoSize || len(b) > MaxNodeInfoSize {
		return nil, fmt.Errorf("%w: node info of %d bytes (%d..%d)", ErrMalformed, len(b), MinNodeInfoSize, MaxNodeInfoSize)
	}
	d := decoder{b: b}
	d.header(nodeInfoVersion, recordTypeNodeInfo, "node info")
	ni := &NodeInfo{SigAlg: SignatureAlgorithm(d.u8())}
	ni.Node = d.key("node key")
	ni.ProtocolVersion = d.u16()
	ni.MaxGrantDuration = d.u64()
	ni.Capacity = d.u64()
	ni.FreeSlots = d.u64()
	ni.IssuedAt = d.u64()
	if n := int(d.u8()); n >= 1 && n <= MaxNodeAlgorithms {
		ni.Algorithms = make([]PREAlgorithm, n)
		for i, a := range d.take(n) {
			ni.Algorithms[i] = PREAlgorithm(a)
		}
	} else {
		d.fail("%d algorithms (1..%d)", n, MaxNodeAlgorithms)
	}
	if n := int(d.u8()); n <= MaxSoftwareLen {
		ni.Software = string(d.take(n))
	} else {
		d.fail("software string of %d bytes (limit %d)", n, MaxSoftwareLen)
	}
	ni.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := ni.checkFields(); err != nil {
		return nil, err
	}
	return ni, nil
}
