package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/kadre/kadre/node"
)

// nodeStatus is one row of `kadre status -json`.
type nodeStatus struct {
	Peer             string `json:"peer"`
	Reachable        bool   `json:"reachable"`
	Error            string `json:"error,omitempty"`
	Software         string `json:"software,omitempty"`
	MaxGrantDuration string `json:"max_grant_duration,omitempty"`
	Capacity         uint64 `json:"capacity,omitempty"`
	FreeSlots        uint64 `json:"free_slots,omitempty"`
	LatencyMS        int64  `json:"latency_ms,omitempty"`
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	var u userFlags
	var ep endpointFlags
	fs := newFlagSet(e, "status", "[-node [-data-dir dir]]", "Shows the network as this client sees it: the nodes it knows and their signed node info. With -node, shows the node running on this machine instead (its local endpoint's /status, with the token of its cookie file).")
	u.bind(fs, e)
	local := fs.Bool("node", false, "show the local node's status (needs read access to its data directory's endpoint.cookie)")
	ep.bind(fs, e)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *local {
		return localStatus(ctx, e, &ep, u.json)
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return networkHint(err)
	}
	out := make([]nodeStatus, len(st.Nodes))
	up := 0
	for i, n := range st.Nodes {
		out[i] = nodeStatus{Peer: n.Peer, Reachable: n.Reachable}
		if !n.Reachable {
			out[i].Error = n.Outcome.Words()
			continue
		}
		up++
		out[i].Software = n.Software
		out[i].MaxGrantDuration = node.Duration(n.MaxGrantDuration).String()
		out[i].Capacity, out[i].FreeSlots = n.Capacity, n.FreeSlots
		out[i].LatencyMS = n.Latency.Milliseconds()
	}
	if u.json {
		return printJSON(e.stdout, map[string]any{"identity": st.Identity, "peer": st.Peer, "nodes": out})
	}
	fmt.Fprintf(e.stdout, "you are %s\n%d nodes known, %d reachable\n", shortID(st.Identity), len(out), up)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tsoftware\tmax grant\tfree/capacity\tlatency")
	for _, n := range out {
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", n.Peer, n.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%dms\n", n.Peer, n.Software, n.MaxGrantDuration, n.FreeSlots, n.Capacity, n.LatencyMS)
	}
	return tw.Flush()
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
