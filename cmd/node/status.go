package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"text/tabwriter"
	"time"
)

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
	fs := newFlagSet(e, "status", "", "Shows the network as this client sees it: the nodes it knows and their signed node info.")
	u.bind(fs, e)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	s, err := u.connect(ctx, e)
	if err != nil {
		return err
	}
	defer s.close()
	peers := s.host.RoutingTablePeers()
	out := make([]nodeStatus, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			ni, err := s.host.NodeInfo(cctx, p)
			ns := nodeStatus{Peer: p.String()}
			if err != nil {
				ns.Error = describe(err)
			} else {
				ns.Reachable = true
				ns.Software = ni.Software
				ns.MaxGrantDuration = Duration(ni.MaxDuration()).String()
				ns.Capacity, ns.FreeSlots = ni.Capacity, ni.FreeSlots
				ns.LatencyMS = time.Since(start).Milliseconds()
			}
			out[i] = ns
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	if u.json {
		return printJSON(e.stdout, map[string]any{"identity": s.me.String(), "peer": s.host.ID().String(), "nodes": out})
	}
	up := 0
	for _, n := range out {
		if n.Reachable {
			up++
		}
	}
	fmt.Fprintf(e.stdout, "you are %s\n%d nodes known, %d reachable\n", shortID(s.me.String()), len(out), up)
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
