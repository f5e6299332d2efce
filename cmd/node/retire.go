package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func cmdRetire(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "retire", "[-metrics-addr 127.0.0.1:4711]",
		"Asks the node running on this machine to hand every fragment it holds to other nodes and then stop (retirement).")
	addr := fs.String("metrics-addr", firstNonEmpty(e.getenv("KADRE_METRICS_ADDR"), "127.0.0.1:4711"), "the node's local endpoint (its -metrics-addr)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("node answered %s: %s", resp.Status, body)
	}
	fmt.Fprint(e.stdout, string(body))
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
