package proto

import (
	"fmt"

	"github.com/kadre/kadre/policy"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field limits checked by ValidateRequest and ValidateResponse after
// decoding (SPEC.md §4.5). Record sizes come from package
// policy, which owns their layouts.
const (
	// MaxLevels is the largest number of levels in a re-encryption request:
	// one per prefix of a path of the maximum depth.
	MaxLevels = policy.MaxLevels
	// MaxCapsuleSize bounds a capsule for any algorithm (Umbral: 105).
	MaxCapsuleSize = 256
	// MaxCFragSize bounds a cfrag for any algorithm (Umbral: 381).
	MaxCFragSize = 1024
	// MaxReasonLen bounds an Error's human reason, in bytes.
	MaxReasonLen = 512
	// MaxChain bounds the links a hand-off carries to prove the sender
	// holds the fragment.
	MaxChain = 8
	// MaxHandoffRevocations bounds the revocations a hand-off carries.
	MaxHandoffRevocations = 8
	// MaxLinks bounds the links of one GetLinks answer.
	MaxLinks = 40
	// MaxBatchItems bounds the capsules of one BatchReencrypt request. The
	// largest answer (the public grant and MaxBatchItems Umbral cfrags, or
	// refusals with reasons of MaxItemReasonLen) stays under MaxFrameSize
	// (SPEC.md §4.3.10).
	MaxBatchItems = 32
	// MaxItemReasonLen bounds the reason of a refusal of one batch item.
	MaxItemReasonLen = 128

	minGrantSize = policy.PublicGrantSize + 2 + 1
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// checkEnvelope checks what every message shares: the version, a known
// body, and no unknown fields anywhere. A body from a newer protocol (an
// unknown oneof field) is ErrUnknownType; any other unknown field is
// ErrMalformed, since the decoder is strict and the version, not silent
// extension, marks protocol changes.
func checkEnvelope(env *Envelope) error {
	if env == nil {
		return malformed("no message")
	}
	if env.GetVersion() != ProtocolVersion {
		return fmt.Errorf("%w: version %d (this node speaks %d)", ErrUnsupportedVersion, env.GetVersion(), ProtocolVersion)
	}
	if env.GetBody() == nil {
		return ErrUnknownType
	}
	if hasUnknownFields(env.ProtoReflect()) {
		return malformed("unknown fields")
	}
	return nil
}

// hasUnknownFields walks m and its set message fields. Depth is bounded by
// the schema (at most three levels).
func hasUnknownFields(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasUnknownFields(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			found = hasUnknownFields(v.Message())
		}
		return !found
	})
	return found
}

func checkLen(name string, b []byte, lo, hi int) error {
	if len(b) < lo || len(b) > hi {
		if lo == hi {
			return malformed("%s of %d bytes (must be %d)", name, len(b), lo)
		}
		return malformed("%s of %d bytes (%d..%d)", name, len(b), lo, hi)
	}
	return nil
}

// ValidateRequest checks a decoded request against every limit. It does
// not parse the records the request carries (policy.ParseGrant and friends
// do, in the handler).
func ValidateRequest(env *Envelope) error {
	if err := checkEnvelope(env); err != nil {
		return err
	}
	switch b := env.GetBody().(type) {
	case *Envelope_StoreGrant:
		return checkLen("grant", b.StoreGrant.GetGrant(), minGrantSize, policy.MaxGrantSize)
	case *Envelope_Handoff:
		return checkHandoff(b.Handoff)
	case *Envelope_PutMap:
		return checkLen("map page", b.PutMap.GetPage(), policy.MapHeaderSize+policy.SignatureSize, policy.MaxMapPageSize)
	case *Envelope_GetMap:
		if b.GetMap.GetPage() >= policy.MaxMapPages {
			return malformed("page %d (at most %d pages)", b.GetMap.GetPage(), policy.MaxMapPages)
		}
		if err := checkLen("owner key", b.GetMap.GetOwner(), policy.PublicKeySize, policy.PublicKeySize); err != nil {
			return err
		}
		return checkLen("point", b.GetMap.GetPoint(), 32, 32)
	case *Envelope_PutLink:
		return checkLen("link", b.PutLink.GetLink(), policy.HandoffSize, policy.HandoffSize)
	case *Envelope_GetLinks:
		if err := checkLen("owner key", b.GetLinks.GetOwner(), policy.PublicKeySize, policy.PublicKeySize); err != nil {
			return err
		}
		return checkLen("point", b.GetLinks.GetPoint(), 32, 32)
	case *Envelope_Revoke:
		return checkLen("revocation", b.Revoke.GetRevocation(), policy.RevocationSize, policy.RevocationSize)
	case *Envelope_NodeInfo:
		return nil
	case *Envelope_Reencrypt:
		return checkReencrypt(b.Reencrypt)
	case *Envelope_BatchReencrypt:
		return checkBatch(b.BatchReencrypt)
	default:
		return fmt.Errorf("%w: a %s is not a request", ErrUnknownType, bodyName(env))
	}
}

func checkHandoff(h *HandoffRequest) error {
	if err := checkLen("grant", h.GetGrant(), minGrantSize, policy.MaxGrantSize); err != nil {
		return err
	}
	if err := checkLen("map page", h.GetMap(), policy.MapHeaderSize+policy.SignatureSize, policy.MaxMapPageSize); err != nil {
		return err
	}
	if err := checkLen("link", h.GetLink(), policy.HandoffOfferSize, policy.HandoffOfferSize); err != nil {
		return err
	}
	if len(h.GetLinks()) > MaxChain {
		return malformed("%d links (at most %d)", len(h.GetLinks()), MaxChain)
	}
	for i, l := range h.GetLinks() {
		if err := checkLen(fmt.Sprintf("link %d", i), l, policy.HandoffSize, policy.HandoffSize); err != nil {
			return err
		}
	}
	if len(h.GetRevocations()) > MaxHandoffRevocations {
		return malformed("%d revocations (at most %d)", len(h.GetRevocations()), MaxHandoffRevocations)
	}
	for i, r := range h.GetRevocations() {
		if err := checkLen(fmt.Sprintf("revocation %d", i), r, policy.RevocationSize, policy.RevocationSize); err != nil {
			return err
		}
	}
	return nil
}

func checkReencrypt(r *ReencryptRequest) error {
	if err := checkLen("owner key", r.GetOwner(), policy.PublicKeySize, policy.PublicKeySize); err != nil {
		return err
	}
	levels := r.GetLevels()
	if len(levels) == 0 || len(levels) > MaxLevels {
		return malformed("%d levels (1..%d)", len(levels), MaxLevels)
	}
	seen := make(map[string]bool, len(levels))
	for i, l := range levels {
		if l == nil {
			return malformed("level %d is empty", i)
		}
		if err := checkLen(fmt.Sprintf("level %d path hash", i), l.GetPathHash(), policy.PathHashSize, policy.PathHashSize); err != nil {
			return err
		}
		if err := checkLen(fmt.Sprintf("level %d capsule", i), l.GetCapsule(), 1, MaxCapsuleSize); err != nil {
			return err
		}
		if seen[string(l.GetPathHash())] {
			return malformed("level %d repeats a path hash", i)
		}
		seen[string(l.GetPathHash())] = true
	}
	return nil
}

func checkBatch(r *BatchReencryptRequest) error {
	if err := checkLen("owner key", r.GetOwner(), policy.PublicKeySize, policy.PublicKeySize); err != nil {
		return err
	}
	if err := checkLen("path hash", r.GetPathHash(), policy.PathHashSize, policy.PathHashSize); err != nil {
		return err
	}
	capsules := r.GetCapsules()
	if len(capsules) == 0 || len(capsules) > MaxBatchItems {
		return malformed("%d capsules (1..%d)", len(capsules), MaxBatchItems)
	}
	for i, c := range capsules {
		if err := checkLen(fmt.Sprintf("capsule %d", i), c, 1, MaxCapsuleSize); err != nil {
			return err
		}
	}
	return nil
}

// checkBatchResponse checks an answer to a BatchReencrypt: the public
// grant, and exactly one item per capsule, each a cfrag or a refusal.
func checkBatchResponse(req *BatchReencryptRequest, r *BatchReencryptResponse) error {
	if err := checkLen("grant", r.GetGrant(), policy.PublicGrantSize, policy.PublicGrantSize); err != nil {
		return err
	}
	if len(r.GetItems()) != len(req.GetCapsules()) {
		return malformed("%d items answer %d capsules", len(r.GetItems()), len(req.GetCapsules()))
	}
	for i, it := range r.GetItems() {
		switch res := it.GetResult().(type) {
		case *BatchItem_Cfrag:
			if err := checkLen(fmt.Sprintf("item %d cfrag", i), res.Cfrag, 1, MaxCFragSize); err != nil {
				return err
			}
		case *BatchItem_Error:
			if res.Error.GetCode() == Code_CODE_UNSPECIFIED {
				return malformed("item %d: error without a code", i)
			}
			if err := checkLen(fmt.Sprintf("item %d reason", i), []byte(res.Error.GetReason()), 0, MaxItemReasonLen); err != nil {
				return err
			}
		default:
			return malformed("item %d is empty", i)
		}
	}
	return nil
}

// ValidateResponse checks that resp answers req (same request id, the
// matching response type or an Error) and respects every limit. req must
// have passed ValidateRequest.
func ValidateResponse(req, resp *Envelope) error {
	if err := checkEnvelope(resp); err != nil {
		return err
	}
	if resp.GetRequestId() != req.GetRequestId() {
		return fmt.Errorf("%w: request id %d, sent %d", ErrUnexpectedResponse, resp.GetRequestId(), req.GetRequestId())
	}
	if e := resp.GetError(); e != nil {
		if e.GetCode() == Code_CODE_UNSPECIFIED {
			return malformed("error without a code")
		}
		return checkLen("error reason", []byte(e.GetReason()), 0, MaxReasonLen)
	}
	mismatch := func() error {
		return fmt.Errorf("%w: a %s answers a %s", ErrUnexpectedResponse, bodyName(resp), bodyName(req))
	}
	switch b := resp.GetBody().(type) {
	case *Envelope_StoreGrantResponse:
		if req.GetStoreGrant() == nil {
			return mismatch()
		}
		return checkLen("receipt", b.StoreGrantResponse.GetReceipt(), policy.ReceiptSize, policy.ReceiptSize)
	case *Envelope_HandoffResponse:
		if req.GetHandoff() == nil {
			return mismatch()
		}
		return checkLen("link", b.HandoffResponse.GetLink(), policy.HandoffSize, policy.HandoffSize)
	case *Envelope_PutMapResponse:
		if req.GetPutMap() == nil {
			return mismatch()
		}
		return nil
	case *Envelope_GetMapResponse:
		if req.GetGetMap() == nil {
			return mismatch()
		}
		return checkLen("map page", b.GetMapResponse.GetPage(), policy.MapHeaderSize+policy.SignatureSize, policy.MaxMapPageSize)
	case *Envelope_PutLinkResponse:
		if req.GetPutLink() == nil {
			return mismatch()
		}
		return nil
	case *Envelope_GetLinksResponse:
		if req.GetGetLinks() == nil {
			return mismatch()
		}
		if len(b.GetLinksResponse.GetLinks()) > MaxLinks {
			return malformed("%d links (at most %d)", len(b.GetLinksResponse.GetLinks()), MaxLinks)
		}
		for i, l := range b.GetLinksResponse.GetLinks() {
			if err := checkLen(fmt.Sprintf("link %d", i), l, policy.HandoffSize, policy.HandoffSize); err != nil {
				return err
			}
		}
		return nil
	case *Envelope_RevokeResponse:
		if req.GetRevoke() == nil {
			return mismatch()
		}
		return checkLen("receipt", b.RevokeResponse.GetReceipt(), policy.ReceiptSize, policy.ReceiptSize)
	case *Envelope_NodeInfoResponse:
		if req.GetNodeInfo() == nil {
			return mismatch()
		}
		return checkLen("node info", b.NodeInfoResponse.GetNodeInfo(), policy.MinNodeInfoSize, policy.MaxNodeInfoSize)
	case *Envelope_ReencryptResponse:
		if req.GetReencrypt() == nil {
			return mismatch()
		}
		r := b.ReencryptResponse
		if n := len(req.GetReencrypt().GetLevels()); int(r.GetLevel()) >= n {
			return malformed("level %d of a %d-level request", r.GetLevel(), n)
		}
		if err := checkLen("cfrag", r.GetCfrag(), 1, MaxCFragSize); err != nil {
			return err
		}
		return checkLen("grant", r.GetGrant(), policy.PublicGrantSize, policy.PublicGrantSize)
	case *Envelope_BatchReencryptResponse:
		if req.GetBatchReencrypt() == nil {
			return mismatch()
		}
		return checkBatchResponse(req.GetBatchReencrypt(), b.BatchReencryptResponse)
	default:
		return fmt.Errorf("%w: a %s is not a response", ErrUnexpectedResponse, bodyName(resp))
	}
}

// bodyName names the message in an envelope, for errors.
func bodyName(env *Envelope) string {
	m := env.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body")); fd != nil {
		return string(fd.Name())
	}
	return "empty envelope"
}

// Request returns a request envelope; body is one of the Envelope_…
// request wrappers, e.g. &Envelope_NodeInfo{NodeInfo: &NodeInfoRequest{}}.
func Request(requestID uint64, body isEnvelope_Body) *Envelope {
	return &Envelope{Version: ProtocolVersion, RequestId: requestID, Body: body}
}

// Respond returns the response envelope to req carrying body.
func Respond(req *Envelope, body isEnvelope_Body) *Envelope {
	return &Envelope{Version: ProtocolVersion, RequestId: req.GetRequestId(), Body: body}
}

// Refuse returns the Error response to req for err: the code from CodeOf,
// and err's text as the reason unless the code is opaque (a failed
// signature or kfrag check, not granted, internal), in which case only the
// code's fixed text goes out. req may be nil (a frame that did not decode);
// the request id is then 0.
func Refuse(req *Envelope, err error) *Envelope {
	code := CodeOf(err)
	return &Envelope{
		Version:   ProtocolVersion,
		RequestId: req.GetRequestId(),
		Body:      &Envelope_Error{Error: &Error{Code: code, Reason: reasonOf(code, err)}},
	}
}
