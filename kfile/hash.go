package kfile

import (
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// batch is the input of one SIMD compression: 16 BLAKE3 chunks (AVX-512
// hashes 16 chunks at once).
const batch = guts.MaxSIMD * guts.ChunkSize

// groupHasher computes the BLAKE3-256 hash of a group's encrypted chunks
// on the calling goroutine, as they arrive in the group's buffer, one
// batch at a time while it is still in cache (BENCHMARKS.md §5):
// blake3.Sum256 would spread a long input over goroutines of its own,
// which compete with the cipher running on the other core. The tree is
// BLAKE3's: in an input longer than one batch every aligned run of 16
// chunks is a subtree, whose chaining value one SIMD call gives; the rest
// of the tree is parents over those values, each left subtree the largest
// power of two below their number (TestGroupHash checks it against
// blake3.Sum256 at every shape).
type groupHasher struct {
	room [128][8]uint32 // the batches' chaining values: 2 MiB of input without allocating
	cvs  [][8]uint32
	done int // bytes hashed: a multiple of batch
}

// reset makes h ready for a new input.
func (h *groupHasher) reset() { h.cvs, h.done = h.room[:0], 0 }

// update hashes every batch of b (the input so far, from its start) that
// more bytes follow: the last batch of an input is hashed only by sum,
// which knows it is the last.
func (h *groupHasher) update(b []byte) {
	if h.cvs == nil {
		h.reset()
	}
	for len(b)-h.done > batch {
		n := guts.CompressBuffer((*[batch]byte)(b[h.done:h.done+batch]), batch, &guts.IV, uint64(h.done/guts.ChunkSize), 0)
		h.cvs = append(h.cvs, guts.ChainingValue(n))
		h.done += batch
	}
}

// sum returns the hash of b, the whole input (of which update saw a
// prefix, or nothing).
func (h *groupHasher) sum(b []byte) [32]byte {
	h.update(b)
	last := tail(b[h.done:], uint64(h.done/guts.ChunkSize))
	root := last
	if len(h.cvs) > 0 {
		root = parentOf(append(h.cvs, guts.ChainingValue(last)))
	}
	root.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(root))
	var sum [32]byte
	copy(sum[:], out[:32])
	return sum
}

// groupHash returns BLAKE3-256(b).
func groupHash(b []byte) [32]byte {
	var h groupHasher
	return h.sum(b)
}

// tail returns the node of the last (at most 16) chunks of an input, the
// first of which has index counter.
func tail(b []byte, counter uint64) guts.Node {
	if len(b) == batch {
		return guts.CompressBuffer((*[batch]byte)(b), batch, &guts.IV, counter, 0)
	}
	var buf [batch]byte
	copy(buf[:], b)
	return guts.CompressBuffer(&buf, len(b), &guts.IV, counter, 0)
}

// parentOf returns the parent node over the chaining values of
// consecutive subtrees (at least two): its left subtree covers the largest
// power of two of them below their number, as BLAKE3's tree does.
func parentOf(cvs [][8]uint32) guts.Node {
	left := 1 << (bits.Len(uint(len(cvs)-1)) - 1)
	return guts.ParentNode(cvOf(cvs[:left]), cvOf(cvs[left:]), &guts.IV, 0)
}

func cvOf(cvs [][8]uint32) [8]uint32 {
	if len(cvs) == 1 {
		return cvs[0]
	}
	return guts.ChainingValue(parentOf(cvs))
}
