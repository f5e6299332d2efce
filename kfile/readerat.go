package kfile

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReaderAt gives random access to the plaintext of a file: ReadAt decrypts
// only the chunks it touches. It is an io.ReaderAt and is safe for
// concurrent use; calls are serialized over one chunk buffer, which also
// keeps the last chunk read so that small sequential reads decrypt each
// chunk once.
type ReaderAt struct {
	ra     io.ReaderAt
	s      *stream
	base   int64 // header length: the offset of chunk 0
	chunks int64
	size   int64 // plaintext size, authenticated by NewReaderAt

	mu     sync.Mutex
	ct     []byte // EncryptedChunkSize
	pt     []byte // plaintext of chunk cached, cap ChunkSize
	cached int64  // index of the chunk in pt, or -1
}

// NewReaderAt returns a ReaderAt over the file in ra, size bytes long,
// header included (h as ReadHeader parsed it from the start of ra). The
// plaintext size follows from size; NewReaderAt refuses sizes no file can
// have and authenticates the final chunk, so that Size is the true size
// and a file cut at a chunk boundary is refused here, not at some later
// read.
func NewReaderAt(ra io.ReaderAt, size int64, h *Header, dataKey []byte) (*ReaderAt, error) {
	chunks, pt, err := bodyLayout(size - int64(len(h.raw)))
	if err != nil {
		return nil, err
	}
	key, err := h.bodyKey(dataKey)
	if err != nil {
		return nil, err
	}
	s, err := newStream(key)
	clear(key[:])
	if err != nil {
		return nil, err
	}
	r := &ReaderAt{
		ra:     ra,
		s:      s,
		base:   int64(len(h.raw)),
		chunks: chunks,
		size:   pt,
		ct:     make([]byte, EncryptedChunkSize),
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
// part of its chunk at its position.
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

// load decrypts chunk i into r.pt; the last chunk must carry the final
// flag, every other chunk must not.
func (r *ReaderAt) load(i int64) error {
	if r.cached == i {
		return nil
	}
	r.cached = -1
	r.pt = r.pt[:0]
	final := i == r.chunks-1
	ctLen := int64(EncryptedChunkSize)
	if final {
		ctLen = r.size - i*ChunkSize + TagSize
	}
	ct := r.ct[:ctLen]
	n, err := r.ra.ReadAt(ct, r.base+i*EncryptedChunkSize)
	if n < len(ct) {
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: chunk %d ends early (the file shrank?)", ErrTruncated, i)
		}
		return fmt.Errorf("kfile: failed to read chunk %d: %w", i, err)
	}
	pt, ok := r.s.open(r.pt[:0], ct, uint64(i), final)
	if !ok {
		if final && ctLen == EncryptedChunkSize {
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
