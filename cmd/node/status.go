package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/node"
)

func cmdStatus(ctx context.Context, e *env, args []string) error {
	var u userFlags
	var ep endpointFlags
	fs := newFlagSet(e, "status", "[-node [-data-dir dir]]", "Shows the network as this client sees it: the nodes it knows and their signed node info (software, the longest grant each keeps, free slots). Needs no identity: without one it asks as an anonymous client. With -node, shows the node running on this machine instead (its local endpoint's /status, with the token of its cookie file).")
	u.bind(fs, e)
	local := fs.Bool("node", false, "show the local node's status (needs read access to its data directory's endpoint.cookie)")
	ep.bind(fs, e)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *local {
		return localStatus(ctx, e, &ep, u.json)
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

// localStatus prints the local node's /status.
func localStatus(ctx context.Context, e *env, ep *endpointFlags, asJSON bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := ep.request(cctx, http.MethodGet, "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st node.Status
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
		return fmt.Errorf("node answered %s: %s", resp.Status, body)
	}
	if asJSON {
		return printJSON(e.stdout, st)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "peer\t%s\n", st.PeerID)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "peers\t%d connected, %d in the routing table\n", st.Peers, st.RoutingTable)
	fmt.Fprintf(tw, "grants\t%d of %d\n", st.Grants, st.Capacity)
	fmt.Fprintf(tw, "tombstones\t%d\n", st.Tombstones)
	for _, kind := range []string{"grants", "history", "maps"} {
		if u, ok := st.State[kind]; ok && u.Limit > 0 {
			fmt.Fprintf(tw, "kept for others: %s\t%d of %d (an owner %d, a network %d, the last %d for small networks)\n",
				kind, u.Used, u.Limit, u.Owner, u.Group, u.Reserve)
		}
	}
	fmt.Fprintf(tw, "kfrag cache\t%d entries, %d hits, %d misses\n", st.KFragCache.Entries, st.KFragCache.Hits, st.KFragCache.Misses)
	fmt.Fprintf(tw, "max grant\t%s\n", st.MaxGrantDuration)
	fmt.Fprintf(tw, "uptime\t%s\n", time.Duration(st.UptimeSeconds)*time.Second)
	return tw.Flush()
}
