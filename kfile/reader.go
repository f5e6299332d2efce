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
// after it. Any error is sticky. In version 2 the next group is read and
// its signature checked on a goroutine of its own while the current one
// is decrypted, so that the two run on two cores; it ends by itself if the
// Reader is abandoned.
type Reader struct {
	r  io.Reader
	s  *stream // decrypts the chunks
	bs *stream // the group reader's: opens signatures, diagnoses
	sh shape
	sg *signing // nil for version 1

	g       group
	cur     *[]byte          // the current group's bytes (pooled)
	spare   *[]byte          // a free group buffer
	pending chan groupResult // the next group, being read; nil if none
	scratch []byte           // the group reader's room for one chunk
	hasher  groupHasher      // the group reader's hash of the group it reads

	pt      []byte // the current chunk's plaintext, cap ChunkSize
	off     int    // bytes of pt already returned
	counter uint64 // index of the next chunk
	done    bool   // the final chunk was read
	err     error
}

// group is the group a reader holds: its encrypted chunks at the start of
// its buffer.
type group struct {
	index  uint64 // group index
	first  uint64 // index of its first chunk
	n      uint64 // chunks in it
	last   int    // encrypted size of its last chunk
	final  bool   // the file's last group
	loaded bool
	// ahead is set when the stream had at least one byte after the group:
	// that byte, aheadByte, starts the next group.
	ahead     bool
	aheadByte byte
}

// groupResult is a group read (and checked) into buf.
type groupResult struct {
	g   group
	buf *[]byte
	err error
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
	key, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, err
	}
	bs, err := newStream(key)
	clear(key[:])
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, s: s, bs: bs, sh: h.shape(), sg: sg, pt: make([]byte, 0, ChunkSize)}, nil
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

// next opens the next chunk, moving to the next group first when the
// current one is used up.
func (r *Reader) next() error {
	r.pt, r.off = r.pt[:0], 0
	if !r.g.loaded || r.counter == r.g.first+r.g.n {
		if err := r.advance(); err != nil {
			return err
		}
	}
	j := r.counter - r.g.first
	final := r.g.final && j == r.g.n-1
	size := EncryptedChunkSize
	if j == r.g.n-1 {
		size = r.g.last
	}
	ct := (*r.cur)[:cap(*r.cur)][int(j)*EncryptedChunkSize:][:size]
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
	if final {
		r.release()
	}
	return nil
}

// advance makes the next group current: the one being read in the
// background, or (the first group, and in version 1) one read now. Then
// it starts reading the group after it.
func (r *Reader) advance() error {
	var res groupResult
	if r.pending != nil {
		res = <-r.pending
		r.pending = nil
	} else {
		index, first := uint64(0), r.counter
		if r.g.loaded {
			index = r.g.index + 1
		}
		res = r.readGroup(r.takeBuffer(), index, first, r.g.ahead, r.g.aheadByte)
	}
	if r.cur != nil {
		r.spare = r.cur
	}
	r.cur, r.g = res.buf, res.g
	if res.err != nil {
		return res.err
	}
	if r.sg != nil && !r.g.final {
		buf := r.takeBuffer()
		g := r.g
		r.pending = make(chan groupResult, 1)
		go func(ch chan<- groupResult) {
			ch <- r.readGroup(buf, g.index+1, g.first+g.n, g.ahead, g.aheadByte)
		}(r.pending)
	}
	return nil
}

// takeBuffer returns the spare group buffer, or a pooled one.
func (r *Reader) takeBuffer() *[]byte {
	if b := r.spare; b != nil {
		r.spare = nil
		return b
	}
	return groupBuffers.Get().(*[]byte)
}

// release returns the group buffers to the pool once the body is read.
func (r *Reader) release() {
	for _, b := range []*[]byte{r.cur, r.spare} {
		if b != nil {
			groupBuffers.Put(b)
		}
	}
	r.cur, r.spare = nil, nil
}

// readGroup reads group index, whose first chunk is first, into buf and,
// in version 2, checks the writer's signature over it before any of its
// chunks is opened. Whether it is the final group follows from the
// stream: a group followed by at least one more byte must not be final, a
// group at the end of the stream must be. It runs on the group reader's
// goroutine and touches only buf, r.r, r.bs, r.sg, r.scratch and r.hasher.
func (r *Reader) readGroup(buf *[]byte, index, first uint64, ahead bool, aheadByte byte) groupResult {
	full := int(r.sh.full())
	ct := (*buf)[:full+1]
	res := groupResult{buf: buf, g: group{index: index, first: first, loaded: true}}
	fail := func(err error) groupResult { res.err = err; return res }
	start := 0
	if ahead {
		ct[0] = aheadByte
		start = 1
	}
	var gh *groupHasher
	if r.sg != nil {
		gh = &r.hasher
		gh.reset()
	}
	n, err := readHashing(r.r, ct, start, gh, int(r.sh.sigSize))
	switch {
	case err == nil:
		res.g.ahead, res.g.aheadByte = true, ct[full]
		n = full
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
	default:
		return fail(fmt.Errorf("kfile: failed to read chunk %d: %w", first, err))
	}
	final := !res.g.ahead
	res.g.final = final
	if r.scratch == nil {
		r.scratch = make([]byte, 0, ChunkSize)
	}
	sig := int(r.sh.sigSize)
	q := n - sig // the group's chunks
	switch {
	case n == 0:
		return fail(fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, first))
	case q < TagSize:
		if err := cutAt(r.bs, ct[:n], first, r.scratch); sig > 0 && err != nil {
			return fail(err)
		}
		return fail(fmt.Errorf("%w: chunk %d is %d bytes, shorter than its tag", ErrTruncated, first, max(q, n)))
	}
	before := (q - 1) / EncryptedChunkSize
	res.g.n, res.g.last = uint64(before+1), q-before*EncryptedChunkSize
	if res.g.last < TagSize {
		if err := cutAt(r.bs, ct[:n], first, r.scratch); sig > 0 && err != nil {
			return fail(err)
		}
		return fail(fmt.Errorf("%w: chunk %d is %d bytes, shorter than its tag", ErrTruncated, first+uint64(before), res.g.last))
	}
	if final && res.g.last == TagSize && (before > 0 || first > 0) {
		return fail(fmt.Errorf("%w: empty final chunk after %d full chunks", ErrCorrupt, first+uint64(before)))
	}
	if r.sg != nil {
		res.err = r.checkGroup(&res.g, gh, ct[:q], ct[q:n])
	}
	return res
}

// readPiece is how much readHashing reads at once: well below the size
// from which Go's memmove bypasses the cache (1 MiB on amd64), so that
// the hash, then the cipher, read each piece from cache.
const readPiece = EncryptedChunkSize

// readHashing fills ct[n:] from r piece by piece, hashing with gh (if not
// nil) every batch that is surely a group's chunk: sig+1 bytes before the
// end of what was read may be the signature and the next group's first
// byte. It returns the bytes in ct and, like io.ReadFull, nil only if ct
// is full.
func readHashing(r io.Reader, ct []byte, n int, gh *groupHasher, sig int) (int, error) {
	for n < len(ct) {
		k, err := io.ReadFull(r, ct[n:min(n+readPiece, len(ct))])
		n += k
		if gh != nil {
			gh.update(ct[:max(0, n-sig-1)])
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// checkGroup opens the sealed signature of group g and verifies it over
// the group's encrypted chunks (on the group reader's goroutine).
func (r *Reader) checkGroup(g *group, gh *groupHasher, chunks, sealed []byte) error {
	var buf [GroupSigSize]byte
	sig, ok := r.bs.openSig(buf[:0], sealed, g.index, g.final)
	if !ok {
		if _, other := r.bs.openSig(buf[:0], sealed, g.index, !g.final); other {
			if g.final {
				return fmt.Errorf("%w: the body ends after group %d without the final group", ErrTruncated, g.index)
			}
			return fmt.Errorf("%w: data after the final group %d", ErrCorrupt, g.index)
		}
		if g.final {
			if err := cutAt(r.bs, chunks[:len(chunks)+len(sealed)], g.first, r.scratch); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: the signature of group %d", ErrCorrupt, g.index)
	}
	if err := r.sg.verify(g.index, g.final, gh.sum(chunks), sig); err != nil {
		return badGroup(r.bs, r.sg, g.index, chunks, g.first, g.n, g.last, g.final, r.scratch)
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
