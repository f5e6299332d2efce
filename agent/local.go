package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// Local answers the API with a client of its own: the agent's server
// uses it, and so does the CLI when no agent runs.
type Local struct {
	C *client.Client
	// Anonymous is set for a client without an identity of the user's
	// (status only).
	Anonymous bool
}

var _ Backend = (*Local)(nil)

// Close closes the client.
func (l *Local) Close() error { return l.C.Close() }

// Identity returns the user's public identity.
func (l *Local) Identity(context.Context) (*IdentityInfo, error) {
	id := l.C.Identity()
	return &IdentityInfo{Identity: id.String(), IdentityKey: id.IdentityKey.String(), ReceivingKey: id.ReceivingKey.String()}, nil
}

// Status asks the nodes the client sees for their signed node info.
func (l *Local) Status(ctx context.Context) (*StatusInfo, error) {
	st, err := l.C.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := &StatusInfo{Identity: st.Identity, Peer: st.Peer, Nodes: make([]NodeInfo, len(st.Nodes))}
	if l.Anonymous {
		out.Identity = ""
	}
	for i, n := range st.Nodes {
		out.Nodes[i] = NodeInfo{Peer: n.Peer, Reachable: n.Reachable}
		if !n.Reachable {
			out.Nodes[i].Outcome, out.Nodes[i].Error = string(n.Outcome), n.Outcome.Words()
			continue
		}
		out.Nodes[i].Software = n.Software
		out.Nodes[i].MaxGrantDuration = client.FormatDuration(n.MaxGrantDuration)
		out.Nodes[i].Capacity, out.Nodes[i].FreeSlots = n.Capacity, n.FreeSlots
		out.Nodes[i].LatencyMS = n.Latency.Milliseconds()
	}
	return out, nil
}

// target parses a recipient and a path.
func target(to, path string) (policy.Identity, policy.Path, error) {
	if to == "" || path == "" {
		var missing []string
		if to == "" {
			missing = append(missing, "to")
		}
		if path == "" {
			missing = append(missing, "path")
		}
		return policy.Identity{}, policy.Path{}, explain.WithCode("BAD_REQUEST", fmt.Errorf("missing %s", strings.Join(missing, " and ")), "a grant names a recipient (to) and a path prefix (path)")
	}
	id, err := policy.ParseIdentity(to)
	if err != nil {
		return policy.Identity{}, policy.Path{}, err
	}
	p, err := policy.NormalizePath(path)
	if err != nil {
		return policy.Identity{}, policy.Path{}, err
	}
	return id, p, nil
}

// Grant places a grant (client.Grant).
func (l *Local) Grant(ctx context.Context, req GrantRequest) (*GrantResponse, error) {
	to, prefix, err := target(req.To, req.Path)
	if err != nil {
		return nil, err
	}
	if req.M == 0 {
		req.M = 3
	}
	if req.N == 0 {
		req.N = max(5, req.M)
	}
	expires, err := ParseExpiry(req.Expires, time.Now())
	if err != nil {
		return nil, err
	}
	res, err := l.C.Grant(ctx, client.GrantRequest{To: to, Prefix: prefix, M: req.M, N: req.N, Expires: expires})
	var few *client.TooFewPlacedError
	if err != nil && (res == nil || !errors.As(err, &few)) {
		return nil, err
	}
	out := &GrantResponse{Grant: res.Record, M: req.M, N: req.N, Sampled: res.Sampled}
	if res.Record != nil {
		out.Placed = len(res.Record.Holders)
	}
	for p, why := range res.Refused {
		if out.Refused == nil {
			out.Refused = map[string]Refusal{}
		}
		r := Refusal{Outcome: string(dht.Classify(why)), Reason: why.Error()}
		var re *proto.RemoteError
		if errors.As(why, &re) {
			r.Reason = re.Reason
		}
		out.Refused[p.String()] = r
	}
	if err != nil {
		err = Placement(out)
		p := explain.Of(err)
		out.Error = &p
	}
	return out, err
}

// Placement explains a grant that not every fragment of found a node,
// from the nodes' refusals.
func Placement(g *GrantResponse) error {
	counts := map[string]int{}
	for _, r := range g.Refused {
		counts[r.Outcome]++
	}
	top, n := "", 0
	for o, c := range counts {
		if c > n || (c == n && o < top) {
			top, n = o, c
		}
	}
	msg := fmt.Errorf("only %d of %d fragments were placed (m=%d)%s", g.Placed, g.N, g.M, RefusalSummary(g.Refused))
	switch {
	case top == "EXPIRY_TOO_LONG":
		return explain.WithCode("TOO_FEW_PLACED", msg, "the nodes keep grants for less time than that: choose a shorter -expires (kadre status shows each node's maximum)")
	case top == "CAPACITY":
		return explain.WithCode("TOO_FEW_PLACED", msg, "the nodes are full: start more nodes, or ask their operators for capacity")
	case g.Placed >= g.M:
		return explain.WithCode("TOO_FEW_PLACED", msg, "the grant works while those %d nodes do, with less margin; revoke and grant again when more nodes are up", g.Placed)
	}
	return explain.WithCode("TOO_FEW_PLACED", msg, "the grant cannot work; start more nodes (kadre status shows what is reachable) and grant again")
}

// RefusalSummary says why the nodes refused, most frequent reason first:
// ": 5 nodes refused, expiry too long (…)".
func RefusalSummary(refused map[string]Refusal) string {
	if len(refused) == 0 {
		return ""
	}
	type group struct {
		outcome string
		n       int
		reason  string
	}
	byOutcome := map[string]*group{}
	for _, r := range refused {
		g := byOutcome[r.Outcome]
		if g == nil {
			g = &group{outcome: r.Outcome, reason: r.Reason}
			byOutcome[r.Outcome] = g
		}
		g.n++
	}
	var groups []*group
	for _, g := range byOutcome {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].n != groups[j].n {
			return groups[i].n > groups[j].n
		}
		return groups[i].outcome < groups[j].outcome
	})
	var parts []string
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%d %s (%s)", g.n, dht.Outcome(g.outcome).Words(), g.reason))
	}
	node := "nodes"
	if len(refused) == 1 {
		node = "node"
	}
	return fmt.Sprintf("; %d %s refused: %s", len(refused), node, strings.Join(parts, "; "))
}

// Revoke revokes a prefix for a recipient (client.Revoke).
func (l *Local) Revoke(ctx context.Context, req RevokeRequest) (*RevokeResponse, error) {
	to, prefix, err := target(req.To, req.Path)
	if err != nil {
		return nil, err
	}
	res, err := l.C.Revoke(ctx, to, prefix)
	if err != nil && res == nil {
		return nil, err
	}
	out := &RevokeResponse{RevocationInfo: res.Info, Known: res.Known, M: res.M, N: res.N, Epoch: res.Epoch, Rotated: res.Rotated}
	for _, g := range res.Regranted {
		out.Regranted = append(out.Regranted, g.Record.Recipient)
	}
	for r, err := range res.RegrantFailed {
		if out.RegrantFailed == nil {
			out.RegrantFailed = map[string]string{}
		}
		out.RegrantFailed[r] = err.Error()
	}
	for _, w := range res.Writers {
		out.Writers = append(out.Writers, w.String())
	}
	if err == nil && res.Known && !res.Info.Dead {
		err = explain.WithCode("NOT_DEAD", fmt.Errorf("the grant is not provably dead: %d of %d fragments provably deleted, %d needed",
			res.Info.Deleted, res.Info.Fragments, res.Info.Fragments-res.M+1), "run `kadre revoke` again when the unreachable holders are back")
	}
	if err != nil {
		p := explain.Of(err)
		out.Error = &p
	}
	return out, err
}

// Grants lists the owner's grants (client.Grants).
func (l *Local) Grants(ctx context.Context, refresh bool) ([]client.GrantStatus, error) {
	gs, err := l.C.Grants(ctx, client.GrantsOptions{Refresh: refresh})
	if gs == nil && err == nil {
		gs = []client.GrantStatus{}
	}
	return gs, err
}

// Encrypt writes the kadre file of src under req.Path to dst.
func (l *Local) Encrypt(_ context.Context, dst io.Writer, src io.Reader, req EncryptRequest) error {
	p, err := policy.NormalizePath(req.Path)
	if err != nil {
		return err
	}
	if req.Writer == "" {
		return l.C.Encrypt(dst, src, p)
	}
	cert, err := policy.ParseWriterCertString(req.Writer)
	if err != nil {
		return explain.WithCode("BAD_CERTIFICATE", err, "a writer certificate is the kadrewriter1… string `kadre writer add` printed for you")
	}
	return l.C.EncryptAs(dst, src, p, cert)
}

// DecryptKeys recovers many files' keys (client.DecryptKeys).
func (l *Local) DecryptKeys(ctx context.Context, headers [][]byte, opt DecryptOptions) ([]KeyResult, error) {
	out := make([]KeyResult, len(headers))
	parsed := make([]*kfile.Header, 0, len(headers))
	var at []int
	for i, b := range headers {
		h, err := kfile.ReadHeader(bytes.NewReader(b))
		if err != nil {
			p := explain.Of(err)
			out[i].Error = &p
			continue
		}
		parsed = append(parsed, h)
		at = append(at, i)
	}
	for k, r := range l.C.DecryptKeys(ctx, parsed, client.DecryptOptions{AllowUnsigned: opt.AllowUnsigned}) {
		i := at[k]
		if r.Err != nil {
			p := explain.Of(explain.Decrypt(r.Err, r.Key))
			out[i].Error = &p
			continue
		}
		ki, err := Key(r.Key)
		if err != nil {
			p := explain.Of(err)
			out[i].Error = &p
			continue
		}
		out[i].Key = ki
	}
	return out, nil
}

// Key describes a recovered file key.
func Key(fk *client.FileKey) (*KeyInfo, error) {
	bk, err := fk.Header.BodyKey(fk.DataKey)
	if err != nil {
		return nil, err
	}
	k := &KeyInfo{Format: fk.Header.FormatVersion(), Path: fk.Contents.Path.String(), Owner: fk.Header.Owner().String(),
		Signed: fk.Contents.Signed, HeaderLen: fk.Header.Len(), DataKey: hex.EncodeToString(fk.DataKey),
		BodyKey: hex.EncodeToString(bk), ChunkSize: kfile.ChunkSize, ByOwner: fk.ByOwner, Epoch: fk.Epoch,
		Nodes: explain.Outcomes(fk.Nodes)}
	if !fk.ByOwner {
		k.Prefix, k.M, k.N = fk.Prefix.String(), fk.M, fk.N
	}
	if fk.Contents.Signed {
		k.Writer = fk.Contents.Writer.String()
		k.GroupChunks = kfile.GroupChunks
	}
	if fk.Contents.Cert != nil {
		k.WriterPrefix = fk.Contents.Cert.Prefix.String()
	}
	return k, nil
}
