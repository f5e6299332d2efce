package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/node"
	"github.com/kadre/kadre/policy"
)

func cmdGrant(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grant", "-to <identity> -path </prefix> [-m 3] [-n 5] [-expires 30d]",
		"Grants a recipient access to every file under a path prefix: splits a re-encryption key m-of-n and places one fragment on each of n nodes.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the path prefix to grant, e.g. /docs")
	m := fs.Int("m", 3, "fragments needed to decrypt")
	n := fs.Int("n", 5, "fragments placed, one per node")
	expires := node.Duration(30 * 24 * time.Hour)
	fs.Var(&expires, "expires", "how long the grant lasts, e.g. 30d or 12h")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *to == "" || *path == "" {
		fs.Usage()
		return errUsage
	}
	recipient, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return err
	}
	if *m < 1 || *n < *m || *n > policy.MaxShares {
		return withHint(fmt.Errorf("invalid threshold %d of %d", *m, *n), "need 1 ≤ m ≤ n ≤ %d", policy.MaxShares)
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Grant(ctx, client.GrantRequest{To: recipient, Prefix: prefix, M: *m, N: *n,
		Expires: time.Now().Add(time.Duration(expires))})
	var few *client.TooFewPlacedError
	if err != nil && !errors.As(err, &few) {
		return withHint(networkHint(err), "check the network with `kadre status`")
	}
	rec := res.Record
	if rec == nil {
		rec = &client.GrantRecord{Recipient: recipient.String(), Path: prefix.String(), Threshold: *m, Shares: *n}
	}
	if u.json {
		if err := printJSON(e.stdout, rec); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "granted %s to %s, %d-of-%d, until %s\n", prefix, shortID(recipient.String()), *m, *n, rec.Expires.Local().Format(time.RFC3339))
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "fragment\tnode")
		for _, h := range rec.Holders {
			fmt.Fprintf(tw, "%d\t%s\n", h.Fragment, h.Peer)
		}
		tw.Flush()
	}
	if few != nil {
		if few.Placed >= *m {
			return withHint(err, "the grant works while those %d nodes do, with less margin; revoke and grant again when more nodes are up", few.Placed)
		}
		return withHint(err, "the grant cannot work; start more nodes (kadre status shows what is reachable) and grant again")
	}
	return nil
}

func cmdRevoke(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "revoke", "-to <identity> -path </prefix>",
		"Revokes the grants of a path prefix to a recipient: every node that holds a fragment deletes it and answers with a signed receipt.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the granted path prefix")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *to == "" || *path == "" {
		fs.Usage()
		return errUsage
	}
	recipient, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return err
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Revoke(ctx, recipient, prefix)
	if err != nil {
		return networkHint(err)
	}
	info := res.Info
	if u.json {
		out := revokeJSON{RevocationInfo: info, Epoch: res.Epoch, Rotated: res.Rotated, RegrantFailed: map[string]string{}}
		for _, g := range res.Regranted {
			out.Regranted = append(out.Regranted, g.Record.Recipient)
		}
		for r, err := range res.RegrantFailed {
			out.RegrantFailed[r] = err.Error()
		}
		for _, w := range res.Writers {
			out.Writers = append(out.Writers, w.String())
		}
		return printJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "revoked %s for %s: %d of %d fragments deleted (each by its current holder, in a signed receipt naming it); %s acknowledged without a fragment\n",
		prefix, shortID(recipient.String()), info.Deleted, info.Fragments, plural(info.Acknowledged, "node", "nodes"))
	for p, why := range info.Failed {
		fmt.Fprintf(e.stdout, "  %s: %s\n", p, why)
	}
	if res.Rotated {
		fmt.Fprintf(e.stdout, "key epoch of %s is now %d: files written from now on open with keys %s never held fragments of\n",
			prefix, res.Epoch, shortID(recipient.String()))
		if n := len(res.Regranted) + len(res.RegrantFailed); n > 0 {
			fmt.Fprintf(e.stdout, "granted %s again at epoch %d to %d of %d other recipients\n", prefix, res.Epoch, len(res.Regranted), n)
		}
		for r, err := range res.RegrantFailed {
			fmt.Fprintf(e.stdout, "  %s: %v (grant again with kadre grant)\n", shortID(r), err)
		}
		for _, w := range res.Writers {
			fmt.Fprintf(e.stdout, "new writer certificate for %s (hand it over; the old one writes to the old epoch):\n%s\n", w.Writer, w)
		}
	}
	switch {
	case !res.Known:
		fmt.Fprintln(e.stdout, "no record of this grant, here or in the holder map: whether it is dead cannot be said")
	case info.Dead:
		fmt.Fprintf(e.stdout, "the grant is dead: %d of %d fragments are provably gone, fewer than m=%d can remain\n", info.Deleted, info.Fragments, res.M)
	default:
		return withHint(fmt.Errorf("the grant is not provably dead: %d of %d fragments provably deleted, %d needed", info.Deleted, info.Fragments, info.Fragments-res.M+1),
			"run `kadre revoke` again when the unreachable holders are back")
	}
	return nil
}

// revokeJSON is `kadre revoke -json`.
type revokeJSON struct {
	*client.RevocationInfo
	Epoch         uint32            `json:"epoch"`
	Rotated       bool              `json:"rotated"`
	Regranted     []string          `json:"regranted,omitempty"`
	RegrantFailed map[string]string `json:"regrant_failed,omitempty"`
	Writers       []string          `json:"writer_certificates,omitempty"`
}

// parseTarget parses the -to and -path of grant and revoke.
func parseTarget(to, path string) (policy.Identity, policy.Path, error) {
	recipient, err := policy.ParseIdentity(to)
	if err != nil {
		return policy.Identity{}, policy.Path{}, targetHint(err)
	}
	prefix, err := policy.NormalizePath(path)
	if err != nil {
		return policy.Identity{}, policy.Path{}, targetHint(err)
	}
	return recipient, prefix, nil
}

func cmdGrants(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grants", "[-refresh]", "Lists this owner's grants: path, recipient, m-of-n, holders, expiry, revocation receipts.")
	u.bind(fs, e)
	refresh := fs.Bool("refresh", false, "ask the network where the fragments are now (after hand-offs) and which holders answer")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	grants, err := c.Grants(ctx, client.GrantsOptions{Refresh: *refresh})
	if err != nil {
		return networkHint(err)
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
		reachable := "-"
		if g.Reachable != nil {
			n := 0
			for _, ok := range g.Reachable {
				if ok {
					n++
				}
			}
			reachable = fmt.Sprint(n)
		}
		split, expires := "-", "-"
		if g.Shares > 0 { // a revocation of a grant this home never recorded has neither
			split = fmt.Sprintf("%d-of-%d", g.Threshold, g.Shares)
			expires = g.Expires.Local().Format("2006-01-02 15:04")
		}
		if g.Superseded && state == "live" {
			state = "live, for files before the epoch rotated"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", g.Path, g.Epoch, shortID(g.Recipient), split,
			len(g.Holders), reachable, expires, state)
	}
	return tw.Flush()
}
