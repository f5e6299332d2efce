package kfile

import (
	"errors"
	"fmt"
	"io"
)

// Reader decrypts a file body as a stream. It is an io.Reader and an
// io.WriterTo. The body runs to the end of the underlying reader: a body
// embedded in a longer stream must be delimited by the caller (for example
// with io.LimitReader).
//
// Read returns a chunk's plaintext only after its group's writer signature
// (version 2) and the chunk itself authenticated, and io.EOF only after
// the final chunk authenticated and the underlying reader ended right
// after it. Any error is sticky.
type Reader struct {
	r  io.Reader
	s  *stream
	sh shape
	sg *signing // nil for version 1
	g  group

	ct      []byte // one full group and one byte of look-ahead
	ahead   bool   // ct[sh.full()] holds the next group's first byte
	pt      []byte // the current chunk's plaintext, cap ChunkSize
	off     int    // bytes of pt already returned
	counter uint64 // index of the next chunk
	done    bool   // the final chunk was read
	err     error
}

// group is the group a reader holds: its encrypted chunks in ct[:chunks].
type group struct {
	index  uint64 // group index
	first  uint64 // index of its first chunk
	n      uint64 // chunks in it
	last   int    // encrypted size of its last chunk
	final  bool   // the file's last group
	loaded bool
}

// NewReader returns a Reader of the body that follows h in r (call
// ReadHeader first). It fails with ErrWrongKey, before reading anything,
// if dataKey does not authenticate h, and with the errors of Open if the
// header's signature or writer does not check.
func NewReader(r io.Reader, h *Header, dataKey []byte) (*Reader, error) {
	s, sg, err := h.bodyStream(dataKey)
	if err != nil {
		return nil, err
	}
	sh := h.shape()
	return &Reader{
		r:  r,
		s:  s,
		sh: sh,
		sg: sg,
		ct: make([]byte, sh.full()+1),
		pt: make([]byte, 0, ChunkSize),
	}, nil
}

// bodyStream opens the header and returns the body's stream and, for
// version 2, what its group signatures are checked with.
func (h *Header) bodyStream(dataKey []byte) (*stream, *signing, error) {
	c, err := h.Open(dataKey)
	if err != nil {
		return nil, nil, err
	}
	key, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, nil, err
	}
	s, err := newStream(key)
	clear(key[:])
	if err != nil {
		return nil, nil, err
	}
	if h.version == 1 {
		return s, nil, nil
	}
	return s, newSigning(h, c.Writer, nil), nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for r.off == len(r.pt) {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.pt[r.off:])
	r.off += n
	return n, nil
}

// WriteTo implements io.WriterTo: it writes every chunk's plaintext to w as
// soon as the chunk authenticated, without an intermediate copy.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.off < len(r.pt) {
			n, err := w.Write(r.pt[r.off:])
			r.off += n
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if r.err != nil {
			return total, r.err
		}
		if r.done {
			return total, nil
		}
		r.err = r.next()
	}
}

// next opens the next chunk, reading and checking its group first when
// the current one is used up.
func (r *Reader) next() error {
	r.pt, r.off = r.pt[:0], 0
	if !r.g.loaded || r.counter == r.g.first+r.g.n {
		if err := r.readGroup(); err != nil {
			return err
		}
	}
	j := r.counter - r.g.first
	final := r.g.final && j == r.g.n-1
	size := EncryptedChunkSize
	if j == r.g.n-1 {
		size = r.g.last
	}
	ct := r.ct[int(j)*EncryptedChunkSize:][:size]
	pt, ok := r.s.open(r.pt, ct, r.counter, final)
	if !ok {
		r.pt = r.pt[:0]
		return r.diagnose(ct, final)
	}
	if !final && r.counter == 1<<64-1 {
		return fmt.Errorf("%w: too many chunks", ErrCorrupt)
	}
	r.pt = pt
	r.counter++
	r.done = final
	return nil
}

// readGroup reads the next group into ct and, in version 2, checks the
// writer's signature over it before any of its chunks is opened. Whether
// it is the final group follows from the stream: a group followed by at
// least one more byte must not be final, a group at the end of the stream
// must be.
func (r *Reader) readGroup() error {
	index := uint64(0)
	if r.g.loaded {
		index = r.g.index + 1
	}
	start := 0
	full := int(r.sh.full())
	if r.ahead {
		r.ct[0] = r.ct[full]
		start = 1
	}
	n, err := io.ReadFull(r.r, r.ct[start:])
	n += start
	switch {
	case err == nil:
		r.ahead = true
		n = full
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		r.ahead = false
	default:
		return fmt.Errorf("kfile: failed to read chunk %d: %w", r.counter, err)
	}
	final := !r.ahead
	g := group{index: index, first: r.counter, final: final, loaded: true}
	sig := int(r.sh.sigSize)
	q := n - sig // the group's chunks
	switch {
	case n == 0:
		return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, r.counter)
	case q < TagSize:
		if err := cutAt(r.s, r.ct[:n], r.counter, r.pt); sig > 0 && err != nil {
			return err
		}
		return fmt.Errorf("%w: chunk %d is %d bytes, shorter than its tag", ErrTruncated, r.counter, max(q, n))
	}
	before := (q - 1) / EncryptedChunkSize
	g.n, g.last = uint64(before+1), q-before*EncryptedChunkSize
	if g.last < TagSize {
		if err := cutAt(r.s, r.ct[:n], r.counter, r.pt); sig > 0 && err != nil {
			return err
		}
		return fmt.Errorf("%w: chunk %d is %d bytes, shorter than its tag", ErrTruncated, r.counter+uint64(before), g.last)
	}
	if final && g.last == TagSize && (before > 0 || r.counter > 0) {
		return fmt.Errorf("%w: empty final chunk after %d full chunks", ErrCorrupt, r.counter+uint64(before))
	}
	r.g = g
	if r.sg == nil {
		return nil
	}
	return r.checkGroup(r.ct[:q], r.ct[q:n])
}

// checkGroup opens the sealed signature of group r.g and verifies it over
// the group's encrypted chunks.
func (r *Reader) checkGroup(chunks, sealed []byte) error {
	g := &r.g
	var buf [GroupSigSize]byte
	sig, ok := r.s.openSig(buf[:0], sealed, g.index, g.final)
	if !ok {
		if _, other := r.s.openSig(buf[:0], sealed, g.index, !g.final); other {
			if g.final {
				return fmt.Errorf("%w: the body ends after group %d without the final group", ErrTruncated, g.index)
			}
			return fmt.Errorf("%w: data after the final group %d", ErrCorrupt, g.index)
		}
		if g.final {
			if err := cutAt(r.s, r.ct[:len(chunks)+len(sealed)], g.first, r.pt); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: the signature of group %d", ErrCorrupt, g.index)
	}
	if err := r.sg.verify(g.index, g.final, chunks, sig); err != nil {
		return badGroup(r.s, r.sg, g.index, chunks, g.first, g.n, g.last, g.final, r.pt)
	}
	return nil
}

// diagnose explains why chunk r.counter did not authenticate.
func (r *Reader) diagnose(ct []byte, final bool) error {
	if len(ct) == EncryptedChunkSize && r.sg == nil {
		scratch := r.pt[:0]
		_, otherOK := r.s.open(scratch, ct, r.counter, !final)
		clear(scratch[:cap(scratch)])
		switch {
		case otherOK && final:
			return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, r.counter+1)
		case otherOK && !final:
			return fmt.Errorf("%w: data after the final chunk %d", ErrCorrupt, r.counter)
		}
	}
	return fmt.Errorf("%w: chunk %d", ErrCorrupt, r.counter)
}
