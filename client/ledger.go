package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/kadre/kadre/internal/fsx"
)

// GrantRecord is one grant in the owner's ledger (grants.json, SPEC.md
// §5.6): what was granted to whom, where the fragments went with the
// nodes' signed receipts, and the revocation if any.
type GrantRecord struct {
	Recipient string         `json:"recipient"`
	Path      string         `json:"path"`
	Threshold int            `json:"m"`
	Shares    int            `json:"n"`
	Sequence  uint64         `json:"sequence"`
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires"`
	Holders   []HolderRecord `json:"holders"`
	// Announced lists the nodes that announced fragments of this owner's
	// grants to the recipient when last refreshed: the holders after
	// hand-offs.
	Announced  []string        `json:"announced,omitempty"`
	Revocation *RevocationInfo `json:"revocation,omitempty"`
}

// HolderRecord is the node that accepted one fragment of a grant.
type HolderRecord struct {
	Fragment int      `json:"fragment"`
	Peer     string   `json:"peer"`
	Addrs    []string `json:"addrs,omitempty"`
	Receipt  string   `json:"receipt"` // hex of the node-signed receipt
}

// RevocationInfo is what revoking a grant achieved.
type RevocationInfo struct {
	Sequence uint64            `json:"sequence"`
	At       time.Time         `json:"at"`
	Deleted  int               `json:"deleted"`  // nodes that deleted a fragment (signed receipts)
	NotHeld  int               `json:"not_held"` // nodes that hold none and keep a tombstone
	Failed   map[string]string `json:"failed,omitempty"`
	Dead     bool              `json:"dead"` // see policy.RevocationVerdict
	Receipts []string          `json:"receipts"`
}

// State says whether a recorded grant is live, expired or revoked.
func (g *GrantRecord) State(now time.Time) string {
	switch {
	case g.Revocation != nil && g.Revocation.Dead:
		return "revoked"
	case g.Revocation != nil:
		return "revoked, not provably dead"
	case !g.Expires.IsZero() && !now.Before(g.Expires):
		return "expired"
	}
	return "live"
}

type ledgerDoc struct {
	Version int            `json:"version"`
	Grants  []*GrantRecord `json:"grants"`
}

// ledger is the owner's grants.json. Every change is a read-modify-write
// under an flock of grants.json.lock, so that several processes (the CLI,
// an agent) of one user can grant at once, and a durable atomic write.
type ledger struct {
	path string // "" keeps nothing (a client without a home)
	mu   sync.Mutex
	mem  *ledgerDoc
}

func (l *ledger) load() (*ledgerDoc, error) {
	if l.path == "" {
		if l.mem == nil {
			l.mem = &ledgerDoc{Version: 1}
		}
		return l.mem, nil
	}
	doc := &ledgerDoc{Version: 1}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, fmt.Errorf("client: grants ledger %s: %w", l.path, err)
	}
	return doc, nil
}

// read returns a snapshot of the ledger.
func (l *ledger) read() ([]*GrantRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	doc, err := l.load()
	if err != nil {
		return nil, err
	}
	return doc.Grants, nil
}

// update applies fn to the ledger under the lock and saves it if fn
// succeeds.
func (l *ledger) update(fn func(doc *ledgerDoc) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path != "" {
		lock, err := fsx.Lock(l.path+".lock", true)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	doc, err := l.load()
	if err != nil {
		return err
	}
	if err := fn(doc); err != nil {
		return err
	}
	if l.path == "" {
		return nil
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return fsx.WriteFile(l.path, append(b, '\n'), 0o600)
}

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
