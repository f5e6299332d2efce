package kfile

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// The body of a version 2 file (SPEC.md §7.3) is the STREAM of version 1
// cut into groups of GroupChunks chunks; after the encrypted chunks of
// each group comes the writer's signature over them, sealed under the
// body key like a chunk (with its own nonce space, see stream), so that
// only readers learn who signed. A group's signature covers
//
//	SHA-256(header) ‖ uint64_be(group index) ‖ final ‖ BLAKE3-256(the group's encrypted chunks)
//
// so a reader, who knows the data key and could make chunks that
// authenticate, still cannot change a byte without the writer's key, and a
// group cannot move to another file or position. Version 1 bodies are
// the same STREAM with groups of one chunk and no signatures.

// fullGroup is the size of a full version 2 group.
const fullGroup = GroupChunks*EncryptedChunkSize + GroupSigSize

// shape is a body's group structure: chunks per group and the size of the
// signature after each group (0 in version 1).
type shape struct {
	group   int64
	sigSize int64
}

func (h *Header) shape() shape {
	if h.version == 1 {
		return shape{group: 1}
	}
	return shape{group: GroupChunks, sigSize: GroupSigSize}
}

// full is the size of a full group.
func (s shape) full() int64 { return s.group*EncryptedChunkSize + s.sigSize }

// chunkOffset is the body offset of chunk i.
func (s shape) chunkOffset(i int64) int64 { return i*EncryptedChunkSize + i/s.group*s.sigSize }

// layout returns the number of chunks and the plaintext size of a body of
// bodySize bytes, or why no body has that size.
func (s shape) layout(bodySize int64) (chunks, plaintext int64, err error) {
	if bodySize <= 0 {
		return 0, 0, fmt.Errorf("%w: the file has no body", ErrTruncated)
	}
	groups, rem := bodySize/s.full(), bodySize%s.full()
	var last int64 // the final chunk's encrypted size
	switch {
	case rem == 0:
		chunks, last = groups*s.group, EncryptedChunkSize
	case rem < TagSize+s.sigSize:
		return 0, 0, fmt.Errorf("%w: the last group is %d bytes, shorter than a chunk's tag and its signature", ErrTruncated, rem)
	default:
		q := rem - s.sigSize // the last group's chunks
		before := (q - 1) / EncryptedChunkSize
		last = q - before*EncryptedChunkSize
		if last < TagSize {
			return 0, 0, fmt.Errorf("%w: the last chunk is %d bytes, shorter than its tag", ErrTruncated, last)
		}
		chunks = groups*s.group + before + 1
	}
	if last == TagSize && chunks > 1 {
		// An empty final chunk only ever follows nothing: the writer never
		// ends a non-empty file with one.
		return 0, 0, fmt.Errorf("%w: empty final chunk after %d full chunks", ErrCorrupt, chunks-1)
	}
	return chunks, (chunks-1)*ChunkSize + last - TagSize, nil
}

// PlaintextSize returns the plaintext size of a file of fileSize bytes with
// this header. Not every size is possible: the body is a sequence of full
// encrypted chunks and one final chunk of TagSize to EncryptedChunkSize
// bytes, which holds at least one byte unless the file is empty, with a
// signature after every group in version 2.
func (h *Header) PlaintextSize(fileSize int64) (int64, error) {
	_, pt, err := h.shape().layout(fileSize - int64(len(h.raw)))
	return pt, err
}

// FileSize returns the size of the encrypted file of a plaintext of
// plaintextSize bytes under this header.
func (h *Header) FileSize(plaintextSize int64) (int64, error) {
	if plaintextSize < 0 {
		return 0, fmt.Errorf("kfile: negative plaintext size %d", plaintextSize)
	}
	s := h.shape()
	chunks := max(1, (plaintextSize+ChunkSize-1)/ChunkSize)
	groups := (chunks + s.group - 1) / s.group
	const maxInt64 = 1<<63 - 1
	if plaintextSize > maxInt64/2-int64(len(h.raw))-chunks*TagSize-groups*s.sigSize {
		return 0, fmt.Errorf("kfile: plaintext size %d too large", plaintextSize)
	}
	return int64(len(h.raw)) + plaintextSize + chunks*TagSize + groups*s.sigSize, nil
}

// signing is what a body's group signatures need: the writer's key to
// verify (or signer to sign) and the header hash they cover.
type signing struct {
	writer     policy.PublicKey
	signer     *rekey.Signer
	headerHash [32]byte
	msg        [32 + 8 + 1 + 32]byte
}

func newSigning(h *Header, writer policy.PublicKey, signer *rekey.Signer) *signing {
	return &signing{writer: writer, signer: signer, headerHash: sha256.Sum256(h.raw)}
}

// message is the signed message of group g, whose encrypted chunks hash
// to digest (groupHash).
func (sg *signing) message(g uint64, final bool, digest [32]byte) []byte {
	m := sg.msg[:0]
	m = append(m, sg.headerHash[:]...)
	m = binary.BigEndian.AppendUint64(m, g)
	if final {
		m = append(m, 1)
	} else {
		m = append(m, 0)
	}
	return append(m, digest[:]...)
}

// sign signs group g.
func (sg *signing) sign(g uint64, final bool, digest [32]byte) (policy.Signature, error) {
	return policy.Sign(sg.signer, LabelGroupSignature, sg.message(g, final, digest))
}

// verify checks the signature of group g.
func (sg *signing) verify(g uint64, final bool, digest [32]byte, sig []byte) error {
	var s policy.Signature
	copy(s[:], sig)
	return policy.Verify(sg.writer, LabelGroupSignature, sg.message(g, final, digest), s)
}

// badGroup explains a group whose signature does not verify: a chunk that
// does not authenticate is damage (ErrCorrupt); chunks that all
// authenticate but that the writer did not sign were made by someone who
// holds the data key (ErrBadSignature). chunks are the group's n encrypted
// chunks, from chunk first on, the last of last bytes; scratch has room
// for one chunk's plaintext and is wiped.
func badGroup(s *stream, sg *signing, g uint64, chunks []byte, first, n uint64, last int, final bool, scratch []byte) error {
	defer clear(scratch[:cap(scratch)])
	for j := uint64(0); j < n; j++ {
		size := EncryptedChunkSize
		if j == n-1 {
			size = last
		}
		ct := chunks[int(j)*EncryptedChunkSize:][:size]
		isFinal := final && j == n-1
		if _, ok := s.open(scratch[:0], ct, first+j, isFinal); !ok {
			if _, other := s.open(scratch[:0], ct, first+j, !isFinal); other && isFinal {
				return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, first+j+1)
			}
			return fmt.Errorf("%w: chunk %d", ErrCorrupt, first+j)
		}
	}
	return fmt.Errorf("%w: group %d of the body is not signed by the file's writer %s (someone who can decrypt the file changed it)", ErrBadSignature, g, sg.writer)
}

// cutAt explains a final group that does not end with a valid signature:
// if its bytes, read as chunks without a signature, end with a chunk that
// authenticates at its position, the stream was cut there (after the
// final chunk but before its signature, or at a chunk boundary). ct holds
// the group's bytes, from chunk first on; scratch has room for one chunk
// and is wiped. It returns nil when it cannot tell.
func cutAt(s *stream, ct []byte, first uint64, scratch []byte) error {
	defer clear(scratch[:cap(scratch)])
	if len(ct) < TagSize {
		return nil
	}
	k := (len(ct) + EncryptedChunkSize - 1) / EncryptedChunkSize
	last := ct[(k-1)*EncryptedChunkSize:]
	if len(last) < TagSize {
		return nil
	}
	i := first + uint64(k-1)
	if _, ok := s.open(scratch[:0], last, i, true); ok {
		return fmt.Errorf("%w: the body ends after its final chunk without the signature of its last group", ErrTruncated)
	}
	if len(last) == EncryptedChunkSize {
		if _, ok := s.open(scratch[:0], last, i, false); ok {
			return fmt.Errorf("%w: the body ends after %d chunks without the final chunk", ErrTruncated, i+1)
		}
	}
	return nil
}
