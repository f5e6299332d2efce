package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/kadre/kadre/internal/fsx"
)

// The ledger on disk (SPEC.md §5.6) is a snapshot, grants.json, and a
// journal, grants.json.journal: JSON lines, the first naming the snapshot
// generation it continues, each other one what a change set. A change
// appends its lines and syncs the journal, so that a grant costs what it
// adds, not the whole ledger; once the journal outgrows the snapshot (and
// journalMinCompact), the next change writes a new snapshot and starts a
// new journal. The parsed ledger stays in memory between changes and is
// read again only when another process changed the files.

// JournalSuffix names the journal beside the ledger.
const JournalSuffix = ".journal"

// journalMinCompact is the journal size below which no change compacts.
const journalMinCompact = 256 << 10

// journalLine is one line of the journal: a header (Journal set) or one
// change, whole, which sets the listed grants and writers (by index: an
// index one past the end appends), the given entries of Epochs and Maps,
// and RevokedWriters when present. One change is one line, so a change
// torn by a crash is ignored whole.
type journalLine struct {
	Journal        *uint64           `json:"journal,omitempty"`
	Grants         []indexedGrant    `json:"grants,omitempty"`
	Writers        []indexedWriter   `json:"writers,omitempty"`
	Epochs         map[string]uint32 `json:"epochs,omitempty"`
	Maps           map[string]uint64 `json:"maps,omitempty"`
	RevokedWriters *[]string         `json:"revoked_writers,omitempty"`
}

type indexedGrant struct {
	I      int          `json:"i"`
	Record *GrantRecord `json:"record"`
}

type indexedWriter struct {
	I      int           `json:"i"`
	Record *WriterRecord `json:"record"`
}

func (l *ledger) journalPath() string { return l.path + JournalSuffix }

// refresh brings l.mem up to date with the files: the snapshot again if
// another process replaced it, else only the journal lines appended since.
// The caller holds the lock.
func (l *ledger) refresh() error {
	st, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.mem, l.snap, l.joff, l.jstale = &ledgerDoc{Version: ledgerVersion}, nil, 0, false
		return nil
	}
	if err != nil {
		return err
	}
	if l.snap == nil || !os.SameFile(l.snap, st) || !l.snap.ModTime().Equal(st.ModTime()) || l.snap.Size() != st.Size() {
		doc, err := readSnapshot(l.path)
		if err != nil {
			return err
		}
		l.mem, l.snap, l.joff, l.jstale = doc, st, 0, false
	}
	if l.jstale {
		return nil
	}
	return l.replay()
}

func readSnapshot(path string) (*ledgerDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc := &ledgerDoc{}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, fmt.Errorf("client: grants ledger %s: %w", path, err)
	}
	switch doc.Version {
	case 2, ledgerVersion:
		doc.Version = ledgerVersion
	default:
		return nil, fmt.Errorf("%w: %s is version %d, this kadre reads 2 and %d (version 1 grants used locator placement; revoke and grant them again)",
			ErrLedgerVersion, path, doc.Version, ledgerVersion)
	}
	return doc, nil
}

// replay applies the journal's whole lines past l.joff. A last line
// without its newline is a change that never completed (its writer died
// before the sync returned) and is ignored; the next append cuts it off.
func (l *ledger) replay() error {
	f, err := os.Open(l.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		if l.joff > 0 {
			return fmt.Errorf("client: grants journal %s vanished", l.journalPath())
		}
		if l.mem.Journal != 0 {
			l.jstale = true // a compaction that stopped before its journal
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < l.joff {
		return fmt.Errorf("client: grants journal %s shrank below what was read", l.journalPath())
	}
	if st.Size() == l.joff {
		return nil
	}
	rest := make([]byte, st.Size()-l.joff)
	if _, err := f.ReadAt(rest, l.joff); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil
		}
		var jl journalLine
		if err := json.Unmarshal(rest[:i], &jl); err != nil {
			return fmt.Errorf("client: grants journal %s, byte %d: %w", l.journalPath(), l.joff, err)
		}
		if l.joff == 0 {
			if jl.Journal == nil || *jl.Journal != l.mem.Journal || l.mem.Journal == 0 {
				l.jstale = true // the journal of an older snapshot
				return nil
			}
		} else if err := l.mem.apply(&jl); err != nil {
			return fmt.Errorf("client: grants journal %s, byte %d: %w", l.journalPath(), l.joff, err)
		}
		l.joff += int64(i + 1)
		rest = rest[i+1:]
	}
}

// apply makes one journal change on doc.
func (doc *ledgerDoc) apply(jl *journalLine) error {
	var err error
	for _, g := range jl.Grants {
		if doc.Grants, err = setAt(doc.Grants, g.I, g.Record, "grant"); err != nil {
			return err
		}
	}
	for _, w := range jl.Writers {
		if doc.Writers, err = setAt(doc.Writers, w.I, w.Record, "writer"); err != nil {
			return err
		}
	}
	for k, v := range jl.Epochs {
		if doc.Epochs == nil {
			doc.Epochs = map[string]uint32{}
		}
		doc.Epochs[k] = v
	}
	for k, v := range jl.Maps {
		if doc.Maps == nil {
			doc.Maps = map[string]uint64{}
		}
		doc.Maps[k] = v
	}
	if jl.RevokedWriters != nil {
		doc.RevokedWriters = *jl.RevokedWriters
	}
	return nil
}

// setAt sets list[i] to rec, appending when i is one past the end.
func setAt[T any](list []*T, i int, rec *T, what string) ([]*T, error) {
	switch {
	case rec == nil || i < 0 || i > len(list):
		return list, fmt.Errorf("bad %s change %d of %d", what, i, len(list))
	case i == len(list):
		return append(list, rec), nil
	}
	list[i] = rec
	return list, nil
}

// change is the journal line that takes old to doc (nil: nothing
// changed); not ok if the change cannot be a line (something removed).
func (doc *ledgerDoc) change(old *ledgerDoc) (jl *journalLine, ok bool) {
	if len(doc.Grants) < len(old.Grants) || len(doc.Writers) < len(old.Writers) {
		return nil, false
	}
	var c journalLine
	for i, g := range doc.Grants {
		if i >= len(old.Grants) || !g.equal(old.Grants[i]) {
			c.Grants = append(c.Grants, indexedGrant{I: i, Record: g})
		}
	}
	for i, w := range doc.Writers {
		if i >= len(old.Writers) || *w != *old.Writers[i] {
			c.Writers = append(c.Writers, indexedWriter{I: i, Record: w})
		}
	}
	var okE, okM bool
	c.Epochs, okE = changedEntries(old.Epochs, doc.Epochs)
	c.Maps, okM = changedEntries(old.Maps, doc.Maps)
	if !okE || !okM {
		return nil, false
	}
	if !slices.Equal(doc.RevokedWriters, old.RevokedWriters) {
		rw := doc.RevokedWriters
		c.RevokedWriters = &rw
	}
	if c.Grants == nil && c.Writers == nil && c.Epochs == nil && c.Maps == nil && c.RevokedWriters == nil {
		return nil, true
	}
	return &c, true
}

// changedEntries returns the entries of now that old lacks or holds with
// another value; not ok if now lacks one of old's.
func changedEntries[V comparable](old, now map[string]V) (map[string]V, bool) {
	var out map[string]V
	for k, v := range now {
		if ov, had := old[k]; !had || ov != v {
			if out == nil {
				out = map[string]V{}
			}
			out[k] = v
		}
	}
	for k := range old {
		if _, has := now[k]; !has {
			return nil, false
		}
	}
	return out, true
}

// save makes doc the ledger: its changes appended to the journal, or a new
// snapshot and journal when the changes cannot be lines, the journal is
// stale, or it has grown past the snapshot. The caller holds the lock and
// has refreshed l.
func (l *ledger) save(doc *ledgerDoc) error {
	jl, ok := doc.change(l.mem)
	if ok && jl == nil && l.snap != nil {
		return nil
	}
	var line []byte
	if jl != nil {
		b, err := json.Marshal(jl)
		if err != nil {
			return err
		}
		line = append(b, '\n')
	}
	if !ok || l.snap == nil || l.jstale || l.joff == 0 ||
		l.joff+int64(len(line)) > max(l.snap.Size(), journalMinCompact) {
		return l.compact(doc)
	}
	f, err := os.OpenFile(l.journalPath(), os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Whatever lies past l.joff is a torn line of a writer that died.
	if err := f.Truncate(l.joff); err != nil {
		return err
	}
	if _, err := f.WriteAt(line, l.joff); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	l.mem, l.joff = doc, l.joff+int64(len(line))
	return nil
}

// compact writes doc as a new snapshot of the next generation, then a new
// journal holding only its header. A crash between the two leaves a
// journal of the older generation, which readers ignore.
func (l *ledger) compact(doc *ledgerDoc) error {
	doc.Version = ledgerVersion
	doc.Journal = l.mem.Journal + 1
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := fsx.WriteFile(l.path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	l.mem, l.snap, l.joff, l.jstale = doc, st, 0, true
	header, _ := json.Marshal(journalLine{Journal: &doc.Journal})
	header = append(header, '\n')
	if err := fsx.WriteFile(l.journalPath(), header, 0o600); err != nil {
		return err
	}
	l.joff, l.jstale = int64(len(header)), false
	return nil
}

// clone returns a copy of doc that shares nothing changeable with it.
func (doc *ledgerDoc) clone() *ledgerDoc {
	c := *doc
	c.Grants = make([]*GrantRecord, len(doc.Grants))
	for i, g := range doc.Grants {
		c.Grants[i] = g.clone()
	}
	c.Epochs = maps.Clone(doc.Epochs)
	c.Maps = maps.Clone(doc.Maps)
	if doc.Writers != nil {
		c.Writers = make([]*WriterRecord, len(doc.Writers))
		for i, w := range doc.Writers {
			wc := *w
			c.Writers[i] = &wc
		}
	}
	c.RevokedWriters = slices.Clone(doc.RevokedWriters)
	return &c
}

func (g *GrantRecord) clone() *GrantRecord {
	c := *g
	c.Holders = slices.Clone(g.Holders)
	for i := range c.Holders {
		c.Holders[i].Addrs = slices.Clone(c.Holders[i].Addrs)
	}
	if g.Revocation != nil {
		r := *g.Revocation
		r.Failed = maps.Clone(r.Failed)
		r.Receipts = slices.Clone(r.Receipts)
		c.Revocation = &r
	}
	return &c
}

// equal reports whether g and o record the same (clone's inverse: every
// field, TestLedgerEqualSeesEveryField).
func (g *GrantRecord) equal(o *GrantRecord) bool {
	if g.Recipient != o.Recipient || g.Path != o.Path || g.Epoch != o.Epoch || g.PathHash != o.PathHash ||
		g.Threshold != o.Threshold || g.Shares != o.Shares || g.Sequence != o.Sequence ||
		!g.Created.Equal(o.Created) || !g.Expires.Equal(o.Expires) ||
		g.DelegatingKey != o.DelegatingKey || g.VerifyingKey != o.VerifyingKey ||
		!slices.EqualFunc(g.Holders, o.Holders, func(a, b HolderRecord) bool {
			return a.Fragment == b.Fragment && a.Peer == b.Peer && a.GrantID == b.GrantID &&
				a.Receipt == b.Receipt && slices.Equal(a.Addrs, b.Addrs)
		}) {
		return false
	}
	a, b := g.Revocation, o.Revocation
	if a == nil || b == nil {
		return a == b
	}
	return a.Sequence == b.Sequence && a.At.Equal(b.At) && a.Deleted == b.Deleted && a.Fragments == b.Fragments &&
		a.Acknowledged == b.Acknowledged && a.Dead == b.Dead && maps.Equal(a.Failed, b.Failed) &&
		slices.Equal(a.Receipts, b.Receipts)
}
