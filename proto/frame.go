package proto

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
)

// Wire constants (SPEC.md §4.2).
const (
	// ProtocolVersion is Envelope.version. Version 2 added holder maps,
	// hand-off links and owner-only StoreGrant (SPEC.md §4).
	ProtocolVersion = 2

	// MaxFrameSize bounds the protobuf bytes of one frame (not counting the
	// length prefix). The largest valid message, a hand-off carrying a
	// largest map page, chain and revocations, is under 16 KiB (SPEC.md
	// §4.5).
	MaxFrameSize = 16 << 10
)

// Reader is what ReadFrame reads from: a buffered stream (bufio.Reader),
// because the length prefix is read a byte at a time. ReadFrame may buffer
// past the frame, so a stream must not be handed to another reader after
// its Reader was used.
type Reader = protodelim.Reader

var marshalOptions = gproto.MarshalOptions{Deterministic: true}

// WriteFrame writes env as one frame: uvarint(len) ‖ protobuf. It refuses a
// message larger than MaxFrameSize, which the peer would refuse anyway. It
// does not validate env; senders build messages with the constructors
// (Request, Respond, Refuse).
func WriteFrame(w io.Writer, env *Envelope) error {
	b, err := marshalOptions.Marshal(env)
	if err != nil {
		return fmt.Errorf("proto: failed to encode message: %w", err)
	}
	if len(b) > MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(b), MaxFrameSize)
	}
	frame := protowire.AppendVarint(make([]byte, 0, len(b)+3), uint64(len(b)))
	frame = append(frame, b...)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("proto: failed to write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame and decodes its Envelope. It returns io.EOF if
// the stream ends cleanly before the frame, ErrTooLarge if the announced
// length exceeds MaxFrameSize (without reading or allocating it), and
// ErrMalformed for a truncated frame, a bad length prefix or bytes that are
// not an Envelope. It does not check limits or types: call ValidateRequest
// or ValidateResponse (or use ReadRequest, ReadResponse).
func ReadFrame(r Reader) (*Envelope, error) {
	env := new(Envelope)
	err := protodelim.UnmarshalOptions{MaxSize: MaxFrameSize}.UnmarshalFrom(r, env)
	var tooLarge *protodelim.SizeTooLargeError
	switch {
	case err == nil:
		return env, nil
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, tooLarge.Size, MaxFrameSize)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: truncated frame", ErrMalformed)
	case errors.Is(err, gproto.Error):
		// Every error of the protobuf runtime wraps gproto.Error: a bad
		// length prefix or bytes that do not decode as an Envelope.
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	default:
		// The stream failed (reset, deadline): not the peer's encoding.
		return nil, fmt.Errorf("proto: failed to read frame: %w", err)
	}
}

// ReadRequest reads a frame and validates it as a request. On a validation
// error it also returns the decoded envelope (when there is one) so that
// the node can answer with Refuse, echoing the request id.
func ReadRequest(r Reader) (*Envelope, error) {
	env, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return env, ValidateRequest(env)
}

// ReadResponse reads a frame and validates it as the response to req. A
// valid refusal is returned as a *RemoteError.
func ReadResponse(r Reader, req *Envelope) (*Envelope, error) {
	env, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	if err := ValidateResponse(req, env); err != nil {
		return nil, err
	}
	if e := env.GetError(); e != nil {
		return env, &RemoteError{Code: e.GetCode(), Reason: e.GetReason()}
	}
	return env, nil
}
