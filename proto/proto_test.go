package proto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kadre/kadre/policy"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
)

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func levels(n, capsule int) []*Level {
	out := make([]*Level, n)
	for i := range out {
		ph := fill(32, 0)
		ph[0] = byte(i)
		out[i] = &Level{PathHash: ph, Capsule: fill(capsule, 0xca)}
	}
	return out
}

func validRequests() map[string]*Envelope {
	return map[string]*Envelope{
		"store":   Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{Grant: fill(policy.PublicGrantSize+2+310, 1)}}),
		"handoff": Request(2, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(policy.PublicGrantSize+2+310, 2), Map: fill(600, 2), Link: fill(policy.HandoffOfferSize, 2)}}),
		"max handoff": Request(6, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(policy.MaxGrantSize, 2), Map: fill(policy.MaxMapPageSize, 2),
			Links: repeat(fill(policy.HandoffSize, 3), MaxChain), Link: fill(policy.HandoffOfferSize, 2),
			Revocations: repeat(fill(policy.RevocationSize, 4), MaxHandoffRevocations), Mark: 1<<64 - 1}}),
		"put map":   Request(7, &Envelope_PutMap{PutMap: &PutMapRequest{Page: fill(policy.MaxMapPageSize, 5)}}),
		"get map":   Request(8, &Envelope_GetMap{GetMap: &GetMapRequest{Point: fill(32, 6), Page: policy.MaxMapPages - 1, Owner: fill(33, 6)}}),
		"put link":  Request(9, &Envelope_PutLink{PutLink: &PutLinkRequest{Link: fill(policy.HandoffSize, 7)}}),
		"get links": Request(10, &Envelope_GetLinks{GetLinks: &GetLinksRequest{Point: fill(32, 8), Owner: fill(33, 8)}}),
		"revoke":    Request(3, &Envelope_Revoke{Revoke: &RevokeRequest{Revocation: fill(policy.RevocationSize, 3)}}),
		"node info": Request(4, &Envelope_NodeInfo{NodeInfo: &NodeInfoRequest{}}),
		"reencrypt": Request(5, &Envelope_Reencrypt{Reencrypt: &ReencryptRequest{Owner: fill(33, 2), Levels: levels(4, 105)}}),
		"max reencrypt": Request(1<<64-1, &Envelope_Reencrypt{Reencrypt: &ReencryptRequest{
			Owner: fill(33, 2), Levels: levels(MaxLevels, MaxCapsuleSize)}}),
		"batch": Request(11, &Envelope_BatchReencrypt{BatchReencrypt: &BatchReencryptRequest{
			Owner: fill(33, 2), PathHash: fill(32, 3), Capsules: repeat(fill(105, 4), 3)}}),
		"max batch": Request(12, &Envelope_BatchReencrypt{BatchReencrypt: &BatchReencryptRequest{
			Owner: fill(33, 2), PathHash: fill(32, 3), Capsules: repeat(fill(MaxCapsuleSize, 4), MaxBatchItems)}}),
	}
}

// batchAnswer answers a batch request of n capsules: cfrags of size cfrag,
// except the items listed in refused.
func batchAnswer(req *Envelope, n, cfrag int, refused map[int]*Error) *Envelope {
	r := &BatchReencryptResponse{Grant: fill(policy.PublicGrantSize, 1)}
	for i := range n {
		if e := refused[i]; e != nil {
			r.Items = append(r.Items, &BatchItem{Result: &BatchItem_Error{Error: e}})
			continue
		}
		r.Items = append(r.Items, &BatchItem{Result: &BatchItem_Cfrag{Cfrag: fill(cfrag, byte(i))}})
	}
	return Respond(req, &Envelope_BatchReencryptResponse{BatchReencryptResponse: r})
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func roundTrip(t *testing.T, env *Envelope) *Envelope {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, env); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if !gproto.Equal(got, env) {
		t.Fatalf("round trip changed the message:\n%v\n%v", env, got)
	}
	return got
}

func TestRequestRoundTrip(t *testing.T) {
	for name, env := range validRequests() {
		t.Run(name, func(t *testing.T) {
			got := roundTrip(t, env)
			if err := ValidateRequest(got); err != nil {
				t.Fatal(err)
			}
			if size := gproto.Size(env); size > MaxFrameSize {
				t.Fatalf("valid request of %d bytes exceeds MaxFrameSize", size)
			}
		})
	}
	// The limit leaves room: the largest valid requests are under it.
	if size := gproto.Size(validRequests()["max reencrypt"]); size > 10<<10 {
		t.Errorf("largest re-encryption request is %d bytes", size)
	}
	if size := gproto.Size(validRequests()["max handoff"]); size > MaxFrameSize-512 {
		t.Errorf("largest hand-off is %d bytes", size)
	}
}

// The largest batch answers fit in a frame: MaxBatchItems Umbral cfrags
// (381 bytes), or as many refusals with the longest item reason.
func TestBatchAnswerFits(t *testing.T) {
	req := validRequests()["max batch"]
	refused := map[int]*Error{}
	for i := range MaxBatchItems {
		refused[i] = &Error{Code: Code_RATE_LIMITED, Reason: strings.Repeat("x", MaxItemReasonLen)}
	}
	for name, resp := range map[string]*Envelope{
		"cfrags":  batchAnswer(req, MaxBatchItems, 381, nil),
		"refused": batchAnswer(req, MaxBatchItems, 381, refused),
	} {
		size := gproto.Size(resp)
		if size > MaxFrameSize-1024 {
			t.Errorf("largest batch answer (%s) is %d bytes, too close to the %d-byte frame", name, size, MaxFrameSize)
		}
		if err := ValidateResponse(req, resp); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A long reason is cut to the item limit on a rune boundary.
	e := ItemError(fmt.Errorf("%w: %s", ErrRateLimited, strings.Repeat("é", MaxItemReasonLen)))
	if len(e.GetReason()) > MaxItemReasonLen || e.GetCode() != Code_RATE_LIMITED || !strings.HasSuffix(e.GetReason(), "é") {
		t.Errorf("item reason %d bytes, code %v", len(e.GetReason()), e.GetCode())
	}
	if e := ItemError(fmt.Errorf("%w: level 2 of grant 77", policy.ErrNotGranted)); e.GetReason() != policy.ErrNotGranted.Error() {
		t.Errorf("opaque item reason %q", e.GetReason())
	}
}

func TestResponseRoundTrip(t *testing.T) {
	reqs := validRequests()
	for _, tc := range []struct {
		name string
		req  *Envelope
		body isEnvelope_Body
	}{
		{"store", reqs["store"], &Envelope_StoreGrantResponse{StoreGrantResponse: &StoreGrantResponse{Receipt: fill(policy.ReceiptSize, 1)}}},
		{"handoff", reqs["handoff"], &Envelope_HandoffResponse{HandoffResponse: &HandoffResponse{Link: fill(policy.HandoffSize, 1)}}},
		{"put map", reqs["put map"], &Envelope_PutMapResponse{PutMapResponse: &PutMapResponse{}}},
		{"get map", reqs["get map"], &Envelope_GetMapResponse{GetMapResponse: &GetMapResponse{Page: fill(policy.MaxMapPageSize, 1)}}},
		{"put link", reqs["put link"], &Envelope_PutLinkResponse{PutLinkResponse: &PutLinkResponse{}}},
		{"get links", reqs["get links"], &Envelope_GetLinksResponse{GetLinksResponse: &GetLinksResponse{Links: repeat(fill(policy.HandoffSize, 1), MaxLinks)}}},
		{"revoke", reqs["revoke"], &Envelope_RevokeResponse{RevokeResponse: &RevokeResponse{Receipt: fill(policy.ReceiptSize, 1)}}},
		{"node info", reqs["node info"], &Envelope_NodeInfoResponse{NodeInfoResponse: &NodeInfoResponse{NodeInfo: fill(policy.MaxNodeInfoSize, 1)}}},
		{"reencrypt", reqs["reencrypt"], &Envelope_ReencryptResponse{ReencryptResponse: &ReencryptResponse{Level: 3, Cfrag: fill(381, 1), Grant: fill(policy.PublicGrantSize, 1)}}},
		{"batch", reqs["batch"], batchAnswer(reqs["batch"], 3, 381, map[int]*Error{1: ItemError(ErrRateLimited)}).GetBody()},
		{"max batch", reqs["max batch"], batchAnswer(reqs["max batch"], MaxBatchItems, 381, nil).GetBody()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := Respond(tc.req, tc.body)
			var buf bytes.Buffer
			if err := WriteFrame(&buf, resp); err != nil {
				t.Fatal(err)
			}
			got, err := ReadResponse(bufio.NewReader(&buf), tc.req)
			if err != nil || !gproto.Equal(got, resp) {
				t.Fatalf("ReadResponse: %v", err)
			}
		})
	}
}

// Several frames on one stream are read one at a time, and the stream's
// clean end is io.EOF.
func TestFrameSequence(t *testing.T) {
	var buf bytes.Buffer
	var sent []*Envelope
	for _, env := range validRequests() {
		if err := WriteFrame(&buf, env); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, env)
	}
	r := bufio.NewReader(&buf)
	for _, want := range sent {
		got, err := ReadRequest(r)
		if err != nil || !gproto.Equal(got, want) {
			t.Fatalf("ReadRequest: %v", err)
		}
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
}

func frame(b []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

func mustMarshal(t *testing.T, env *Envelope) []byte {
	t.Helper()
	b, err := gproto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadFrameRefusals(t *testing.T) {
	valid := mustMarshal(t, validRequests()["revoke"])
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"announced too large", protowire.AppendVarint(nil, MaxFrameSize+1), ErrTooLarge},
		{"announced huge", protowire.AppendVarint(nil, 1<<63), ErrTooLarge},
		{"length prefix overflows", fill(11, 0xff), ErrMalformed},
		{"truncated length prefix", []byte{0x80}, ErrMalformed},
		{"truncated body", frame(valid)[:len(valid)], ErrMalformed},
		{"not protobuf", frame([]byte{0xff, 0xff, 0xff}), ErrMalformed},
		{"invalid UTF-8 reason", frame(append([]byte{0xfa, 0x01, 0x04, 0x12, 0x02}, 0xff, 0xfe)), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(nil))); err != io.EOF {
		t.Errorf("empty stream: %v", err)
	}
	// A stream error is reported as such, not as the peer's fault.
	boom := errors.New("stream reset")
	if _, err := ReadFrame(bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{0x05, 0x08}), errReader{boom}))); !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("stream error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestWriteFrameTooLarge(t *testing.T) {
	env := Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{Grant: fill(MaxFrameSize, 1)}})
	if err := WriteFrame(io.Discard, env); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("WriteFrame = %v", err)
	}
}

func withVersion(env *Envelope, v uint32) *Envelope {
	c := gproto.Clone(env).(*Envelope)
	c.Version = v
	return c
}

func batch(owner, ph []byte, capsules [][]byte) *Envelope {
	return Request(9, &Envelope_BatchReencrypt{BatchReencrypt: &BatchReencryptRequest{Owner: owner, PathHash: ph, Capsules: capsules}})
}

func TestValidateRequestRefusals(t *testing.T) {
	reqs := validRequests()
	reenc := func(owner []byte, lv []*Level) *Envelope {
		return Request(9, &Envelope_Reencrypt{Reencrypt: &ReencryptRequest{Owner: owner, Levels: lv}})
	}
	dup := levels(3, 105)
	dup[2].PathHash = dup[0].PathHash
	// An envelope whose body is a field number this version does not know
	// (as a newer peer would send) decodes with an empty body.
	unknownBody := &Envelope{}
	if err := gproto.Unmarshal(append(mustMarshal(t, Request(1, nil)), 0xf2, 0x01, 0x00), unknownBody); err != nil { // field 30, empty bytes
		t.Fatal(err)
	}
	unknownField := &Envelope{}
	if err := gproto.Unmarshal(mustMarshal(t, Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{Grant: fill(minGrantSize, 1)}})), unknownField); err != nil {
		t.Fatal(err)
	}
	unknownField.GetStoreGrant().ProtoReflect().SetUnknown(append(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	// Field 1 (version) again, but length-delimited: protobuf keeps it as
	// an unknown field.
	mistyped := &Envelope{}
	if err := gproto.Unmarshal(append(mustMarshal(t, reqs["node info"]), 0x0a, 0x01, 0x00), mistyped); err != nil {
		t.Fatal(err)
	}
	unknownLevelField := gproto.Clone(reqs["reencrypt"]).(*Envelope)
	unknownLevelField.GetReencrypt().GetLevels()[1].ProtoReflect().SetUnknown(append(protowire.AppendTag(nil, 7, protowire.VarintType), 1))
	for _, tc := range []struct {
		name string
		env  *Envelope
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"version 0", withVersion(reqs["store"], 0), ErrUnsupportedVersion},
		{"version 1", withVersion(reqs["store"], 1), ErrUnsupportedVersion},
		{"version 3", withVersion(reqs["store"], 3), ErrUnsupportedVersion},
		{"no body", Request(1, nil), ErrUnknownType},
		{"unknown body", unknownBody, ErrUnknownType},
		{"unknown field", unknownField, ErrMalformed},
		{"mistyped field", mistyped, ErrMalformed},
		{"unknown field in a level", unknownLevelField, ErrMalformed},
		{"response as request", Request(1, &Envelope_StoreGrantResponse{StoreGrantResponse: &StoreGrantResponse{}}), ErrUnknownType},
		{"error as request", Request(1, &Envelope_Error{Error: &Error{Code: Code_INTERNAL}}), ErrUnknownType},
		{"empty grant", Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{}}), ErrMalformed},
		{"nil store body", Request(1, &Envelope_StoreGrant{}), ErrMalformed},
		{"grant too short", Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{Grant: fill(minGrantSize-1, 1)}}), ErrMalformed},
		{"grant too long", Request(1, &Envelope_StoreGrant{StoreGrant: &StoreGrantRequest{Grant: fill(policy.MaxGrantSize+1, 1)}}), ErrMalformed},
		{"handoff grant too long", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(policy.MaxGrantSize+1, 1)}}), ErrMalformed},
		{"handoff without map", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Link: fill(policy.HandoffOfferSize, 1)}}), ErrMalformed},
		{"handoff with a countersigned link", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Map: fill(600, 1), Link: fill(policy.HandoffSize, 1)}}), ErrMalformed},
		{"handoff without link", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Map: fill(600, 1)}}), ErrMalformed},
		{"handoff chain too long", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Map: fill(600, 1), Link: fill(policy.HandoffOfferSize, 1),
			Links: repeat(fill(policy.HandoffSize, 1), MaxChain+1)}}), ErrMalformed},
		{"handoff short link in chain", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Map: fill(600, 1), Link: fill(policy.HandoffOfferSize, 1),
			Links: [][]byte{fill(10, 1)}}}), ErrMalformed},
		{"handoff too many revocations", Request(1, &Envelope_Handoff{Handoff: &HandoffRequest{Grant: fill(628, 1), Map: fill(600, 1), Link: fill(policy.HandoffOfferSize, 1),
			Revocations: repeat(fill(policy.RevocationSize, 1), MaxHandoffRevocations+1)}}), ErrMalformed},
		{"map page too large", Request(1, &Envelope_PutMap{PutMap: &PutMapRequest{Page: fill(policy.MaxMapPageSize+1, 1)}}), ErrMalformed},
		{"map point short", Request(1, &Envelope_GetMap{GetMap: &GetMapRequest{Point: fill(31, 1), Owner: fill(33, 1)}}), ErrMalformed},
		{"map request without owner", Request(1, &Envelope_GetMap{GetMap: &GetMapRequest{Point: fill(32, 1)}}), ErrMalformed},
		{"map page out of range", Request(1, &Envelope_GetMap{GetMap: &GetMapRequest{Point: fill(32, 1), Page: policy.MaxMapPages, Owner: fill(33, 1)}}), ErrMalformed},
		{"link short", Request(1, &Envelope_PutLink{PutLink: &PutLinkRequest{Link: fill(policy.HandoffSize-1, 1)}}), ErrMalformed},
		{"links point long", Request(1, &Envelope_GetLinks{GetLinks: &GetLinksRequest{Point: fill(33, 1), Owner: fill(33, 1)}}), ErrMalformed},
		{"links request with a short owner", Request(1, &Envelope_GetLinks{GetLinks: &GetLinksRequest{Point: fill(32, 1), Owner: fill(32, 1)}}), ErrMalformed},
		{"revocation short", Request(1, &Envelope_Revoke{Revoke: &RevokeRequest{Revocation: fill(policy.RevocationSize-1, 1)}}), ErrMalformed},
		{"revocation long", Request(1, &Envelope_Revoke{Revoke: &RevokeRequest{Revocation: fill(policy.RevocationSize+1, 1)}}), ErrMalformed},
		{"owner short", reenc(fill(32, 2), levels(1, 105)), ErrMalformed},
		{"owner missing", reenc(nil, levels(1, 105)), ErrMalformed},
		{"no levels", reenc(fill(33, 2), nil), ErrMalformed},
		{"too many levels", reenc(fill(33, 2), levels(MaxLevels+1, 105)), ErrMalformed},
		{"nil level", reenc(fill(33, 2), []*Level{nil}), ErrMalformed},
		{"short path hash", reenc(fill(33, 2), []*Level{{PathHash: fill(31, 0), Capsule: fill(105, 0)}}), ErrMalformed},
		{"long path hash", reenc(fill(33, 2), []*Level{{PathHash: fill(33, 0), Capsule: fill(105, 0)}}), ErrMalformed},
		{"empty capsule", reenc(fill(33, 2), levels(2, 0)), ErrMalformed},
		{"capsule too large", reenc(fill(33, 2), levels(2, MaxCapsuleSize+1)), ErrMalformed},
		{"repeated path hash", reenc(fill(33, 2), dup), ErrMalformed},
		{"batch without capsules", batch(fill(33, 2), fill(32, 3), nil), ErrMalformed},
		{"batch too many capsules", batch(fill(33, 2), fill(32, 3), repeat(fill(105, 1), MaxBatchItems+1)), ErrMalformed},
		{"batch empty capsule", batch(fill(33, 2), fill(32, 3), [][]byte{fill(105, 1), nil}), ErrMalformed},
		{"batch capsule too large", batch(fill(33, 2), fill(32, 3), [][]byte{fill(MaxCapsuleSize+1, 1)}), ErrMalformed},
		{"batch short path hash", batch(fill(33, 2), fill(31, 3), [][]byte{fill(105, 1)}), ErrMalformed},
		{"batch without owner", batch(nil, fill(32, 3), [][]byte{fill(105, 1)}), ErrMalformed},
		{"batch answer as request", Request(1, batchAnswer(reqs["batch"], 3, 381, nil).GetBody()), ErrUnknownType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRequest(tc.env)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ValidateRequest = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "proto: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// What the node would answer.
			refusal := Refuse(tc.env, err)
			if CodeOf(err) == Code_INTERNAL || refusal.GetError().GetCode() != CodeOf(err) {
				t.Errorf("refusal code %v for %v", refusal.GetError().GetCode(), err)
			}
		})
	}
}

func TestValidateResponseRefusals(t *testing.T) {
	reqs := validRequests()
	store, reenc := reqs["store"], reqs["reencrypt"]
	receipt := &Envelope_StoreGrantResponse{StoreGrantResponse: &StoreGrantResponse{Receipt: fill(policy.ReceiptSize, 1)}}
	rr := func(level uint32, cfrag, grant []byte) *Envelope {
		return Respond(reenc, &Envelope_ReencryptResponse{ReencryptResponse: &ReencryptResponse{Level: level, Cfrag: cfrag, Grant: grant}})
	}
	otherID := Respond(store, receipt)
	otherID.RequestId++
	for _, tc := range []struct {
		name string
		req  *Envelope
		resp *Envelope
		want error
	}{
		{"version 3", store, withVersion(Respond(store, receipt), 3), ErrUnsupportedVersion},
		{"empty", store, Respond(store, nil), ErrUnknownType},
		{"other request id", store, otherID, ErrUnexpectedResponse},
		{"other type", reenc, Respond(reenc, receipt), ErrUnexpectedResponse},
		{"request as response", store, Respond(store, store.GetBody()), ErrUnexpectedResponse},
		{"short receipt", store, Respond(store, &Envelope_StoreGrantResponse{StoreGrantResponse: &StoreGrantResponse{Receipt: fill(10, 1)}}), ErrMalformed},
		{"revoke receipt short", reqs["revoke"], Respond(reqs["revoke"], &Envelope_RevokeResponse{RevokeResponse: &RevokeResponse{}}), ErrMalformed},
		{"handoff link long", reqs["handoff"], Respond(reqs["handoff"], &Envelope_HandoffResponse{HandoffResponse: &HandoffResponse{Link: fill(policy.HandoffSize+1, 1)}}), ErrMalformed},
		{"too many links", reqs["get links"], Respond(reqs["get links"], &Envelope_GetLinksResponse{GetLinksResponse: &GetLinksResponse{Links: repeat(fill(policy.HandoffSize, 1), MaxLinks+1)}}), ErrMalformed},
		{"short map page", reqs["get map"], Respond(reqs["get map"], &Envelope_GetMapResponse{GetMapResponse: &GetMapResponse{Page: fill(100, 1)}}), ErrMalformed},
		{"node info short", reqs["node info"], Respond(reqs["node info"], &Envelope_NodeInfoResponse{NodeInfoResponse: &NodeInfoResponse{NodeInfo: fill(policy.MinNodeInfoSize-1, 1)}}), ErrMalformed},
		{"node info long", reqs["node info"], Respond(reqs["node info"], &Envelope_NodeInfoResponse{NodeInfoResponse: &NodeInfoResponse{NodeInfo: fill(policy.MaxNodeInfoSize+1, 1)}}), ErrMalformed},
		{"level out of range", reenc, rr(4, fill(381, 1), fill(policy.PublicGrantSize, 1)), ErrMalformed},
		{"empty cfrag", reenc, rr(0, nil, fill(policy.PublicGrantSize, 1)), ErrMalformed},
		{"cfrag too large", reenc, rr(0, fill(MaxCFragSize+1, 1), fill(policy.PublicGrantSize, 1)), ErrMalformed},
		{"grant with kfrag", reenc, rr(0, fill(381, 1), fill(policy.PublicGrantSize+312, 1)), ErrMalformed},
		{"batch answers a reencrypt", reenc, batchAnswer(reenc, 1, 381, nil), ErrUnexpectedResponse},
		{"batch fewer items", reqs["batch"], batchAnswer(reqs["batch"], 2, 381, nil), ErrMalformed},
		{"batch more items", reqs["batch"], batchAnswer(reqs["batch"], 4, 381, nil), ErrMalformed},
		{"batch empty item", reqs["batch"], emptyItem(batchAnswer(reqs["batch"], 3, 381, nil)), ErrMalformed},
		{"batch empty cfrag", reqs["batch"], batchAnswer(reqs["batch"], 3, 0, nil), ErrMalformed},
		{"batch cfrag too large", reqs["batch"], batchAnswer(reqs["batch"], 3, MaxCFragSize+1, nil), ErrMalformed},
		{"batch item error without code", reqs["batch"], batchAnswer(reqs["batch"], 3, 381, map[int]*Error{2: {Reason: "?"}}), ErrMalformed},
		{"batch item reason too long", reqs["batch"], batchAnswer(reqs["batch"], 3, 381, map[int]*Error{0: {Code: Code_MALFORMED, Reason: strings.Repeat("x", MaxItemReasonLen+1)}}), ErrMalformed},
		{"batch grant with kfrag", reqs["batch"], withGrant(batchAnswer(reqs["batch"], 3, 381, nil), fill(policy.PublicGrantSize+312, 1)), ErrMalformed},
		{"error without code", store, Respond(store, &Envelope_Error{Error: &Error{Reason: "?"}}), ErrMalformed},
		{"error reason too long", store, Respond(store, &Envelope_Error{Error: &Error{Code: Code_INTERNAL, Reason: strings.Repeat("x", MaxReasonLen+1)}}), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateResponse(tc.req, tc.resp); !errors.Is(err, tc.want) {
				t.Fatalf("ValidateResponse = %v, want %v", err, tc.want)
			}
		})
	}
}

func emptyItem(env *Envelope) *Envelope {
	env.GetBatchReencryptResponse().Items[1] = &BatchItem{}
	return env
}

func withGrant(env *Envelope, g []byte) *Envelope {
	env.GetBatchReencryptResponse().Grant = g
	return env
}

func TestRefuseAndRemoteError(t *testing.T) {
	req := validRequests()["store"]
	for _, tc := range []struct {
		err      error
		code     Code
		sentinel error
		opaque   bool
	}{
		{fmt.Errorf("%w: grant expires 2099, node keeps 90 days", policy.ErrExpiryTooLong), Code_EXPIRY_TOO_LONG, policy.ErrExpiryTooLong, false},
		{fmt.Errorf("%w: sequence 3 ≤ 7", policy.ErrStaleSequence), Code_STALE_SEQUENCE, policy.ErrStaleSequence, false},
		{fmt.Errorf("%w: it is not signed by the grant's verifying key", policy.ErrBadKFrag), Code_BAD_KFRAG, policy.ErrBadKFrag, true},
		{fmt.Errorf("%w: r out of range", policy.ErrBadSignature), Code_BAD_SIGNATURE, policy.ErrBadSignature, true},
		{fmt.Errorf("%w: level 3 expired", policy.ErrNotGranted), Code_NOT_GRANTED, policy.ErrNotGranted, true},
		{fmt.Errorf("lmdb: MDB_CORRUPTED at page 42"), Code_INTERNAL, ErrInternal, true},
		{fmt.Errorf("%w: 1000 of 1000 used", ErrCapacity), Code_CAPACITY, ErrCapacity, false},
		{fmt.Errorf("%w: tombstone 9", policy.ErrRevoked), Code_REVOKED, policy.ErrRevoked, false},
		{policy.ErrUnknownAlgorithm, Code_UNKNOWN_ALGORITHM, policy.ErrUnknownAlgorithm, false},
		{policy.ErrBadThreshold, Code_BAD_THRESHOLD, policy.ErrBadThreshold, false},
		{policy.ErrExpired, Code_EXPIRED, policy.ErrExpired, false},
		{policy.ErrNotRecipient, Code_NOT_RECIPIENT, policy.ErrNotRecipient, true},
		{ErrRateLimited, Code_RATE_LIMITED, ErrRateLimited, false},
		{ErrAlreadyHeld, Code_ALREADY_HELD, ErrAlreadyHeld, false},
		{ErrUnavailable, Code_UNAVAILABLE, ErrUnavailable, false},
		{fmt.Errorf("%w: x", policy.ErrUnsupportedVersion), Code_UNSUPPORTED_VERSION, ErrUnsupportedVersion, false},
		{ErrTooLarge, Code_TOO_LARGE, ErrTooLarge, false},
		{policy.ErrMalformed, Code_MALFORMED, ErrMalformed, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			env := Refuse(req, tc.err)
			var buf bytes.Buffer
			if err := WriteFrame(&buf, env); err != nil {
				t.Fatal(err)
			}
			_, err := ReadResponse(bufio.NewReader(&buf), req)
			var re *RemoteError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("ReadResponse = %v, want a %v refusal", err, tc.code)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("%v does not match %v", err, tc.sentinel)
			}
			if leaked := re.Reason == tc.err.Error(); leaked == tc.opaque && tc.err.Error() != sentinelOf(tc.code).Error() {
				t.Errorf("reason %q (opaque=%v)", re.Reason, tc.opaque)
			}
		})
	}
	long := Refuse(req, fmt.Errorf("%w: %s", policy.ErrExpired, strings.Repeat("é", MaxReasonLen)))
	if r := long.GetError().GetReason(); len(r) > MaxReasonLen || !strings.HasSuffix(r, "é") {
		t.Errorf("long reason cut badly: %d bytes", len(r))
	}
	re := &RemoteError{Code: Code_EXPIRED, Reason: "evil\x1b[2Jterminal"}
	if strings.ContainsRune(re.Error(), 0x1b) {
		t.Error("control characters from a peer reach the error text")
	}
	if (&RemoteError{Code: 99}).Is(policy.ErrExpired) {
		t.Error("unknown code matched a sentinel")
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, env := range validRequests() {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, env); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0x80})
	f.Add(protowire.AppendVarint(nil, MaxFrameSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			if CodeOf(err) == Code_INTERNAL && err != io.EOF {
				t.Fatalf("decoding error %v has no code", err)
			}
			return
		}
		// A valid request survives re-encoding.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, env); err != nil {
			t.Fatal(err)
		}
		again, err := ReadRequest(bufio.NewReader(&buf))
		if err != nil || !gproto.Equal(again, env) {
			t.Fatalf("re-encoded request: %v", err)
		}
	})
}

func FuzzValidateResponse(f *testing.F) {
	reqs := validRequests()
	req := reqs["reencrypt"]
	ok := Respond(req, &Envelope_ReencryptResponse{ReencryptResponse: &ReencryptResponse{Level: 1, Cfrag: fill(381, 1), Grant: fill(policy.PublicGrantSize, 1)}})
	var buf bytes.Buffer
	if err := WriteFrame(&buf, ok); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)), req)
		var re *RemoteError
		if err != nil && !errors.As(err, &re) {
			return
		}
		if env.GetRequestId() != req.GetRequestId() {
			t.Fatal("accepted a response to another request")
		}
		if r := env.GetReencryptResponse(); r != nil && int(r.GetLevel()) >= len(req.GetReencrypt().GetLevels()) {
			t.Fatal("accepted a level out of range")
		}
	})
}
