package node

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/localapi"
)

// endpoint is the node's local HTTP endpoint: /metrics, /status, POST
// /retire and, when enabled, /debug/pprof; every request needs the token of
// the data directory's cookie file (package localapi, SPEC.md §8.6).
type endpoint struct {
	srv    *localapi.Server
	addr   string
	cookie string
	token  string
}

func serve(n *Node, addr string) (*endpoint, error) {
	cookie := filepath.Join(n.cfg.DataDir, CookieFile)
	tok, err := localapi.NewCookie(cookie)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.HandleFunc("POST /retire", n.serveRetire)
	srv, err := localapi.Listen(addr, mux, localapi.Options{Token: tok, Pprof: n.cfg.Pprof})
	if err != nil {
		localapi.RemoveCookie(cookie, tok)
		return nil, err
	}
	e := &endpoint{srv: srv, addr: srv.Addr(), cookie: cookie, token: tok}
	n.log.Info("local endpoint", "addr", e.addr, "cookie", cookie, "pprof", n.cfg.Pprof)
	return e, nil
}

func (e *endpoint) close() error {
	err := e.srv.Close()
	localapi.RemoveCookie(e.cookie, e.token)
	return err
}

// RetireResult is the answer of POST /retire: what the hand-off did with
// every fragment, before the node stops.
type RetireResult struct {
	Moved   int               `json:"moved"`
	Expired int               `json:"expired"`
	Kept    map[string]string `json:"kept,omitempty"` // grant ID → why no node took it
	Error   string            `json:"error,omitempty"`
}

// serveRetire hands every fragment off, answers with the report and then
// asks the node's owner to stop it (RetireRequested). A second request
// while the first runs gets 409.
func (n *Node) serveRetire(w http.ResponseWriter, r *http.Request) {
	first := false
	n.retireOnce.Do(func() { first = true })
	if !first {
		writeJSON(w, http.StatusConflict, RetireResult{Error: "the node is already retiring"})
		return
	}
	defer close(n.retired)
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(n.cfg.ShutdownTimeout))
	defer cancel()
	rep, err := n.Retire(ctx)
	writeJSON(w, http.StatusOK, retireResult(rep, err))
}

func retireResult(rep *dht.RetireReport, err error) RetireResult {
	var res RetireResult
	if rep != nil {
		res.Moved, res.Expired = len(rep.Moved), rep.Expired
		for id, why := range rep.Kept {
			if res.Kept == nil {
				res.Kept = map[string]string{}
			}
			res.Kept[id.String()] = why.Error()
		}
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
