package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/explain"
)

// The messages of the agent's API (SPEC.md §9.3, agent/openapi.json), which
// the CLI also uses when it works alone: Local answers them with a client
// of its own, Remote asks a running agent. Field names are the JSON keys.

// IdentityInfo is the user's public identity.
type IdentityInfo struct {
	Identity     string `json:"identity"`
	IdentityKey  string `json:"identity_key"`
	ReceivingKey string `json:"receiving_key"`
}

// NodeInfo is one node as the client sees it.
type NodeInfo struct {
	Peer      string `json:"peer"`
	Reachable bool   `json:"reachable"`
	// Outcome names why it is not reachable (dht.Outcome: UNREACHABLE,
	// TIMEOUT, NOT_KADRE, …) and Error says it in words.
	Outcome          string `json:"outcome,omitempty"`
	Error            string `json:"error,omitempty"`
	Software         string `json:"software,omitempty"`
	MaxGrantDuration string `json:"max_grant_duration,omitempty"`
	Capacity         uint64 `json:"capacity,omitempty"`
	FreeSlots        uint64 `json:"free_slots,omitempty"`
	LatencyMS        int64  `json:"latency_ms,omitempty"`
}

// StatusInfo is the network as the client sees it.
type StatusInfo struct {
	// Identity is the user's, "" for a client without one.
	Identity string     `json:"identity,omitempty"`
	Peer     string     `json:"peer"`
	Nodes    []NodeInfo `json:"nodes"`
	// Agent is set when a running agent answered.
	Agent *AgentInfo `json:"agent,omitempty"`
}

// AgentInfo describes a running agent.
type AgentInfo struct {
	Version string    `json:"version"`
	Home    string    `json:"home"`
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Joined says whether its host has joined the network.
	Joined bool `json:"joined"`
}

// GrantRequest asks for a grant. Expires is a duration from now ("30d",
// "12h", "2w", "1y") or a date ("2027-01-01", RFC 3339); empty is 30
// days. M and N default to 3 and 5.
type GrantRequest struct {
	To      string `json:"to"`
	Path    string `json:"path"`
	M       int    `json:"m,omitempty"`
	N       int    `json:"n,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// Refusal is why one node did not take a fragment.
type Refusal struct {
	Outcome string `json:"outcome"` // dht.Outcome: EXPIRY_TOO_LONG, CAPACITY, UNREACHABLE, …
	Reason  string `json:"reason"`
}

// GrantResponse is a grant as placed. Error is set when not every
// fragment found a node (TOO_FEW_PLACED): with Placed ≥ M the grant works
// with less margin, with fewer it cannot work.
type GrantResponse struct {
	Grant   *client.GrantRecord `json:"grant,omitempty"`
	Placed  int                 `json:"placed"`
	M       int                 `json:"m"`
	N       int                 `json:"n"`
	Sampled int                 `json:"sampled"`
	Refused map[string]Refusal  `json:"refused,omitempty"`
	Error   *explain.Problem    `json:"error,omitempty"`
}

// RevokeRequest asks to revoke every grant of a prefix to a recipient.
type RevokeRequest struct {
	To   string `json:"to"`
	Path string `json:"path"`
}

// RevokeResponse is what revoking achieved: the signed receipts and the
// verdict (SPEC.md §5.2.7), the key epoch rotation and its re-grants.
// Error is set (NOT_DEAD) when the grant is not provably dead.
type RevokeResponse struct {
	*client.RevocationInfo
	Known         bool              `json:"known"`
	M             int               `json:"m,omitempty"`
	N             int               `json:"n,omitempty"`
	Epoch         uint32            `json:"epoch"`
	Rotated       bool              `json:"rotated"`
	Regranted     []string          `json:"regranted,omitempty"`
	RegrantFailed map[string]string `json:"regrant_failed,omitempty"`
	Writers       []string          `json:"writer_certificates,omitempty"`
	Error         *explain.Problem  `json:"error,omitempty"`
}

// EncryptRequest names what an encryption writes: the file's path and,
// for a writer who is not the owner, the owner's writer certificate
// (kadrewriter1…).
type EncryptRequest struct {
	Path   string `json:"path"`
	Writer string `json:"writer,omitempty"`
}

// DecryptOptions tune decryption (client.DecryptOptions).
type DecryptOptions struct {
	AllowUnsigned bool `json:"allow_unsigned,omitempty"`
}

// KeyInfo is a file's key and layout (SPEC.md §7.2, §7.3), what an
// application needs to decrypt the body itself, with how it was obtained.
type KeyInfo struct {
	Format       int    `json:"format"`
	Path         string `json:"path"`
	Owner        string `json:"owner"`
	Writer       string `json:"writer,omitempty"`
	WriterPrefix string `json:"writer_prefix,omitempty"`
	Signed       bool   `json:"signed"`
	HeaderLen    int    `json:"header_len"`
	DataKey      string `json:"data_key"`
	BodyKey      string `json:"body_key"`
	ChunkSize    int    `json:"chunk_size"`
	GroupChunks  int    `json:"group_chunks,omitempty"`
	// ByOwner: the owner opened it offline. Otherwise Prefix is the grant
	// that served, split M-of-N at key epoch Epoch.
	ByOwner bool   `json:"by_owner"`
	Prefix  string `json:"prefix,omitempty"`
	Epoch   uint32 `json:"epoch"`
	M       int    `json:"m,omitempty"`
	N       int    `json:"n,omitempty"`
	// Nodes is every node's answer (dht.Outcome names).
	Nodes map[string]string `json:"nodes,omitempty"`
}

// KeyResult is one file of a batch: its key or why there is none.
type KeyResult struct {
	Key   *KeyInfo         `json:"key,omitempty"`
	Error *explain.Problem `json:"error,omitempty"`
}

// Backend is what kadre's user commands run against: a running agent
// (Remote) or a client of their own (Local). Errors carry the codes and
// hints of package explain.
type Backend interface {
	Identity(ctx context.Context) (*IdentityInfo, error)
	Status(ctx context.Context) (*StatusInfo, error)
	// Grant returns the response with an error when not every fragment
	// was placed, or only an error when nothing was.
	Grant(ctx context.Context, req GrantRequest) (*GrantResponse, error)
	// Revoke returns the response with an error when the grant is not
	// provably dead.
	Revoke(ctx context.Context, req RevokeRequest) (*RevokeResponse, error)
	Grants(ctx context.Context, refresh bool) ([]client.GrantStatus, error)
	// Encrypt writes the kadre file of src to dst, streaming.
	Encrypt(ctx context.Context, dst io.Writer, src io.Reader, req EncryptRequest) error
	// DecryptKeys recovers the keys of many files from their headers
	// (each header's bytes, possibly followed by the body), one result per
	// header; the error is for the request as a whole.
	DecryptKeys(ctx context.Context, headers [][]byte, opt DecryptOptions) ([]KeyResult, error)
	Close() error
}

// ProblemError turns a Problem back into an error with its code and hint.
func ProblemError(p *explain.Problem) error {
	if p == nil {
		return nil
	}
	return &explain.Error{Err: errors.New(p.Message), Code: p.Code, Hint: p.Hint, Nodes: p.Nodes}
}

// DefaultExpiry is how long a grant lasts when the request says nothing.
const DefaultExpiry = 30 * 24 * time.Hour

// ParseExpiry reads a grant's expiry: a duration from now — Go's ("12h",
// "90m", "1h30m") or a number of days, weeks or years ("30d", "2w", "1y",
// a year being 365 days) — or a date, "2027-01-01" (midnight, local time)
// or RFC 3339 ("2027-01-01T12:00:00Z"). It must be in the future.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) error {
		return fmt.Errorf("%w: %q %s", client.ErrBadExpiry, s, why)
	}
	if s == "" {
		return now.Add(DefaultExpiry), nil
	}
	var t time.Time
	if d, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		t = d
	} else if d, err := time.Parse(time.RFC3339, s); err == nil {
		t = d
	} else {
		d, err := parseDuration(s)
		if err != nil {
			return time.Time{}, bad("is neither a duration (30d, 12h, 2w, 1y) nor a date (2027-01-01, 2027-01-01T12:00:00Z)")
		}
		if d <= 0 {
			return time.Time{}, bad("is not a duration from now")
		}
		t = now.Add(d)
	}
	if t.Sub(now) < time.Minute {
		return time.Time{}, bad(fmt.Sprintf("is %s, not at least a minute from now", t.Local().Format(time.RFC3339)))
	}
	return t, nil
}

// parseDuration is time.ParseDuration with d, w and y units.
func parseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || n != n || n*float64(unit) > float64(100*365*24*time.Hour) {
				return 0, errors.New("bad duration") // at most a century
			}
			return time.Duration(n * float64(unit)), nil
		}
	}
	return time.ParseDuration(s)
}
