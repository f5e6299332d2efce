package localapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCookie(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.cookie")
	tok, err := NewCookie(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cookie mode %v, %v", fi.Mode().Perm(), err)
	}
	if got, err := ReadCookie(path); err != nil || got != tok || len(tok) != 2*TokenSize {
		t.Fatalf("ReadCookie = %q, %v; want %q", got, err, tok)
	}
	tok2, _ := NewCookie(path)
	if tok2 == tok {
		t.Fatal("a new cookie has the old token")
	}
	os.Chmod(path, 0o640)
	if _, err := ReadCookie(path); !errors.Is(err, ErrCookie) {
		t.Fatalf("group-readable cookie: %v", err)
	}
	os.Chmod(path, 0o600)
	RemoveCookie(path, tok) // not the current token: kept
	if _, err := os.Stat(path); err != nil {
		t.Fatal("RemoveCookie removed another instance's cookie")
	}
	RemoveCookie(path, tok2)
	if _, err := ReadCookie(path); !errors.Is(err, ErrCookie) {
		t.Fatalf("removed cookie: %v", err)
	}
	os.WriteFile(path, []byte("not a token\n"), 0o600)
	if _, err := ReadCookie(path); !errors.Is(err, ErrCookie) {
		t.Fatalf("garbage cookie: %v", err)
	}
}

func TestGuard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.cookie")
	tok, err := NewCookie(path)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	retired := 0
	mux.HandleFunc("POST /retire", func(w http.ResponseWriter, r *http.Request) { retired++; w.WriteHeader(http.StatusAccepted) })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	for _, pp := range []bool{false, true} {
		s, err := Listen("127.0.0.1:0", mux, Options{Token: tok, Pprof: pp})
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr()
		do := func(method, path, token string, hdr map[string]string, body string) int {
			t.Helper()
			req, err := NewRequest(context.Background(), method, base+path, token, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if token == "" {
				req.Header.Del("Authorization")
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		page := map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}
		cases := []struct {
			name         string
			method, path string
			token        string
			hdr          map[string]string
			want         int
		}{
			// What finding 5 of issue 12 was: a web page's text/plain POST.
			{"cross-origin text/plain POST, no token", "POST", "/retire", "", page, 403},
			{"cross-origin POST with the token", "POST", "/retire", tok, page, 403},
			{"null origin", "POST", "/retire", tok, map[string]string{"Origin": "null"}, 403},
			{"fetch metadata of a page", "GET", "/status", tok, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"no token", "POST", "/retire", "", nil, 401},
			{"wrong token", "POST", "/retire", strings.Repeat("0", 64), nil, 401},
			{"token prefix", "GET", "/status", tok[:10], nil, 401},
			{"status with the token", "GET", "/status", tok, nil, 200},
			{"typed in the address bar (Sec-Fetch-Site none) with a token", "GET", "/status", tok, map[string]string{"Sec-Fetch-Site": "none"}, 200},
			{"pprof without the token", "GET", "/debug/pprof/", "", nil, 401},
		}
		for _, c := range cases {
			if got := do(c.method, c.path, c.token, c.hdr, ""); got != c.want {
				t.Errorf("pprof %v, %s: status %d, want %d", pp, c.name, got, c.want)
			}
		}
		want := 404
		if pp {
			want = 200
		}
		if got := do("GET", "/debug/pprof/", tok, nil, ""); got != want {
			t.Errorf("pprof %v: /debug/pprof/ with the token: %d, want %d", pp, got, want)
		}
		if retired != 0 {
			t.Fatalf("refused requests reached the handler %d times", retired)
		}
		if got := do("POST", "/retire", tok, nil, ""); got != 202 {
			t.Errorf("retire with the token: %d", got)
		}
		retired = 0
		s.Close()
	}
}
