// Package proto is kadre's wire format: the protobuf messages of every RPC
// (store a grant, re-encrypt, revoke, node info, hand-off, and the Error
// refusal), their framing on a libp2p stream, and the hard limits checked
// after decoding. SPEC.md §4 documents every message, field
// and limit.
//
// A stream carries one request and one response, each one Envelope in one
// frame: uvarint(length) ‖ protobuf bytes, length ≤ MaxFrameSize, exactly
// like libp2p's own protocols (go-msgio varint framing), written and read
// with google.golang.org/protobuf's protodelim. Entry points:
//
//	client: Request → WriteFrame; ReadResponse (ReadFrame + ValidateResponse)
//	node:   ReadRequest (ReadFrame + ValidateRequest) → handler → Respond or Refuse → WriteFrame
//
// The generated code (kadre.pb.go) is committed; scripts/gen-proto.sh
// regenerates it from kadre.proto.
//
// # Security
//
// Records travel as opaque bytes holding their canonical signed encoding
// (package policy); signatures never cover protobuf, whose encoding is not
// unique, so re-encoding a message can never invalidate or forge one. The
// reader refuses an announced length above MaxFrameSize before allocating,
// and ValidateRequest/ValidateResponse bound every list and byte field, so a
// peer cannot make a node allocate more than a frame. Messages from a newer
// protocol (an unknown body) are refused as UNKNOWN_TYPE and any other
// unknown field as MALFORMED. Refusals carry a code and, for failed
// signature or kfrag checks, "not granted" and internal errors, only the
// code's fixed text, so a remote party learns nothing about which check
// failed or what a node holds.
package proto
