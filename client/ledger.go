package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/policy"
)

// GrantRecord is one grant in the owner's ledger (grants.json, SPEC.md
// §5.6): what was granted to whom, at which key epoch, where the fragments
// went with the nodes' signed receipts, and the revocation if any.
type GrantRecord struct {
	Recipient string         `json:"recipient"`
	Path      string         `json:"path"`
	Epoch     uint32         `json:"epoch"`
	PathHash  string         `json:"path_hash"` // hex
	Threshold int            `json:"m"`
	Shares    int            `json:"n"`
	Sequence  uint64         `json:"sequence"`
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires"`
	Holders   []HolderRecord `json:"holders"`
	// DelegatingKey and VerifyingKey are the grant's keys (hex), which the
	// holder map repeats for the recipient.
	DelegatingKey string          `json:"delegating_key"`
	VerifyingKey  string          `json:"verifying_key"`
	Revocation    *RevocationInfo `json:"revocation,omitempty"`
}

// HolderRecord is the node that accepted one fragment of a grant.
type HolderRecord struct {
	Fragment int      `json:"fragment"`
	Peer     string   `json:"peer"`
	GrantID  string   `json:"grant_id"` // hex: the fragment's grant ID
	Addrs    []string `json:"addrs,omitempty"`
	Receipt  string   `json:"receipt"` // hex of the node-signed receipt
}

// RevocationInfo is what revoking a grant achieved (policy.Verdict).
type RevocationInfo struct {
	Sequence uint64    `json:"sequence"`
	At       time.Time `json:"at"`
	// Deleted counts the fragments whose current holders all signed that
	// they deleted them; Fragments the fragments the map lists.
	Deleted   int `json:"deleted"`
	Fragments int `json:"fragments"`
	// Acknowledged counts the other nodes that accepted the revocation
	// without a fragment to delete (they keep a tombstone).
	Acknowledged int               `json:"acknowledged"`
	Failed       map[string]string `json:"failed,omitempty"`
	Dead         bool              `json:"dead"`
	Receipts     []string          `json:"receipts"`
}

// Live reports whether the grant is neither revoked nor expired at now.
func (g *GrantRecord) Live(now time.Time) bool {
	return g.Revocation == nil && now.Before(g.Expires)
}

// State says whether a recorded grant is live, expired or revoked.
func (g *GrantRecord) State(now time.Time) string {
	switch {
	case g.Revocation != nil && g.Revocation.Dead:
		return "revoked"
	case g.Revocation != nil:
		return "revoked, not provably dead"
	case !now.Before(g.Expires):
		return "expired"
	}
	return "live"
}

// entry is the grant's holder map entry.
func (g *GrantRecord) entry() (policy.MapEntry, error) {
	e := policy.MapEntry{Epoch: g.Epoch, Sequence: g.Sequence, Expiry: uint64(g.Expires.Unix()),
		Threshold: uint8(g.Threshold), Shares: uint8(g.Shares)}
	ph, err1 := hex.DecodeString(g.PathHash)
	dk, err2 := policy.ParsePublicKeyHex(g.DelegatingKey)
	vk, err3 := policy.ParsePublicKeyHex(g.VerifyingKey)
	if err := errors.Join(err1, err2, err3); err != nil || len(ph) != policy.PathHashSize {
		return e, fmt.Errorf("client: ledger record of %s is incomplete: %v", g.Path, err)
	}
	e.PathHash, e.DelegatingKey, e.VerifyingKey = policy.PathHash(ph), dk, vk
	for _, h := range g.Holders {
		id, err := hex.DecodeString(h.GrantID)
		node, err2 := peerKeyOf(h.Peer)
		if err != nil || err2 != nil || len(id) != 32 {
			return e, fmt.Errorf("client: ledger record of %s has a bad holder", g.Path)
		}
		e.Holders = append(e.Holders, policy.MapHolder{Node: node, GrantID: policy.RecordID(id)})
	}
	return e, nil
}

type ledgerDoc struct {
	Version int `json:"version"`
	// Journal is the generation of the journal that continues this
	// snapshot (grants.json.journal, SPEC.md §5.6).
	Journal uint64         `json:"journal,omitempty"`
	Grants  []*GrantRecord `json:"grants"`
	ledgerMeta
}

// ledgerMeta is the ledger but its grants.
type ledgerMeta struct {
	// Epochs is the current key epoch of every prefix ever rotated (absent:
	// epoch 0).
	Epochs map[string]uint32 `json:"epochs,omitempty"`
	// Maps is the last holder map sequence published per recipient.
	Maps map[string]uint64 `json:"maps,omitempty"`
	// Writers are the writer certificates the owner issued.
	Writers []*WriterRecord `json:"writers,omitempty"`
	// RevokedWriters are the identity keys (hex) of the writers the owner
	// revoked, sorted: every holder map she publishes lists them.
	RevokedWriters []string `json:"revoked_writers,omitempty"`
}

// WriterRecord is one writer certificate in the owner's ledger.
type WriterRecord struct {
	Writer string    `json:"writer"` // identity string of the writer
	Prefix string    `json:"prefix"`
	Cert   string    `json:"cert"` // the certificate's string form
	Issued time.Time `json:"issued"`
	// Superseded is set when a key epoch rotation under the prefix
	// replaced the certificate by a newer one.
	Superseded bool `json:"superseded,omitempty"`
}

// writerRevoked reports whether the owner revoked writer key w.
func (doc *ledgerDoc) writerRevoked(w policy.PublicKey) bool {
	return slices.Contains(doc.RevokedWriters, w.String())
}

// revokedWriterKeys returns RevokedWriters as keys, sorted.
func (doc *ledgerDoc) revokedWriterKeys() ([]policy.PublicKey, error) {
	var out []policy.PublicKey
	for _, s := range doc.RevokedWriters {
		k, err := policy.ParsePublicKeyHex(s)
		if err != nil {
			return nil, fmt.Errorf("client: ledger lists a bad revoked writer: %w", err)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b policy.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// ledgerVersion is the version this kadre writes; it reads version 2
// (the same snapshot, never continued by a journal) as well.
const ledgerVersion = 3

// ledger is the owner's grants.json and its journal. Every change is a
// read-modify-write under an flock of grants.json.lock, so that several
// processes (the CLI, an agent) of one user can grant at once, made durable
// by appending what changed to the journal (journal.go).
type ledger struct {
	path string // "" keeps nothing (a client without a home)
	mu   sync.Mutex
	// mem is the ledger as of the snapshot snap and the first joff bytes
	// of its journal (path == "": the only copy).
	mem  *ledgerDoc
	snap os.FileInfo
	joff int64
	// jstale says the journal on disk belongs to an older snapshot (a
	// compaction stopped before replacing it): the next change compacts.
	jstale bool
}

// ErrLedgerVersion means grants.json was written by another version.
var ErrLedgerVersion = errors.New("client: the grants ledger is of another version")

// read returns a snapshot of the ledger, the caller's to keep.
func (l *ledger) read() (*ledgerDoc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		return l.memory(), nil
	}
	if _, err := os.Stat(l.path); errors.Is(err, fs.ErrNotExist) {
		return &ledgerDoc{Version: ledgerVersion}, nil
	}
	lock, err := fsx.Lock(l.path+".lock", true)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := l.refresh(); err != nil {
		return nil, err
	}
	return l.mem.clone(), nil
}

// update applies fn to the ledger under the lock and saves what it changed
// if fn succeeds.
func (l *ledger) update(fn func(doc *ledgerDoc) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		return fn(l.memory())
	}
	lock, err := fsx.Lock(l.path+".lock", true)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := l.refresh(); err != nil {
		return err
	}
	doc := l.mem.clone()
	if err := fn(doc); err != nil {
		return err
	}
	if err := l.save(doc); err != nil {
		l.snap = nil // read everything again next time
		return err
	}
	return nil
}

func (l *ledger) memory() *ledgerDoc {
	if l.mem == nil {
		l.mem = &ledgerDoc{Version: ledgerVersion}
	}
	return l.mem
}

// epoch returns the current key epoch of prefix.
func (doc *ledgerDoc) epoch(prefix string) uint32 { return doc.Epochs[prefix] }

// nextSequence is above every grant or revocation recorded for the
// recipient and path, and never below the current Unix time in
// milliseconds, so that an owner who lost the ledger still signs newer
// records than before (SPEC.md §5.6).
func (doc *ledgerDoc) nextSequence(recipient, path string, now time.Time) uint64 {
	seq := uint64(now.UnixMilli())
	for _, g := range doc.Grants {
		if g.Recipient != recipient || g.Path != path {
			continue
		}
		seq = max(seq, g.Sequence+1)
		if g.Revocation != nil {
			seq = max(seq, g.Revocation.Sequence+1)
		}
	}
	return seq
}

// live returns the recorded live grants to recipient.
func (doc *ledgerDoc) live(recipient string, now time.Time) []*GrantRecord {
	var out []*GrantRecord
	for _, g := range doc.Grants {
		if g.Recipient == recipient && g.Live(now) {
			out = append(out, g)
		}
	}
	return out
}
