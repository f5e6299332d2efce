// Package localapi guards kadre's local HTTP endpoints: the node's
// (status, metrics, retirement) and any other program's local API. Such an
// endpoint listens on 127.0.0.1, where every program of the machine and
// every web page its browser opens can reach it, so listening locally is
// no authentication (SPEC.md §8.6):
//
//   - every request must carry the endpoint's token, `Authorization: Bearer
//     <token>`. The token is 32 random bytes (64 hex characters), new at
//     every start, written to a cookie file of mode 0600 (as bitcoind's
//     .cookie): whoever can read the file may use the endpoint, nobody
//     else. Prometheus reads it with `authorization: {credentials_file:
//     <cookie>}`;
//   - a request with an Origin header, or a Sec-Fetch-Site header other
//     than "none", comes from a web page (browsers add them, scripts and
//     command-line tools do not) and is refused before anything else, even
//     with the right token;
//   - Go's profiles (/debug/pprof/) are served only when the program
//     enables them, and then behind the token too.
//
// Refusals are 403 (a browser) and 401 (no or a wrong token), with a JSON
// body {"error": "..."}; the token is compared in constant time.
package localapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/kadre/kadre/internal/fsx"
)

// TokenSize is the size of a token in bytes (its hex form is twice that).
const TokenSize = 32

// ErrCookie means a cookie file is missing, not a token, or readable by
// others.
var ErrCookie = errors.New("localapi: no usable cookie file")

// NewCookie creates a fresh random token and writes it, hex and a newline,
// to path with mode 0600, atomically (a previous cookie is replaced).
func NewCookie(path string) (string, error) {
	b := make([]byte, TokenSize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := fsx.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("localapi: failed to write the cookie: %w", err)
	}
	return tok, nil
}

// ReadCookie reads the token of a cookie file. A file that group or
// others may read is refused: its token is no longer a secret of its
// owner.
func ReadCookie(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist (is the program running, and is this its data directory?)", ErrCookie, path)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCookie, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %v, readable by others", ErrCookie, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCookie, err)
	}
	tok := strings.TrimSpace(string(b))
	if raw, err := hex.DecodeString(tok); err != nil || len(raw) != TokenSize {
		return "", fmt.Errorf("%w: %s does not hold a token", ErrCookie, path)
	}
	return tok, nil
}

// RemoveCookie deletes a cookie file if it still holds tok (a newer
// instance may have replaced it).
func RemoveCookie(path, tok string) {
	if got, err := ReadCookie(path); err == nil && got == tok {
		os.Remove(path)
	}
}

// Options configure Guard.
type Options struct {
	// Token is the one every request must present. Required.
	Token string
	// Pprof serves Go's profiles under /debug/pprof/ (behind the token).
	Pprof bool
}

// Guard wraps h: it refuses browser requests and requests without the
// token, and adds /debug/pprof/ when enabled.
func Guard(h http.Handler, o Options) http.Handler {
	if o.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/", h)
		h = mux
	}
	want := []byte(o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			refuse(w, http.StatusForbidden, "requests from web pages (with an Origin header) are refused")
			return
		}
		if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "none" {
			refuse(w, http.StatusForbidden, "requests from web pages (Sec-Fetch-Site "+s+") are refused")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kadre"`)
			refuse(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <the cookie file's token>")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Server is a guarded endpoint listening on a local address.
type Server struct {
	srv  *http.Server
	addr string
}

// Listen serves Guard(h, o) on addr (host:port; port 0 picks one).
func Listen(addr string, h http.Handler, o Options) (*Server, error) {
	if o.Token == "" {
		return nil, errors.New("localapi: no token")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: Guard(h, o), ReadHeaderTimeout: 5 * time.Second}, addr: ln.Addr().String()}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server, waiting up to 2 s for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// NewRequest is http.NewRequestWithContext with the token set.
func NewRequest(ctx context.Context, method, url, token string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}
