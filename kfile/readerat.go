package kfile

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReaderAt gives random access to the plaintext of a file: ReadAt reads
// only the groups it touches, checks each one's writer signature (version
// 2) and decrypts only the chunks it needs. It is an io.ReaderAt and is
// safe for concurrent use; calls are serialized over one group buffer,
// which also keeps the last group and chunk read so that small sequential
// reads check each group and decrypt each chunk once.
type ReaderAt struct {
	ra     io.ReaderAt
	s      *stream
	sh     shape
	sg     *signing // nil for version 1
	base   int64    // header length: the offset of chunk 0
	chunks int64
	size   int64 // plaintext size, authenticated by NewReaderAt

	mu     sync.Mutex
	ct     []byte // the group in hand: its chunks and signature
	group  int64  // index of the group in ct, or -1
	pt     []byte // plaintext of the chunk cached, cap ChunkSize
	cached int64  // index of the chunk in pt, or -1
}

// NewReaderAt returns a ReaderAt over the file in ra, size bytes long,
// header included (h as ReadHeader parsed it from the start of ra). The
// plaintext size follows from size; NewReaderAt refuses sizes no file can
// have and authenticates the final group, so that Size is the true size
// and a file cut at a chunk or group boundary is refused here, not at
// some later read.
func NewReaderAt(ra io.ReaderAt, size int64, h *Header, dataKey []byte) (*ReaderAt, error) {
	sh := h.shape()
	chunks, pt, err := sh.layout(size - int64(len(h.raw)))
	if err != nil {
		return nil, err
	}
	s, sg, err := h.bodyStream(dataKey)
	if err != nil {
		return nil, err
	}
	r := &ReaderAt{
		ra:     ra,
		s:      s,
		sh:     sh,
		sg:     sg,
		base:   int64(len(h.raw)),
		chunks: chunks,
		size:   pt,
		ct:     make([]byte, sh.full()),
		group:  -1,
		pt:     make([]byte, 0, ChunkSize),
		cached: -1,
	}
	if err := r.load(chunks - 1); err != nil {
		return nil, err
	}
	return r, nil
}

// Size returns the plaintext size.
func (r *ReaderAt) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt. Every byte it returns was authenticated as
// part of its chunk at its position, and signed by the writer.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("kfile: negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) && off < r.size {
		i := off / ChunkSize
		if err := r.load(i); err != nil {
			return n, err
		}
		k := copy(p[n:], r.pt[off-i*ChunkSize:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunkSize is the encrypted size of chunk i.
func (r *ReaderAt) chunkSize(i int64) int64 {
	if i == r.chunks-1 {
		return r.size - i*ChunkSize + TagSize
	}
	return EncryptedChunkSize
}

// load decrypts chunk i into r.pt, after its group's signature checked;
// the last chunk must carry the final flag, every other chunk must not.
func (r *ReaderAt) load(i int64) error {
	if r.cached == i {
		return nil
	}
	r.cached = -1
	r.pt = r.pt[:0]
	g := i / r.sh.group
	if err := r.loadGroup(g); err != nil {
		return err
	}
	final := i == r.chunks-1
	start := (i - g*r.sh.group) * EncryptedChunkSize
	ct := r.ct[start : start+r.chunkSize(i)]
	pt, ok := r.s.open(r.pt[:0], ct, uint64(i), final)
	if !ok {
		if final && len(ct) == EncryptedChunkSize {
			_, otherOK := r.s.open(r.pt[:0], ct, uint64(i), false)
			clear(r.pt[:cap(r.pt)])
			if otherOK {
				return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, i+1)
			}
		}
		return fmt.Errorf("%w: chunk %d", ErrCorrupt, i)
	}
	r.pt = pt
	r.cached = i
	return nil
}

// loadGroup reads group g into r.ct and checks its signature.
func (r *ReaderAt) loadGroup(g int64) error {
	if r.group == g {
		return nil
	}
	r.group = -1
	first := g * r.sh.group
	last := min(first+r.sh.group, r.chunks) - 1
	var n int64
	for i := first; i <= last; i++ {
		n += r.chunkSize(i)
	}
	ct := r.ct[:n+r.sh.sigSize]
	m, err := r.ra.ReadAt(ct, r.base+r.sh.chunkOffset(first))
	if m < len(ct) {
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: group %d ends early (the file shrank?)", ErrTruncated, g)
		}
		return fmt.Errorf("kfile: failed to read group %d: %w", g, err)
	}
	if r.sg != nil {
		final := last == r.chunks-1
		var buf [GroupSigSize]byte
		sig, ok := r.s.openSig(buf[:0], ct[n:], uint64(g), final)
		if !ok {
			if _, other := r.s.openSig(buf[:0], ct[n:], uint64(g), !final); other && final {
				return fmt.Errorf("%w: the body ends after group %d without the final group", ErrTruncated, g)
			}
			if final {
				if err := cutAt(r.s, ct, uint64(first), r.pt); err != nil {
					return err
				}
			}
			return fmt.Errorf("%w: the signature of group %d", ErrCorrupt, g)
		}
		if err := r.sg.verify(uint64(g), final, groupHash(ct[:n]), sig); err != nil {
			return badGroup(r.s, r.sg, uint64(g), ct[:n], uint64(first), uint64(last-first+1), int(r.chunkSize(last)), final, r.pt)
		}
	}
	r.group = g
	return nil
}
