package agent

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/version"
	"github.com/kadre/kadre/kfile"
)

// OpenAPI is the API's OpenAPI 3 document, served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Files of a running agent in the user's home directory (SPEC.md §9.1).
const (
	InfoFile = "agent.json" // where it listens and its pid, 0600
)

// DefaultListen is the agent's default address.
const DefaultListen = "127.0.0.1:4712"

// Limits of the API (SPEC.md §9.3).
const (
	// MaxJSON bounds the JSON body of a request other than the batches.
	MaxJSON = 1 << 20
	// MaxKeysBody bounds a /v1/decrypt-keys request.
	MaxKeysBody = 32 << 20
	// MaxBatchBody bounds a /v1/decrypt-batch request.
	MaxBatchBody = 64 << 20
	// MaxBatchFiles bounds the files of one batch request.
	MaxBatchFiles = 10000
)

// Config configures an agent.
type Config struct {
	// Client is the user's client, identity unlocked. Required.
	Client *client.Client
	// Home is the user's home directory, where the agent writes its
	// cookie and info files. Required.
	Home string
	// Listen is the loopback address to listen on. Default DefaultListen;
	// port 0 picks one.
	Listen string
	// Logger receives the agent's logs. Default: discard.
	Logger *slog.Logger
}

// Server is a running agent.
type Server struct {
	cfg     Config
	local   *Local
	token   string
	url     string
	srv     *http.Server
	started time.Time
	joined  chan struct{}
	stop    chan struct{}
	once    sync.Once
}

// agentInfo is agent.json.
type agentInfo struct {
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// ErrRunning means another agent already serves the home directory.
var ErrRunning = errors.New("agent: another agent serves this home directory")

// Start listens on a loopback address, writes the cookie and info files,
// serves the API and joins the network in the background (a warm host).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Client == nil || cfg.Home == "" {
		return nil, errors.New("agent: needs a client and a home directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil || !loopbackHost(host) || host == "localhost" {
		return nil, fmt.Errorf("agent: listen address %q is not a loopback IP and port (e.g. 127.0.0.1:4712)", cfg.Listen)
	}
	if r, err := Discover(ctx, cfg.Home); err == nil && r != nil {
		return nil, fmt.Errorf("%w at %s", ErrRunning, r.URL)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	token, err := newToken()
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, local: &Local{C: cfg.Client}, token: token, url: "http://" + ln.Addr().String(),
		started: time.Now(), joined: make(chan struct{}), stop: make(chan struct{})}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		ln.Close()
		return nil, err
	}
	if err := writeCookie(filepath.Join(cfg.Home, CookieFile), token); err != nil {
		ln.Close()
		return nil, err
	}
	info, _ := json.MarshalIndent(agentInfo{URL: s.url, PID: os.Getpid(), Version: version.Version, Started: s.started.UTC()}, "", "  ")
	if err := fsx.WriteFile(filepath.Join(cfg.Home, InfoFile), append(info, '\n'), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	go s.srv.Serve(ln)
	go func() {
		defer close(s.joined)
		if _, err := cfg.Client.Host(context.Background()); err != nil {
			cfg.Logger.Warn("not joined to the network yet; the first request that needs it will try again", "err", err)
		}
	}()
	cfg.Logger.Info("agent ready", "url", s.url, "identity", cfg.Client.Identity().String())
	return s, nil
}

// URL is where the agent serves.
func (s *Server) URL() string { return s.url }

// Token is the agent's token.
func (s *Server) Token() string { return s.token }

// Stopped is closed when a client asked the agent to stop (POST
// /v1/shutdown).
func (s *Server) Stopped() <-chan struct{} { return s.stop }

// Close stops serving (requests in flight get ctx's time to finish) and
// removes the cookie and info files if they are still this agent's.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if tok, rerr := ReadCookie(filepath.Join(s.cfg.Home, CookieFile)); rerr == nil && tok == s.token {
		os.Remove(filepath.Join(s.cfg.Home, CookieFile))
		os.Remove(filepath.Join(s.cfg.Home, InfoFile))
	}
	return err
}

// route is one path's handlers by method, and whether it needs the token.
type route struct {
	open     bool
	handlers map[string]http.HandlerFunc
}

func (s *Server) routes() http.Handler {
	routes := s.table()
	return s.router(routes)
}

// table is every endpoint: path, methods, handlers (the OpenAPI document
// lists the same).
func (s *Server) table() map[string]*route {
	return map[string]*route{
		"/v1/openapi.json":  {open: true, handlers: map[string]http.HandlerFunc{"GET": s.openapi}},
		"/v1/identity":      {handlers: map[string]http.HandlerFunc{"GET": s.identity}},
		"/v1/status":        {handlers: map[string]http.HandlerFunc{"GET": s.status}},
		"/v1/grants":        {handlers: map[string]http.HandlerFunc{"GET": s.grants, "POST": s.grant}},
		"/v1/revoke":        {handlers: map[string]http.HandlerFunc{"POST": s.revoke}},
		"/v1/encrypt":       {handlers: map[string]http.HandlerFunc{"POST": s.encrypt}},
		"/v1/decrypt":       {handlers: map[string]http.HandlerFunc{"POST": s.decrypt}},
		"/v1/decrypt-key":   {handlers: map[string]http.HandlerFunc{"POST": s.decryptKey}},
		"/v1/decrypt-keys":  {handlers: map[string]http.HandlerFunc{"POST": s.decryptKeys}},
		"/v1/decrypt-batch": {handlers: map[string]http.HandlerFunc{"POST": s.decryptBatch}},
		"/v1/shutdown":      {handlers: map[string]http.HandlerFunc{"POST": s.shutdown}},
	}
}

func (s *Server) router(routes map[string]*route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := routes[r.URL.Path]
		if rt == nil || !rt.open {
			if status, code, msg := authorize(r, s.token); status != 0 {
				p := explain.Problem{Code: code, Message: msg}
				if code == "UNAUTHORIZED" {
					p.Hint = "read the token from " + CookieFile + " in the kadre home directory of the agent's user"
				}
				writeProblem(w, status, p)
				return
			}
		} else if r.Header.Get("Origin") != "" || !loopbackHost(r.Host) {
			status, code, msg := authorize(r, s.token)
			writeProblem(w, status, explain.Problem{Code: code, Message: msg})
			return
		}
		if rt == nil {
			writeProblem(w, http.StatusNotFound, explain.Problem{Code: "NOT_FOUND", Message: fmt.Sprintf("no endpoint %s", r.URL.Path), Hint: "GET /v1/openapi.json lists the endpoints"})
			return
		}
		h := rt.handlers[r.Method]
		if h == nil {
			writeProblem(w, http.StatusMethodNotAllowed, explain.Problem{Code: "METHOD_NOT_ALLOWED", Message: fmt.Sprintf("%s does not take %s", r.URL.Path, r.Method)})
			return
		}
		h(w, r)
	})
}

// status codes of the problems (SPEC.md §9.4).
var httpStatus = map[string]int{
	"BAD_REQUEST": 400, "BAD_JSON": 400, "INVALID_PATH": 400, "INVALID_IDENTITY": 400, "BAD_THRESHOLD": 400,
	"BAD_EXPIRY": 400, "NOT_KADRE_FILE": 400, "MALFORMED_HEADER": 400, "UNSIGNED": 400, "UNSUPPORTED_VERSION": 400,
	"UNSUPPORTED_ALGORITHM": 400, "TRUNCATED": 400, "BAD_CERTIFICATE": 400, "MALFORMED": 400,
	"UNAUTHORIZED": 401, "FORBIDDEN_ORIGIN": 403, "FORBIDDEN_HOST": 403,
	"NOT_GRANTED": 403, "REVOKED": 403, "EXPIRED": 403, "WRITER_REVOKED": 403,
	"NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405, "TOO_LARGE": 413,
	"BAD_SIGNATURE": 422, "NOT_AUTHORIZED": 422, "PATH_MISMATCH": 422, "CORRUPT": 422, "WRONG_KEY": 422,
	"EXPIRY_TOO_LONG": 422, "RATE_LIMITED": 429,
	"NO_BOOTSTRAP": 503, "JOIN_FAILED": 503, "TOO_FEW_ANSWERS": 503, "TOO_FEW_PLACED": 503, "NOT_DEAD": 503,
}

// StatusOf is the HTTP status of a problem code (500 for others).
func StatusOf(code string) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type problemBody struct {
	Error explain.Problem `json:"error"`
}

func writeProblem(w http.ResponseWriter, status int, p explain.Problem) {
	writeJSON(w, status, problemBody{p})
}

func writeError(w http.ResponseWriter, err error) {
	p := explain.Of(err)
	writeProblem(w, StatusOf(p.Code), p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// readJSON decodes a JSON body of at most limit bytes strictly.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeProblem(w, http.StatusRequestEntityTooLarge, explain.Problem{Code: "TOO_LARGE", Message: fmt.Sprintf("the request body is larger than %d bytes", limit), Hint: "split the batch into smaller requests"})
		return false
	case err != nil:
		writeProblem(w, http.StatusBadRequest, explain.Problem{Code: "BAD_JSON", Message: "the request body is not the JSON this endpoint takes: " + err.Error(), Hint: "GET /v1/openapi.json describes every request"})
		return false
	}
	return true
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI)
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	id, _ := s.local.Identity(r.Context())
	writeJSON(w, http.StatusOK, id)
}

func (s *Server) info() *AgentInfo {
	joined := false
	select {
	case <-s.joined:
		joined = true
	default:
	}
	return &AgentInfo{Version: version.Version, Home: s.cfg.Home, URL: s.url, PID: os.Getpid(), Started: s.started.UTC(), Joined: joined}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.local.Status(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	st.Agent = s.info()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) grants(w http.ResponseWriter, r *http.Request) {
	refresh, err := boolParam(r, "refresh")
	if err != nil {
		writeError(w, err)
		return
	}
	gs, err := s.local.Grants(r.Context(), refresh)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, gs)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, explain.WithCode("BAD_REQUEST", fmt.Errorf("%s=%q is not true or false", name, v), "")
	}
	return b, nil
}

func (s *Server) grant(w http.ResponseWriter, r *http.Request) {
	var req GrantRequest
	if !readJSON(w, r, MaxJSON, &req) {
		return
	}
	res, err := s.local.Grant(r.Context(), req)
	switch {
	case res == nil:
		writeError(w, err)
	case res.Error != nil && res.Placed < res.M:
		writeJSON(w, StatusOf(res.Error.Code), res)
	case res.Error != nil:
		writeJSON(w, http.StatusOK, res) // placed, with less margin
	default:
		writeJSON(w, http.StatusCreated, res)
	}
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if !readJSON(w, r, MaxJSON, &req) {
		return
	}
	res, err := s.local.Revoke(r.Context(), req)
	if res == nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// lazyWriter sends the response's status and headers at the first byte
// of the body, so that a failure before it is still answered as JSON.
type lazyWriter struct {
	w       http.ResponseWriter
	r       *http.Request
	started bool
	header  func(http.Header)
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		if l.header != nil {
			l.header(l.w.Header())
		}
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(b)
}

// fail ends a streamed response: as JSON if nothing was sent yet, else by
// cutting the connection so that the client cannot take the partial body
// for a whole one.
func (l *lazyWriter) fail(err error, log *slog.Logger) {
	if !l.started {
		drain(l.r)
		writeError(l.w, err)
		return
	}
	log.Info("stream aborted", "err", err)
	panic(http.ErrAbortHandler)
}

// drain reads what is left of a request's body, up to a bound, before a
// refusal is written: a client still sending it then reads the refusal
// rather than a reset connection.
func drain(r *http.Request) {
	io.CopyN(io.Discard, r.Body, 4<<20)
}

func (s *Server) encrypt(w http.ResponseWriter, r *http.Request) {
	req := EncryptRequest{Path: r.URL.Query().Get("path"), Writer: r.URL.Query().Get("writer")}
	if req.Path == "" {
		drain(r)
		writeError(w, explain.WithCode("BAD_REQUEST", errors.New("missing path"), "POST /v1/encrypt?path=/docs/report.txt with the plaintext as the body"))
		return
	}
	http.NewResponseController(w).EnableFullDuplex()
	lw := &lazyWriter{w: w, r: r, header: func(h http.Header) { h.Set("Content-Type", "application/octet-stream") }}
	if err := s.local.Encrypt(r.Context(), lw, r.Body, req); err != nil {
		lw.fail(err, s.cfg.Logger)
	}
}

func (s *Server) decrypt(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) {
		drain(r)
		writeError(w, err)
	}
	allow, err := boolParam(r, "allow_unsigned")
	if err != nil {
		fail(err)
		return
	}
	fk, err := s.cfg.Client.DecryptKey(r.Context(), r.Body, client.DecryptOptions{AllowUnsigned: allow})
	if err != nil {
		fail(explain.Decrypt(err, fk))
		return
	}
	ki, err := Key(fk)
	if err != nil {
		fail(err)
		return
	}
	body, err := kfile.NewReader(r.Body, fk.Header, fk.DataKey)
	if err != nil {
		fail(err)
		return
	}
	http.NewResponseController(w).EnableFullDuplex()
	lw := &lazyWriter{w: w, r: r, header: func(h http.Header) { keyHeaders(h, ki) }}
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(lw, body, buf); err != nil {
		lw.fail(err, s.cfg.Logger)
		return
	}
	if !lw.started { // an empty file
		lw.Write(nil)
	}
}

// keyHeaders describes a decrypted file in response headers (the path is
// percent-encoded: header values are ASCII).
func keyHeaders(h http.Header, k *KeyInfo) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Kadre-Path", url.PathEscape(k.Path))
	h.Set("X-Kadre-Owner", k.Owner)
	if k.Writer != "" {
		h.Set("X-Kadre-Writer", k.Writer)
	}
	h.Set("X-Kadre-Signed", strconv.FormatBool(k.Signed))
	if k.Prefix != "" {
		h.Set("X-Kadre-Prefix", url.PathEscape(k.Prefix))
	}
}

func (s *Server) decryptKey(w http.ResponseWriter, r *http.Request) {
	defer drain(r) // the body after the header is not needed
	allow, err := boolParam(r, "allow_unsigned")
	if err != nil {
		writeError(w, err)
		return
	}
	fk, err := s.cfg.Client.DecryptKey(r.Context(), r.Body, client.DecryptOptions{AllowUnsigned: allow})
	if err == nil {
		var ki *KeyInfo
		if ki, err = Key(fk); err == nil {
			drain(r)
			writeJSON(w, http.StatusOK, ki)
			return
		}
	}
	drain(r)
	writeError(w, explain.Decrypt(err, fk))
}

// KeysRequest is the body of /v1/decrypt-keys: file headers (each
// possibly followed by the body), base64.
type KeysRequest struct {
	Headers       [][]byte `json:"headers"`
	AllowUnsigned bool     `json:"allow_unsigned,omitempty"`
}

// KeysResponse answers it, one result per header.
type KeysResponse struct {
	Results []KeyResult `json:"results"`
}

func (s *Server) decryptKeys(w http.ResponseWriter, r *http.Request) {
	var req KeysRequest
	if !readJSON(w, r, MaxKeysBody, &req) {
		return
	}
	if !batchSize(w, len(req.Headers)) {
		return
	}
	res, err := s.local.DecryptKeys(r.Context(), req.Headers, DecryptOptions{AllowUnsigned: req.AllowUnsigned})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, KeysResponse{Results: res})
}

func batchSize(w http.ResponseWriter, n int) bool {
	switch {
	case n == 0:
		writeProblem(w, http.StatusBadRequest, explain.Problem{Code: "BAD_REQUEST", Message: "no file in the batch"})
		return false
	case n > MaxBatchFiles:
		writeProblem(w, http.StatusRequestEntityTooLarge, explain.Problem{Code: "TOO_LARGE", Message: fmt.Sprintf("%d files in one batch, at most %d", n, MaxBatchFiles), Hint: "split the batch into smaller requests"})
		return false
	}
	return true
}

// BatchFile is one file of /v1/decrypt-batch: the whole kadre file,
// base64, and a name of the caller's choosing, echoed.
type BatchFile struct {
	Name string `json:"name,omitempty"`
	Data []byte `json:"data"`
}

// BatchRequest is the body of /v1/decrypt-batch.
type BatchRequest struct {
	Files         []BatchFile `json:"files"`
	AllowUnsigned bool        `json:"allow_unsigned,omitempty"`
}

// BatchResult is one file's plaintext (base64) and key, or its problem.
type BatchResult struct {
	Name      string           `json:"name,omitempty"`
	Plaintext []byte           `json:"plaintext,omitempty"`
	Key       *KeyInfo         `json:"key,omitempty"`
	Error     *explain.Problem `json:"error,omitempty"`
}

// BatchResponse answers it, one result per file, in order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
	OK      int           `json:"ok"`
	Failed  int           `json:"failed"`
}

func (s *Server) decryptBatch(w http.ResponseWriter, r *http.Request) {
	var req BatchRequest
	if !readJSON(w, r, MaxBatchBody, &req) {
		return
	}
	if !batchSize(w, len(req.Files)) {
		return
	}
	headers := make([][]byte, len(req.Files))
	for i, f := range req.Files {
		headers[i] = f.Data
	}
	keys, err := s.local.DecryptKeys(r.Context(), headers, DecryptOptions{AllowUnsigned: req.AllowUnsigned})
	if err != nil {
		writeError(w, err)
		return
	}
	out := BatchResponse{Results: make([]BatchResult, len(req.Files))}
	for i, f := range req.Files {
		res := &out.Results[i]
		res.Name, res.Key, res.Error = f.Name, keys[i].Key, keys[i].Error
		if res.Error == nil {
			if res.Plaintext, err = openBody(f.Data, res.Key); err != nil {
				p := explain.Of(err)
				res.Key, res.Error = nil, &p
			}
		}
		if res.Error != nil {
			out.Failed++
		} else {
			out.OK++
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// openBody decrypts a whole file in memory with its key.
func openBody(data []byte, k *KeyInfo) ([]byte, error) {
	h, err := kfile.ReadHeader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	key, err := decodeKey(k.DataKey)
	if err != nil {
		return nil, err
	}
	rd, err := kfile.NewReader(bytes.NewReader(data[h.Len():]), h, key)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rd)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

func decodeKey(s string) ([]byte, error) { return hex.DecodeString(s) }

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"stopping": s.url})
	s.once.Do(func() { close(s.stop) })
}
