package kfile

import "errors"

// Sentinel errors. Every error this package returns for bad input wraps
// exactly one of them, so a CLI can map it to an explanation with errors.Is;
// I/O errors of the underlying reader or writer are wrapped as they are.
var (
	// ErrNotKadreFile means the input does not start with the kadre file
	// magic: it is some other file, or not encrypted.
	ErrNotKadreFile = errors.New("kfile: not a kadre file")

	// ErrUnsupportedVersion means the file was written in a format version
	// this implementation does not know (a newer kadre wrote it).
	ErrUnsupportedVersion = errors.New("kfile: unsupported file format version")

	// ErrUnsupportedAlgorithm means the header names a re-encryption or body
	// algorithm, or a chunk size, this implementation does not support.
	ErrUnsupportedAlgorithm = errors.New("kfile: unsupported algorithm")

	// ErrMalformedHeader means the header is not the canonical encoding of
	// a header: a field out of range, a path not in normalized form, a key or
	// capsule that is not a valid curve encoding, trailing bytes.
	ErrMalformedHeader = errors.New("kfile: malformed header")

	// ErrWrongKey means a key does not open this header: a path key or
	// cfrags that do not unwrap the data key of a level, or a data key that
	// does not authenticate the header. A modified header gives the same
	// error, as the two cannot be told apart.
	ErrWrongKey = errors.New("kfile: wrong key or modified header")

	// ErrTruncated means the file ends early: inside the header, before the
	// first body chunk, or at a chunk boundary before the final chunk (for
	// example an interrupted download or copy).
	ErrTruncated = errors.New("kfile: file is truncated")

	// ErrCorrupt means a body chunk did not authenticate: the file was
	// damaged or modified (chunks changed, reordered, duplicated, removed,
	// cut inside a chunk, or data appended after the final chunk). No
	// plaintext of that chunk is released.
	ErrCorrupt = errors.New("kfile: file is corrupt or was modified")

	// ErrBadSignature means a version 2 file is not signed by the writer
	// it names: the header's signature or a body group's does not verify.
	// A body whose chunks all authenticate but whose signature does not
	// was changed by someone who holds the data key (another reader).
	ErrBadSignature = errors.New("kfile: not signed by its writer")

	// ErrNotAuthorized means a version 2 file's writer certificate does not
	// let its writer write the file: signed by another owner, for other
	// keys than the header's, or for a prefix the path is not under.
	ErrNotAuthorized = errors.New("kfile: writer not authorized by the owner")

	// ErrUnsigned means a version 1 file, which nobody signed, was
	// refused because the caller asked for signed files only.
	ErrUnsigned = errors.New("kfile: unsigned version 1 file")

	// ErrClosed means Write was called after Close.
	ErrClosed = errors.New("kfile: write after close")
)
