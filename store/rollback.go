package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// Rollback detection (SPEC.md §8.8). Every write transaction raises the
// store's generation, a sealed counter in the meta database; before a write
// returns, the generation is also written to the counter file, outside the
// LMDB file (Options.CounterFile). Open compares them: a data.mdb older than
// the counter file (an old copy put back, a file-system snapshot of the
// store alone) is refused with ErrRollback, since it may hold grants that
// were revoked since and lack the tombstones.

// CounterFileName is the default counter file, in the store directory.
const CounterFileName = "generation"

// ErrRollback means the store is older than its counter file: data.mdb was
// replaced by an older copy, or the counter file is missing.
var ErrRollback = errors.New("store: the store is older than its rollback counter (data.mdb was replaced by an older copy?)")

var metaGeneration = []byte("generation")

// The counter file holds counterPrefix and the generation in 20 decimal
// digits: a fixed size, rewritten in place.
const counterPrefix = "kadre-store-generation v1 "

type counter struct {
	path string
	mu   sync.Mutex
	f    *os.File
	done uint64 // generation the file holds
	// latest is the newest committed generation (guarded by mu as well).
	latest uint64
}

func readCounter(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), counterPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: %s is not a counter file", ErrRollback, path)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not a counter file", ErrRollback, path)
	}
	return n, nil
}

func openCounter(path string) (*counter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the counter file: %w", err)
	}
	return &counter{path: path, f: f}, nil
}

// committed records that generation gen committed and makes the counter
// file say at least gen before it returns. Writers waiting behind one
// file write find their generation covered and return at once (group
// commit), so a burst of writes costs one file sync.
//
// Without sync the file is not written now: the next write with sync, or
// Close, covers gen.
func (c *counter) committed(gen uint64, sync bool) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest = max(c.latest, gen)
	if !sync || c.done >= gen {
		return nil
	}
	return c.writeLocked()
}

func (c *counter) writeLocked() error {
	g := c.latest
	b := fmt.Appendf(nil, "%s%020d\n", counterPrefix, g)
	if _, err := c.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("failed to write the counter file: %w", err)
	}
	if c.done == 0 {
		if err := c.f.Truncate(int64(len(b))); err != nil {
			return fmt.Errorf("failed to write the counter file: %w", err)
		}
	}
	// The content has a fixed size and is rewritten in place: its data is
	// all that must reach the disk.
	if err := fdatasync(c.f); err != nil {
		return fmt.Errorf("failed to sync the counter file: %w", err)
	}
	c.done = g
	return nil
}

// flush writes the newest committed generation if the file is behind.
func (c *counter) flush() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done >= c.latest {
		return nil
	}
	return c.writeLocked()
}

func (c *counter) close() error {
	if c == nil {
		return nil
	}
	return c.f.Close()
}

// generation reads the store's generation (0 and false if it has none: a
// new store, or one written before schema 3).
func (s *Store) generation(txn *lmdb.Txn, meta lmdb.DBI) (uint64, bool, error) {
	v, err := txn.Get(meta, metaGeneration)
	if lmdb.IsNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	pt, err := s.seal.open(dbMeta, metaGeneration, v)
	if err != nil || len(pt) != 8 {
		return 0, false, ErrCorrupt
	}
	return binary.BigEndian.Uint64(pt), true, nil
}

// bumpGeneration raises the generation inside a write transaction.
func (s *Store) bumpGeneration(txn *lmdb.Txn) (uint64, error) {
	g, _, err := s.generation(txn, s.meta)
	if err != nil {
		return 0, err
	}
	g++
	return g, txn.Put(s.meta, metaGeneration, s.seal.seal(dbMeta, metaGeneration, binary.BigEndian.AppendUint64(nil, g)), 0)
}

// checkRollback compares the generation of a store being opened with its
// counter file.
func (s *Store) checkRollback(path string, initialized bool, gen uint64, hasGen bool) error {
	if !initialized {
		// A new store holds nothing that a rollback could bring back.
		return nil
	}
	file, err := readCounter(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if hasGen {
			err = fmt.Errorf("%w: the counter file %s is missing (the store has generation %d)", ErrRollback, path, gen)
			break
		}
		return nil
	case err != nil:
	case gen < file:
		err = fmt.Errorf("%w: store generation %d, counter file %s says %d", ErrRollback, gen, path, file)
	default:
		return nil
	}
	if s.opts.AcceptRollback {
		s.log.Warn("rollback accepted: revocations, grants and hand-offs made after this copy of the store are lost", "err", err)
		return nil
	}
	return err
}
