package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/explain"
)

// Remote asks a running agent (what the CLI does when one serves its
// home directory).
type Remote struct {
	URL   string
	Token string
	HTTP  *http.Client
}

var _ Backend = (*Remote)(nil)

// ErrGone means the agent stopped answering: the connection was refused
// or cut in the middle of a request.
var ErrGone = errors.New("agent: the agent stopped answering")

// Discover returns the agent serving home, nil if none runs: no info or
// cookie file, or an agent that does not answer (the files of one that
// died). It asks the agent who it is, within a second.
func Discover(ctx context.Context, home string) (*Remote, error) {
	b, err := os.ReadFile(filepath.Join(home, InfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var info agentInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("agent: %s: %w", filepath.Join(home, InfoFile), err)
	}
	u, err := url.Parse(info.URL)
	if err != nil || u.Scheme != "http" || !loopbackHost(u.Host) {
		return nil, fmt.Errorf("agent: %s names %q, not a loopback address", filepath.Join(home, InfoFile), info.URL)
	}
	tok, err := ReadCookie(filepath.Join(home, CookieFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := &Remote{URL: info.URL, Token: tok, HTTP: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute,
	}}}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := r.Identity(cctx); err != nil {
		if errors.Is(err, ErrGone) || errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		return nil, err
	}
	return r, nil
}

// Close releases idle connections.
func (r *Remote) Close() error {
	r.HTTP.CloseIdleConnections()
	return nil
}

// do sends a request and decodes a JSON answer into out (if not nil);
// a problem answer is returned as the error, with body decoded into out
// too when the endpoint puts results beside it.
func (r *Remote) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	resp, err := r.send(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	if resp.StatusCode >= 400 {
		var pb problemBody
		if json.Unmarshal(b, &pb) != nil || pb.Error.Code == "" {
			return fmt.Errorf("agent: %s %s: %s", method, path, resp.Status)
		}
		if out != nil {
			json.Unmarshal(b, out)
		}
		return ProblemError(&pb.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("agent: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

func (r *Remote) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, explain.WithCode("AGENT_GONE", fmt.Errorf("%w: %w", ErrGone, err), "start it again with `kadre agent`, or pass -no-agent")
	}
	return resp, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// Identity asks the agent's identity.
func (r *Remote) Identity(ctx context.Context) (*IdentityInfo, error) {
	var out IdentityInfo
	return &out, r.do(ctx, "GET", "/v1/identity", nil, "", &out)
}

// Status asks the agent's view of the network.
func (r *Remote) Status(ctx context.Context) (*StatusInfo, error) {
	var out StatusInfo
	return &out, r.do(ctx, "GET", "/v1/status", nil, "", &out)
}

// Grant asks the agent to grant.
func (r *Remote) Grant(ctx context.Context, req GrantRequest) (*GrantResponse, error) {
	var out GrantResponse
	err := r.do(ctx, "POST", "/v1/grants", jsonBody(req), "application/json", &out)
	if err == nil && out.Error != nil {
		err = ProblemError(out.Error) // placed with less margin
	}
	if err != nil && out.N == 0 {
		return nil, err
	}
	return &out, err
}

// Revoke asks the agent to revoke.
func (r *Remote) Revoke(ctx context.Context, req RevokeRequest) (*RevokeResponse, error) {
	var out RevokeResponse
	if err := r.do(ctx, "POST", "/v1/revoke", jsonBody(req), "application/json", &out); err != nil {
		return nil, err
	}
	return &out, ProblemError(out.Error)
}

// Grants asks the agent for the owner's grants.
func (r *Remote) Grants(ctx context.Context, refresh bool) ([]client.GrantStatus, error) {
	var out []client.GrantStatus
	return out, r.do(ctx, "GET", "/v1/grants?refresh="+strconv.FormatBool(refresh), nil, "", &out)
}

// Encrypt streams src to the agent and its kadre file back to dst.
func (r *Remote) Encrypt(ctx context.Context, dst io.Writer, src io.Reader, req EncryptRequest) error {
	q := url.Values{"path": {req.Path}}
	if req.Writer != "" {
		q.Set("writer", req.Writer)
	}
	resp, err := r.send(ctx, "POST", "/v1/encrypt?"+q.Encode(), io.NopCloser(src), "application/octet-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var pb problemBody
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pb) != nil || pb.Error.Code == "" {
			return fmt.Errorf("agent: encrypt: %s", resp.Status)
		}
		return ProblemError(&pb.Error)
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return fmt.Errorf("%w: the encrypted stream was cut: %w", ErrGone, err)
	}
	return nil
}

// keysPerRequest bounds the headers of one /v1/decrypt-keys request.
const keysPerRequest = 1000

// DecryptKeys sends the headers to the agent, keysPerRequest at a time.
func (r *Remote) DecryptKeys(ctx context.Context, headers [][]byte, opt DecryptOptions) ([]KeyResult, error) {
	out := make([]KeyResult, 0, len(headers))
	for start := 0; start < len(headers); start += keysPerRequest {
		end := min(start+keysPerRequest, len(headers))
		var resp KeysResponse
		if err := r.do(ctx, "POST", "/v1/decrypt-keys", jsonBody(KeysRequest{Headers: headers[start:end], AllowUnsigned: opt.AllowUnsigned}), "application/json", &resp); err != nil {
			return out, err
		}
		if len(resp.Results) != end-start {
			return out, fmt.Errorf("agent: %d results for %d headers", len(resp.Results), end-start)
		}
		out = append(out, resp.Results...)
	}
	return out, nil
}

// Shutdown asks the agent to stop.
func (r *Remote) Shutdown(ctx context.Context) error {
	return r.do(ctx, "POST", "/v1/shutdown", nil, "", nil)
}
