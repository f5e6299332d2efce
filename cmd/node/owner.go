package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/policy"
)

func cmdGrant(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grant", "-to <identity> -path </prefix> [-m 3] [-n 5] [-expires 30d]",
		"Grants a recipient access to every file under a path prefix: splits a re-encryption key m-of-n and places one fragment on each of n nodes. The nodes' signed node info is checked first: a grant fewer than m of them would keep is refused before anything is split.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the path prefix to grant, e.g. /docs")
	m := fs.Int("m", 3, "fragments needed to decrypt")
	n := fs.Int("n", 5, fmt.Sprintf("fragments placed, one per node (at most %d)", policy.MaxShares))
	expires := fs.String("expires", "30d", "how long the grant lasts: a duration (30d, 12h, 2w, 1y) or a date (2027-01-01 at midnight, or RFC 3339: 2027-01-01T12:00:00Z)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-to": *to == "", "-path": *path == ""}); err != nil {
		return err
	}
	if _, _, err := parseTarget(*to, *path); err != nil {
		return u.fail(err, nil)
	}
	if err := client.CheckThreshold(*m, *n); err != nil {
		return u.fail(explain.WithHint(err, "-m is how many fragments decrypt, -n how many are placed: 1 ≤ m ≤ n ≤ %d", policy.MaxShares), nil)
	}
	until, err := agent.ParseExpiry(*expires, time.Now())
	if err != nil {
		return u.fail(err, nil)
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	res, err := b.Grant(ctx, agent.GrantRequest{To: *to, Path: *path, M: *m, N: *n, Expires: until.Format(time.RFC3339)})
	if res == nil {
		if explain.Hint(err) == "" {
			err = withHint(err, "check the network with `kadre status`")
		}
		return u.fail(err, nil)
	}
	if u.json {
		if err := printJSON(e.stdout, grantJSON(res)); err != nil {
			return err
		}
		if err != nil {
			return errReported
		}
		return nil
	}
	if rec := res.Grant; rec != nil {
		fmt.Fprintf(e.stdout, "granted %s to %s, %d-of-%d, until %s: %d of %d fragments placed\n", rec.Path, shortID(rec.Recipient),
			rec.Threshold, rec.Shares, rec.Expires.Local().Format(time.RFC3339), len(rec.Holders), rec.Shares)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "fragment\tnode")
		for _, h := range rec.Holders {
			fmt.Fprintf(tw, "%d\t%s\n", h.Fragment, h.Peer)
		}
		tw.Flush()
	}
	return err
}

// grantJSON is `kadre grant -json`: the grant record as the ledger keeps
// it, with how the placement went.
func grantJSON(res *agent.GrantResponse) map[string]any {
	out := map[string]any{}
	if res.Grant != nil {
		b, _ := json.Marshal(res.Grant)
		json.Unmarshal(b, &out)
	}
	out["placed"], out["sampled"] = res.Placed, res.Sampled
	if res.Refused != nil {
		out["refused"] = res.Refused
	}
	if res.Error != nil {
		out["error"] = res.Error
	}
	return out
}

func cmdRevoke(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "revoke", "-to <identity> -path </prefix>",
		"Revokes the grants of a path prefix to a recipient: every node that holds a fragment deletes it and answers with a signed receipt. Then the prefix's key epoch rotates, so that files written from now on are out of the recipient's reach even if holders kept his fragments.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the granted path prefix")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-to": *to == "", "-path": *path == ""}); err != nil {
		return err
	}
	recipient, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return u.fail(err, nil)
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	res, err := b.Revoke(ctx, agent.RevokeRequest{To: *to, Path: *path})
	if res == nil {
		return u.fail(err, nil)
	}
	if u.json {
		if perr := printJSON(e.stdout, res); perr != nil {
			return perr
		}
		if err != nil {
			return errReported
		}
		return nil
	}
	info := res.RevocationInfo
	fmt.Fprintf(e.stdout, "revoked %s for %s: %d of %d fragments deleted (each by its current holder, in a signed receipt naming it); %s acknowledged without holding a fragment\n",
		prefix, shortID(recipient.String()), info.Deleted, info.Fragments, plural(info.Acknowledged, "node", "nodes"))
	peers := make([]string, 0, len(info.Failed))
	for p := range info.Failed {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		fmt.Fprintf(e.stdout, "  %s: %s\n", p, info.Failed[p])
	}
	if res.Rotated {
		fmt.Fprintf(e.stdout, "key epoch of %s is now %d: files written from now on open with keys %s never held fragments of\n",
			prefix, res.Epoch, shortID(recipient.String()))
		if n := len(res.Regranted) + len(res.RegrantFailed); n > 0 {
			fmt.Fprintf(e.stdout, "granted %s again at epoch %d to %d of %d other recipients\n", prefix, res.Epoch, len(res.Regranted), n)
		}
		for r, why := range res.RegrantFailed {
			fmt.Fprintf(e.stdout, "  %s: %s (grant again with kadre grant)\n", shortID(r), why)
		}
		for _, w := range res.Writers {
			fmt.Fprintf(e.stdout, "new writer certificate (hand it to its writer; the old one writes to the old epoch):\n%s\n", w)
		}
	}
	switch {
	case !res.Known:
		fmt.Fprintln(e.stdout, "no record of this grant, here or in the holder map: whether it is dead cannot be said")
	case info.Dead:
		fmt.Fprintf(e.stdout, "the grant is dead: %d of %d fragments are provably gone, fewer than m=%d can remain\n", info.Deleted, info.Fragments, res.M)
	}
	return err
}

// parseTarget parses the -to and -path of grant and revoke.
func parseTarget(to, path string) (policy.Identity, policy.Path, error) {
	recipient, err := policy.ParseIdentity(to)
	if err != nil {
		return policy.Identity{}, policy.Path{}, err
	}
	prefix, err := policy.NormalizePath(path)
	if err != nil {
		return policy.Identity{}, policy.Path{}, err
	}
	return recipient, prefix, nil
}

func cmdGrants(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grants", "[-refresh]", "Lists this owner's grants: path, key epoch, recipient, m-of-n, holders, expiry, state (a grant superseded by a key epoch rotation serves only the files written before it).")
	u.bind(fs, e)
	refresh := fs.Bool("refresh", false, "ask the network where the fragments are now (after hand-offs) and which holders answer")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	grants, err := b.Grants(ctx, *refresh)
	if err != nil {
		return u.fail(err, nil)
	}
	if u.json {
		if grants == nil {
			grants = []client.GrantStatus{}
		}
		return printJSON(e.stdout, grants)
	}
	if len(grants) == 0 {
		fmt.Fprintln(e.stdout, "no grants yet (kadre grant -to … -path …)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "path\tepoch\trecipient\tm-of-n\tholders\treachable\texpires\tstate")
	now := time.Now()
	for _, g := range grants {
		state := g.State(now)
		if g.Revocation != nil {
			dead := "not provably dead"
			if g.Revocation.Dead {
				dead = "dead"
			}
			state = fmt.Sprintf("revoked (%d of %d fragments deleted, %s)", g.Revocation.Deleted, g.Revocation.Fragments, dead)
		}
		split, expires, reachable := "-", "-", "-"
		if g.Shares > 0 { // a revocation of a grant this home never recorded has neither
			split = fmt.Sprintf("%d-of-%d", g.Threshold, g.Shares)
			expires = g.Expires.Local().Format("2006-01-02 15:04")
		}
		if g.Reachable != nil {
			reachable = fmt.Sprintf("%d/%d", reachableFragments(g), len(g.Holders))
		}
		if g.Superseded && state == "live" {
			state = "live, for files before the epoch rotated"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", g.Path, g.Epoch, shortID(g.Recipient), split,
			len(g.Holders), reachable, expires, state)
	}
	return tw.Flush()
}

// reachableFragments counts a grant's fragments with at least one current
// holder that answered (a fragment handed off has its new holder).
func reachableFragments(g client.GrantStatus) int {
	n := 0
	for _, holders := range g.Current {
		for _, p := range holders {
			if g.Reachable[p] {
				n++
				break
			}
		}
	}
	return n
}
