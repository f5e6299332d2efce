package agent

// The agent's local-endpoint authentication (SPEC.md §9.2), kept in this
// one file so that it can give way to the shared implementation the
// node's local endpoint is getting: a random token in a cookie file that
// only the user can read (mode 0600, as bitcoind's .cookie), checked on
// every request in constant time; requests that carry an Origin header
// (a web page's) are refused, whatever their token, and so are requests
// whose Host is not a loopback name (DNS rebinding).

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/kadre/kadre/internal/fsx"
)

// CookieFile is the token's file in the user's home directory.
const CookieFile = "agent.cookie"

// tokenBytes is the token's entropy.
const tokenBytes = 32

// ErrCookie means the cookie file is missing, damaged or readable by
// others.
var ErrCookie = errors.New("agent: unusable cookie file")

// newToken returns a fresh random token, hex.
func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeCookie writes token to path, mode 0600.
func writeCookie(path, token string) error {
	return fsx.WriteFile(path, []byte(token+"\n"), 0o600)
}

// ReadCookie reads the token from path, refusing a file that others than
// its owner may read.
func ReadCookie(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %v; it must be 0600", ErrCookie, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) != 2*tokenBytes {
		return "", fmt.Errorf("%w: %s does not hold a token", ErrCookie, path)
	}
	return tok, nil
}

// authorize checks one request: no Origin, a loopback Host, the bearer
// token. It returns the refusal's status, code and message, or 0.
func authorize(r *http.Request, token string) (int, string, string) {
	if r.Header.Get("Origin") != "" {
		return http.StatusForbidden, "FORBIDDEN_ORIGIN", "requests from web pages (with an Origin header) are refused"
	}
	if !loopbackHost(r.Host) {
		return http.StatusForbidden, "FORBIDDEN_HOST", fmt.Sprintf("host %q is not this machine's loopback address", r.Host)
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return http.StatusUnauthorized, "UNAUTHORIZED", "missing token: send Authorization: Bearer <the content of " + CookieFile + ">"
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
		return http.StatusUnauthorized, "UNAUTHORIZED", "wrong token"
	}
	return 0, "", ""
}

// loopbackHost reports whether a Host header names this machine: a
// loopback IP or localhost, with or without a port.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
