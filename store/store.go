package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/quota"
)

// SchemaVersion is the on-disk schema this package writes (SPEC.md §6.6).
const SchemaVersion = 3

// Named LMDB databases. The names are part of every value's associated
// data, so they are part of the format.
const (
	dbMeta      = "meta"
	dbGrants    = "grants"
	dbTombs     = "tombstones"
	dbSeqs      = "seqs"
	dbDeadlines = "deadlines"
	dbMaps      = "maps"
	dbPoints    = "points"
	dbUsage     = "usage"
	dbCharges   = "charges"
)

// Keys in the meta database.
var (
	metaVerifier = []byte("verifier")
	metaSchema   = []byte("schema")
)

// verifierPlaintext is sealed under the storage key when a store is created;
// opening it proves the key before anything is written.
const verifierPlaintext = "kadre store verifier v1"

const (
	defaultInitialMapSize = 64 << 20
	defaultMaxMapSize     = 1 << 40
	defaultRetention      = 365 * 24 * time.Hour
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Key provides the storage key. Default: KeyFile("") — a 0600 file
	// named KeyFileName in the data directory, created with the store.
	Key KeySource

	// Logger receives map growth and prune summaries. Default: discard.
	Logger *slog.Logger

	// InitialMapSize is the LMDB map size for a new store. Default 64 MiB.
	// The map doubles whenever a write finds it full, up to MaxMapSize.
	InitialMapSize int64

	// MaxMapSize bounds map growth. Default 1 TiB (address space, not
	// disk: LMDB's file only grows as data is written).
	MaxMapSize int64

	// Retention is how long a sequence-number mark and the tombstones under
	// it are kept after the last change to their (owner, path hash), at
	// least. They are also always kept until every grant the store has seen
	// for that (owner, path hash) has expired. Default 365 days.
	Retention time.Duration

	// Limits bound what writes charged to a remote sender may keep
	// (SPEC.md §8.2). Default quota.Off: no limit.
	Limits quota.Limits

	// CounterFile is the rollback counter, kept outside the LMDB file
	// (SPEC.md §8.8); put it on another medium than the store to detect
	// a rollback of the whole directory. Default CounterFileName in the
	// store directory.
	CounterFile string

	// AcceptRollback opens a store older than its counter file (a copy
	// restored on purpose), logs it and resets the counter.
	AcceptRollback bool
}

// Store is an open fragment store. All methods are safe for concurrent use.
type Store struct {
	dir  string
	seal *sealer
	log  *slog.Logger
	opts Options

	// mu is held shared by every transaction and exclusively by map growth
	// and Close: LMDB allows resizing only with no transaction active, and
	// Close must wait for in-flight operations.
	mu      sync.RWMutex
	closed  bool
	env     *lmdb.Env
	lock    *os.File
	mapSize int64

	meta, grants, tombs, seqs, deadlines, maps, points, usage, charges lmdb.DBI

	counter *counter

	// readers bounds concurrent read transactions below LMDB's reader
	// table size, so a burst of lookups waits instead of failing with
	// MDB_READERS_FULL.
	readers chan struct{}
}

const (
	maxReaders     = 1024
	maxReadersUsed = maxReaders - 24 // slack for Open, export and tools
)

// Open opens or creates the store in dir. The directory is created 0700 if
// needed and holds data.mdb and lock.mdb (LMDB, directory mode, not
// NoSubdir), the lock file, and the key or salt file of the default key
// sources. A second Open of the same directory, from this or another
// process, fails with ErrLocked; a wrong key fails with ErrWrongKey before
// anything in the store is written.
func Open(dir string, opts Options) (_ *Store, err error) {
	if opts.Key == nil {
		opts.Key = KeyFile("")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.InitialMapSize <= 0 {
		opts.InitialMapSize = defaultInitialMapSize
	}
	if opts.MaxMapSize <= 0 {
		opts.MaxMapSize = defaultMaxMapSize
	}
	if opts.Retention <= 0 {
		opts.Retention = defaultRetention
	}
	if opts.CounterFile == "" {
		opts.CounterFile = filepath.Join(dir, CounterFileName)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, LockFileName))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: opts.Logger, opts: opts, lock: lock, readers: make(chan struct{}, maxReadersUsed)}
	defer func() {
		if err != nil {
			if s.env != nil {
				s.env.Close()
			}
			lock.Close()
		}
	}()

	_, statErr := os.Stat(filepath.Join(dir, "data.mdb"))
	create := errors.Is(statErr, fs.ErrNotExist)
	key, err := opts.Key.StorageKey(dir, create)
	if err != nil {
		return nil, err
	}
	if s.seal, err = newSealer(key); err != nil {
		return nil, err
	}
	clear(key[:])

	if s.env, err = lmdb.NewEnv(); err != nil {
		return nil, fmt.Errorf("failed to create lmdb environment: %w", err)
	}
	if err := s.env.SetMaxDBs(12); err != nil {
		return nil, fmt.Errorf("failed to configure lmdb: %w", err)
	}
	if err := s.env.SetMaxReaders(maxReaders); err != nil {
		return nil, fmt.Errorf("failed to configure lmdb: %w", err)
	}
	if err := s.env.SetMapSize(opts.InitialMapSize); err != nil {
		return nil, fmt.Errorf("failed to configure lmdb: %w", err)
	}
	// Default flags: every commit is fsynced before it returns, which is
	// what makes an acknowledged write survive kill -9 and power loss.
	if err := s.env.Open(dir, 0, 0o600); err != nil {
		return nil, fmt.Errorf("failed to open lmdb environment: %w", err)
	}
	// Slots of readers in a killed process would otherwise pin old pages.
	if _, err := s.env.ReaderCheck(); err != nil {
		return nil, fmt.Errorf("failed to clear stale lmdb readers: %w", err)
	}
	info, err := s.env.Info()
	if err != nil {
		return nil, fmt.Errorf("failed to read lmdb info: %w", err)
	}
	s.mapSize = info.MapSize

	initialized, gen, hasGen, err := s.verifyKey()
	if err != nil {
		return nil, err
	}
	if err := s.checkRollback(opts.CounterFile, initialized, gen, hasGen); err != nil {
		return nil, err
	}
	if s.counter, err = openCounter(opts.CounterFile); err != nil {
		return nil, err
	}
	if err := s.openDBs(initialized); err != nil {
		s.counter.close()
		return nil, err
	}
	if !initialized {
		// LMDB fsyncs its files but not the directory entries it
		// created; without this, a power cut soon after the first writes
		// could lose data.mdb itself on some file systems.
		if err := fsx.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// verifyKey opens the sealed verifier in a read transaction, so a wrong key
// is reported before any write. It reports whether the store is
// initialized, and its generation.
func (s *Store) verifyKey() (initialized bool, gen uint64, hasGen bool, err error) {
	err = s.env.View(func(txn *lmdb.Txn) error {
		meta, err := txn.OpenDBI(dbMeta, 0)
		if lmdb.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to open meta database: %w", err)
		}
		v, err := txn.Get(meta, metaVerifier)
		if lmdb.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read verifier: %w", err)
		}
		pt, err := s.seal.open(dbMeta, metaVerifier, v)
		if err != nil || string(pt) != verifierPlaintext {
			return ErrWrongKey
		}
		initialized = true
		gen, hasGen, err = s.generation(txn, meta)
		return err
	})
	return initialized, gen, hasGen, err
}

// openDBs opens (creating if needed) the named databases, initializes a new
// store, checks the schema version and runs migrations.
func (s *Store) openDBs(initialized bool) error {
	return s.update(func(txn *lmdb.Txn) error {
		var err error
		for _, d := range []struct {
			name string
			dbi  *lmdb.DBI
		}{{dbMeta, &s.meta}, {dbGrants, &s.grants}, {dbTombs, &s.tombs}, {dbSeqs, &s.seqs}, {dbDeadlines, &s.deadlines},
			{dbMaps, &s.maps}, {dbPoints, &s.points}, {dbUsage, &s.usage}, {dbCharges, &s.charges}} {
			if *d.dbi, err = txn.OpenDBI(d.name, lmdb.Create); err != nil {
				return fmt.Errorf("failed to open %s database: %w", d.name, err)
			}
		}
		if !initialized {
			// A store without a verifier must also be empty: otherwise
			// someone removed the verifier, and writing a new one would
			// let a wrong key silently take over.
			st, err := txn.Stat(s.grants)
			if err != nil {
				return fmt.Errorf("failed to stat grants: %w", err)
			}
			st2, err := txn.Stat(s.seqs)
			if err != nil {
				return fmt.Errorf("failed to stat seqs: %w", err)
			}
			if st.Entries != 0 || st2.Entries != 0 {
				return fmt.Errorf("failed to open store: %w: data without a key verifier", ErrCorrupt)
			}
			if err := txn.Put(s.meta, metaVerifier, s.seal.seal(dbMeta, metaVerifier, []byte(verifierPlaintext)), 0); err != nil {
				return fmt.Errorf("failed to write verifier: %w", err)
			}
			return s.putSchema(txn, SchemaVersion)
		}
		v, err := txn.Get(s.meta, metaSchema)
		if err != nil {
			return fmt.Errorf("failed to read schema version: %w", err)
		}
		pt, err := s.seal.open(dbMeta, metaSchema, v)
		if err != nil || len(pt) != 8 {
			return fmt.Errorf("failed to read schema version: %w", ErrCorrupt)
		}
		version := binary.BigEndian.Uint64(pt)
		if version > SchemaVersion {
			return fmt.Errorf("%w: store has version %d, this binary supports up to %d", ErrSchema, version, SchemaVersion)
		}
		return s.migrate(txn, version)
	})
}

func (s *Store) putSchema(txn *lmdb.Txn, v uint64) error {
	b := binary.BigEndian.AppendUint64(nil, v)
	if err := txn.Put(s.meta, metaSchema, s.seal.seal(dbMeta, metaSchema, b), 0); err != nil {
		return fmt.Errorf("failed to write schema version: %w", err)
	}
	return nil
}

// migrate upgrades a store from version from to SchemaVersion inside the
// open transaction, so an upgrade is all or nothing. Each step is a case
// that rewrites what changed and falls through to the next. A step that
// must rewrite every value can do so here because the key was verified
// before.
func (s *Store) migrate(txn *lmdb.Txn, from uint64) error {
	switch from {
	case 1:
		// Version 2 added the maps and points databases (created empty by
		// openDBs) and tombstone values that keep their revocation;
		// version 1 tombstones stay readable as they are.
		fallthrough
	case 2:
		// Version 3 added the usage and charges databases (quotas) and
		// the generation (rollback detection): what the store holds is
		// charged to its owners and the node.
		if err := s.chargeExisting(txn); err != nil {
			return err
		}
		fallthrough
	case SchemaVersion:
		if from != SchemaVersion {
			return s.putSchema(txn, SchemaVersion)
		}
		return nil
	default:
		return fmt.Errorf("%w: no migration from version %d", ErrSchema, from)
	}
}

// Close closes the store. It waits for operations in progress, releases the
// directory lock, and is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	cerr := s.counter.flush()
	err := s.env.Close()
	if cerr = errors.Join(cerr, s.counter.close()); err == nil && cerr != nil {
		err = cerr
	}
	if lerr := s.lock.Close(); err == nil && lerr != nil {
		err = fmt.Errorf("failed to release lock: %w", lerr)
	}
	return err
}

// view runs fn in a read transaction whose Get results point into the map
// (RawRead): fn must copy what it keeps, which sealer.open always does. fn
// must not call view or update (directly or through a public method): a
// nested call could wait for a reader slot or for map growth that waits
// for fn's own transaction.
func (s *Store) view(fn func(*lmdb.Txn) error) error {
	s.readers <- struct{}{}
	defer func() { <-s.readers }()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.env.View(func(txn *lmdb.Txn) error {
		txn.RawRead = true
		return fn(txn)
	})
}

// update runs fn in a write transaction, growing the map and retrying when
// it is full. fn may therefore run more than once and must not have effects
// outside the transaction.
func (s *Store) update(fn func(*lmdb.Txn) error) error {
	return s.write(func(txn *lmdb.Txn) (bool, error) { return true, fn(txn) })
}

// write is update for a transaction that says whether the counter file
// must cover it before it returns (SPEC.md §8.8): a write that removes
// or supersedes state (a revocation, a newer grant or map, a deletion)
// must, so that a rollback cannot undo it unseen; a write that only adds
// (a new grant) may wait for the next one that must, or for Close.
func (s *Store) write(fn func(*lmdb.Txn) (sync bool, err error)) error {
	var gen uint64
	var sync bool
	withGen := func(txn *lmdb.Txn) error {
		var err error
		if sync, err = fn(txn); err != nil {
			return err
		}
		gen, err = s.bumpGeneration(txn)
		return err
	}
	for {
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return ErrClosed
		}
		size := s.mapSize
		err := s.env.Update(withGen)
		if err == nil {
			// Before the write returns, the counter outside the LMDB file
			// covers it (SPEC.md §8.8).
			err = s.counter.committed(gen, sync)
		}
		s.mu.RUnlock()
		if !isMapFull(err) {
			return err
		}
		if err := s.grow(size); err != nil {
			return err
		}
	}
}

func isMapFull(err error) bool {
	var oe *lmdb.OpError
	if errors.As(err, &oe) {
		return oe.Errno == lmdb.MapFull
	}
	return errors.Is(err, lmdb.MapFull)
}

// grow doubles the map unless another writer already grew it past seen.
func (s *Store) grow(seen int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.mapSize > seen {
		return nil
	}
	if s.mapSize >= s.opts.MaxMapSize {
		return fmt.Errorf("failed to grow map: store is at its maximum size %d bytes (raise Options.MaxMapSize or prune)", s.opts.MaxMapSize)
	}
	next := min(s.mapSize*2, s.opts.MaxMapSize)
	if err := s.env.SetMapSize(next); err != nil {
		return fmt.Errorf("failed to grow map: %w", err)
	}
	s.log.Info("store map grown", "from", s.mapSize, "to", next)
	s.mapSize = next
	return nil
}

// Stats counts entries per database.
type Stats struct {
	Grants, Tombstones, Seqs, Maps uint64
	MapSize                        int64
}

// Stats returns entry counts, read in one transaction.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view(func(txn *lmdb.Txn) error {
		for _, d := range []struct {
			dbi lmdb.DBI
			n   *uint64
		}{{s.grants, &st.Grants}, {s.tombs, &st.Tombstones}, {s.seqs, &st.Seqs}, {s.maps, &st.Maps}} {
			x, err := txn.Stat(d.dbi)
			if err != nil {
				return fmt.Errorf("failed to stat database: %w", err)
			}
			*d.n = x.Entries
		}
		return nil
	})
	s.mu.RLock()
	st.MapSize = s.mapSize
	s.mu.RUnlock()
	return st, err
}

// hasPrefix reports whether db has a key starting with prefix.
func hasPrefix(txn *lmdb.Txn, db lmdb.DBI, prefix []byte) (bool, error) {
	cur, err := txn.OpenCursor(db)
	if err != nil {
		return false, err
	}
	defer cur.Close()
	k, _, err := cur.Get(prefix, nil, lmdb.SetRange)
	if lmdb.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.HasPrefix(k, prefix), nil
}
