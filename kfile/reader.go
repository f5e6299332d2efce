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
// Read returns a chunk's plaintext only after the chunk authenticated, and
// io.EOF only after the final chunk authenticated and the underlying
// reader ended right after it. Any error is sticky.
type Reader struct {
	r       io.Reader
	s       *stream
	ct      []byte // EncryptedChunkSize+1: one chunk and one byte of look-ahead
	ahead   bool   // ct[EncryptedChunkSize] holds the next chunk's first byte
	pt      []byte // the current chunk's plaintext, cap ChunkSize
	off     int    // bytes of pt already returned
	counter uint64 // index of the next chunk
	done    bool   // the final chunk was read
	err     error
}

// NewReader returns a Reader of the body that follows h in r (call
// ReadHeader first). It fails with ErrWrongKey, before reading anything,
// if dataKey does not authenticate h.
func NewReader(r io.Reader, h *Header, dataKey []byte) (*Reader, error) {
	key, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, err
	}
	s, err := newStream(key)
	clear(key[:])
	if err != nil {
		return nil, err
	}
	return &Reader{
		r:  r,
		s:  s,
		ct: make([]byte, EncryptedChunkSize+1),
		pt: make([]byte, 0, ChunkSize),
	}, nil
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

// next reads and opens the next chunk. Whether it is the final one follows
// from the stream: a chunk followed by at least one more byte must not be
// final, a chunk at the end of the stream must be. When a chunk fails, the
// other flag is tried only to tell the user what happened (a stream cut at
// a chunk boundary, data appended after the end); its plaintext is never
// used.
func (r *Reader) next() error {
	r.pt, r.off = r.pt[:0], 0
	start := 0
	if r.ahead {
		r.ct[0] = r.ct[EncryptedChunkSize]
		start = 1
	}
	n, err := io.ReadFull(r.r, r.ct[start:])
	n += start
	switch {
	case err == nil:
		r.ahead = true
		n = EncryptedChunkSize
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		r.ahead = false
	default:
		return fmt.Errorf("kfile: failed to read chunk %d: %w", r.counter, err)
	}
	final := !r.ahead
	if final && n < TagSize {
		if n == 0 {
			return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, r.counter)
		}
		return fmt.Errorf("%w: chunk %d is %d bytes, shorter than its tag", ErrTruncated, r.counter, n)
	}
	ct := r.ct[:n]
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

// diagnose explains why chunk r.counter did not authenticate.
func (r *Reader) diagnose(ct []byte, final bool) error {
	if len(ct) == EncryptedChunkSize {
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
