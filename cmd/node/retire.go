package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"time"

	"github.com/kadre/kadre/internal/localapi"
	"github.com/kadre/kadre/node"
)

// endpointFlags find a local node's endpoint: its address and the token
// in its cookie file (SPEC.md §8.6).
type endpointFlags struct {
	e       *env
	dataDir string
	cookie  string
	addr    string
}

func (f *endpointFlags) bind(fs *flagSet, e *env) {
	f.e = e
	fs.StringVar(&f.dataDir, "data-dir", firstNonEmpty(e.getenv("KADRE_DATA_DIR"), node.DefaultConfig().DataDir), "the node's data directory, where its endpoint.cookie and node.json are (env KADRE_DATA_DIR)")
	fs.StringVar(&f.cookie, "cookie", "", "the node's cookie file (default <data-dir>/endpoint.cookie)")
	fs.StringVar(&f.addr, "metrics-addr", e.getenv("KADRE_METRICS_ADDR"), "the node's local endpoint (default: from <data-dir>/node.json, else 127.0.0.1:4711; env KADRE_METRICS_ADDR)")
}

// request makes an authenticated request to the node's endpoint.
func (f *endpointFlags) request(ctx context.Context, method, path string) (*http.Response, error) {
	cookie := f.cookie
	if cookie == "" {
		cookie = filepath.Join(f.dataDir, node.CookieFile)
	}
	addr := f.addr
	if addr == "" {
		if info, err := node.ReadInfo(f.dataDir); err == nil && info.Endpoint != "" {
			addr = info.Endpoint
		} else {
			addr = "127.0.0.1:4711"
		}
	}
	tok, err := localapi.ReadCookie(cookie)
	if err != nil {
		return nil, withHint(err, "run this as the node's user and pass its -data-dir (or -cookie)")
	}
	req, err := localapi.NewRequest(ctx, method, "http://"+addr+path, tok, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, withHint(fmt.Errorf("no node answers on %s: %w", addr, err), "is the node running? pass its -metrics-addr")
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, withHint(fmt.Errorf("the node on %s refused the token of %s", addr, cookie), "another node answers on this address, or the cookie is stale: pass the running node's -data-dir")
	}
	return resp, nil
}

func cmdRetire(ctx context.Context, e *env, args []string) error {
	var ep endpointFlags
	fs := newFlagSet(e, "retire", "[-data-dir dir] [-timeout 5m]",
		"Asks the node running on this machine to hand every fragment it holds to other nodes and then stop (retirement). Prints what became of each fragment. It authenticates with the token of the node's cookie file.")
	ep.bind(fs, e)
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the hand-off")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := ep.request(cctx, http.MethodPost, "/retire")
	if err != nil {
		return err
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
