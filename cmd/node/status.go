package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/node"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "status", "", "Shows the network as this client sees it: the nodes it knows and their signed node info (software, the longest grant each keeps, free slots). Needs no identity: without one it asks as an anonymous client.")
	u.bind(fs, e)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	b, err := u.backend(ctx, e)
	if errors.Is(err, client.ErrNoIdentity) {
		b, err = u.anonymous()
	}
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	st, err := b.Status(ctx)
	if err != nil {
		return u.fail(err, nil)
	}
	if u.json {
		if st.Nodes == nil {
			st.Nodes = []agent.NodeInfo{}
		}
		return printJSON(e.stdout, st)
	}
	up := 0
	for _, n := range st.Nodes {
		if n.Reachable {
			up++
		}
	}
	if st.Identity == "" {
		fmt.Fprintln(e.stdout, "no user identity here: asking as an anonymous client")
	} else {
		fmt.Fprintf(e.stdout, "you are %s\n", shortID(st.Identity))
	}
	if a := st.Agent; a != nil {
		fmt.Fprintf(e.stdout, "through the agent at %s (pid %d, kadre %s)\n", a.URL, a.PID, a.Version)
	}
	fmt.Fprintf(e.stdout, "%d nodes known, %d reachable\n", len(st.Nodes), up)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tsoftware\tmax grant\tfree/capacity\tlatency")
	for _, n := range st.Nodes {
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", n.Peer, n.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%dms\n", n.Peer, n.Software, n.MaxGrantDuration, n.FreeSlots, n.Capacity, n.LatencyMS)
	}
	return tw.Flush()
}

func cmdID(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "id", "[-data-dir dir] [-json]", "Prints a node's peer ID (from its identity key) and the addresses it last listened on, without starting it: what other nodes and users put in -bootstrap (/ip4/…/tcp/…/p2p/<peer ID>).")
	dataDir := fs.String("data-dir", "", "the node's data directory (env KADRE_DATA_DIR; default "+node.DefaultConfig().DataDir+")")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	dir := firstNonEmpty(*dataDir, e.getenv("KADRE_DATA_DIR"), node.DefaultConfig().DataDir)
	id, err := node.ReadIdentity(dir)
	if errors.Is(err, os.ErrNotExist) {
		return withHint(fmt.Errorf("no node identity in %s: %w", dir, err), "pass the node's -data-dir; a node creates its identity when it first starts (kadre run)")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, id)
	}
	fmt.Fprintln(e.stdout, id.PeerID)
	for _, a := range id.Addrs {
		fmt.Fprintln(e.stdout, a)
	}
	return nil
}
