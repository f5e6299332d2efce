package kfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/kadre/kadre/policy"
)

// Writer encrypts a file body in chunks. It is an io.WriteCloser and an
// io.ReaderFrom (io.Copy into it reads straight into its chunk buffer).
// Close must be called: it writes the final chunk and the last group's
// signature, without which a reader reports the file as truncated.
//
// Each group of GroupChunks chunks is hashed, signed and written, with its
// signature, on a goroutine of its own while the next group is encrypted,
// so that the two run on two cores; an error writing a group is returned
// by the Write or Close that completes the group after it.
type Writer struct {
	w       io.Writer
	s       *stream
	sigs    *stream // the writing goroutine's: seals the signatures
	sg      *signing
	buf     []byte // len n of pending plaintext, cap EncryptedChunkSize
	grp     []byte // the group's encrypted chunks so far, cap fullGroup
	spare   *[]byte
	cur     *[]byte // grp's pooled buffer
	pending chan groupWritten
	counter uint64
	err     error // sticky: after a failed write the output is unusable
	closed  bool
}

// groupWritten is the end of a group's signing and writing.
type groupWritten struct {
	buf *[]byte
	err error
}

// groupBuffers holds group buffers (ciphertext only) between files.
var groupBuffers = sync.Pool{New: func() any { b := make([]byte, 0, fullGroup+1); return &b }}

// NewWriter writes h to w and returns a Writer for the body, signed by the
// header's author. h must come from NewHeader (a parsed header has no
// author) and dataKey be the key NewHeader returned with it.
func NewWriter(w io.Writer, h *Header, dataKey []byte) (*Writer, error) {
	if h.author == nil {
		return nil, errors.New("kfile: only a header made by NewHeader can start a file (it knows the author who signs)")
	}
	key, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, err
	}
	s, err := newStream(key)
	if err != nil {
		clear(key[:])
		return nil, err
	}
	sigs, err := newStream(key)
	clear(key[:])
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h.raw); err != nil {
		return nil, fmt.Errorf("kfile: failed to write header: %w", err)
	}
	sg := newSigning(h, policy.PublicKeyOf(h.author.Signer.VerifyingKey()), h.author.Signer)
	cur := groupBuffers.Get().(*[]byte)
	return &Writer{w: w, s: s, sigs: sigs, sg: sg, buf: make([]byte, 0, EncryptedChunkSize), cur: cur, grp: (*cur)[:0]}, nil
}

// Write encrypts p. A full chunk is sealed and written only once the
// next byte arrives, because only then is it known not to be the last.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	total := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.flush(false); err != nil {
				return total, err
			}
		}
		// A whole chunk of p that more bytes follow is sealed straight
		// from p into the buffer, saving the copy.
		for len(w.buf) == 0 && len(p) > ChunkSize {
			if err := w.seal(p[:ChunkSize], false); err != nil {
				return total, err
			}
			p = p[ChunkSize:]
			total += ChunkSize
		}
		n := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		total += n
	}
	return total, nil
}

// ReadFrom encrypts everything r yields until io.EOF, reading directly
// into the chunk buffer. It does not close the Writer.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	var total int64
	for {
		if len(w.buf) == ChunkSize {
			// Look ahead into the tag's room; those bytes are saved before
			// the seal overwrites them.
			var ahead [TagSize]byte
			n, err := r.Read(w.buf[ChunkSize:EncryptedChunkSize])
			copy(ahead[:], w.buf[ChunkSize:ChunkSize+n])
			if n > 0 {
				if ferr := w.flush(false); ferr != nil {
					return total, ferr
				}
				w.buf = append(w.buf, ahead[:n]...)
				total += int64(n)
			}
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			continue
		}
		n, err := r.Read(w.buf[len(w.buf):ChunkSize])
		w.buf = w.buf[:len(w.buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close seals and writes the final chunk (the pending bytes: between one
// and ChunkSize of them, or none for an empty file) and wipes the buffer.
// It does not close the underlying writer. Calling it again is a no-op that
// returns the first error, if any.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	err := w.flush(true)
	if werr := w.wait(); err == nil {
		err = werr
	}
	clear(w.buf[:cap(w.buf)])
	for _, b := range []*[]byte{w.cur, w.spare} {
		if b != nil {
			groupBuffers.Put(b)
		}
	}
	w.cur, w.spare, w.grp = nil, nil, nil
	return err
}

func (w *Writer) check() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// flush seals the pending bytes in place as chunk w.counter and writes them.
func (w *Writer) flush(final bool) error {
	return w.seal(w.buf, final)
}

// seal encrypts pt, which is either the pending bytes or a whole chunk of
// the caller's data, as chunk w.counter into the group buffer, and writes
// the group out when it is complete.
func (w *Writer) seal(pt []byte, final bool) error {
	if !final && w.counter == math.MaxUint64 {
		// Unreachable for files below 2^80 bytes; checked so that a nonce
		// can never repeat.
		w.err = errors.New("kfile: file too large")
		return w.err
	}
	ct, err := w.s.seal(w.grp[len(w.grp):], pt, w.counter, final)
	if err != nil {
		w.err = err
		return err
	}
	w.grp = w.grp[:len(w.grp)+len(ct)]
	w.counter++
	w.buf = w.buf[:0]
	if final || w.counter%GroupChunks == 0 {
		return w.writeGroup(final)
	}
	return nil
}

// writeGroup hands the group in the buffer to a goroutine that signs it
// and writes it with its sealed signature, after the previous group's
// goroutine finished; the final group is written before it returns.
func (w *Writer) writeGroup(final bool) error {
	if err := w.wait(); err != nil {
		return err
	}
	g := (w.counter - 1) / GroupChunks
	buf, grp := w.cur, w.grp
	if w.spare == nil {
		w.spare = groupBuffers.Get().(*[]byte)
	}
	w.cur, w.spare = w.spare, nil
	w.grp = (*w.cur)[:0]
	w.pending = make(chan groupWritten, 1)
	job := func() groupWritten {
		sig, err := w.sg.sign(g, final, groupHash(grp))
		if err == nil {
			grp, err = w.sigs.sealSig(grp, sig[:], g, final)
		}
		if err == nil {
			if _, werr := w.w.Write(grp); werr != nil {
				err = fmt.Errorf("kfile: failed to write group %d: %w", g, werr)
			}
		}
		return groupWritten{buf: buf, err: err}
	}
	if final {
		w.pending <- job()
		return w.wait()
	}
	go func(ch chan<- groupWritten) { ch <- job() }(w.pending)
	return nil
}

// wait waits for the group being written, takes its buffer back as the
// spare and returns its error (sticky).
func (w *Writer) wait() error {
	if w.pending == nil {
		return w.err
	}
	d := <-w.pending
	w.pending = nil
	w.spare = d.buf
	if d.err != nil && w.err == nil {
		w.err = d.err
	}
	return w.err
}
