package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/kadre/kadre/node"
)

func cmdRetire(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "retire", "[-metrics-addr 127.0.0.1:4711] [-timeout 5m]",
		"Asks the node running on this machine to hand every fragment it holds to other nodes and then stop (retirement). Prints what became of each fragment.")
	addr := fs.String("metrics-addr", firstNonEmpty(e.getenv("KADRE_METRICS_ADDR"), "127.0.0.1:4711"), "the node's local endpoint (its -metrics-addr)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the hand-off")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, "http://"+*addr+"/retire", strings.NewReader(""))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return withHint(fmt.Errorf("no node answers on %s: %w", *addr, err), "pass the node's -metrics-addr")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res node.RetireResult
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("node answered %s: %s", resp.Status, body)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("node answered %s: %s", resp.Status, res.Error)
	}
	fmt.Fprintf(e.stdout, "retiring: %s handed off, %d expired and dropped, %d kept\n", plural(res.Moved, "fragment", "fragments"), res.Expired, len(res.Kept))
	ids := make([]string, 0, len(res.Kept))
	for id := range res.Kept {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(e.stdout, "  kept %s: %s\n", id, res.Kept[id])
	}
	switch {
	case res.Error != "":
		return withHint(fmt.Errorf("the hand-off stopped: %s", res.Error), "the node stops anyway; start it again and retire once more to move what it kept")
	case len(res.Kept) > 0:
		return withHint(fmt.Errorf("%s could not be handed off", plural(len(res.Kept), "fragment", "fragments")),
			"the node stopped with them; start it again when more nodes are up and retire once more")
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
