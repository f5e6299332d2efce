package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// encryptFile encrypts content under path and returns the file's bytes.
func encryptFile(t *testing.T, c *client.Client, path, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Encrypt(&buf, strings.NewReader(content), policy.MustNormalizePath(path)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func headerOf(t *testing.T, file []byte) *kfile.Header {
	t.Helper()
	h, err := kfile.ReadHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// body decrypts a file's body with the key DecryptKeys returned.
func body(t *testing.T, file []byte, fk *client.FileKey) string {
	t.Helper()
	r, err := kfile.NewReader(bytes.NewReader(file[fk.Header.Len():]), fk.Header, fk.DataKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Many files at once: every file a grant covers opens, with the key one
// DecryptKey gives; files no grant covers, another owner's files and the
// owner's own files each get their own answer in the same call; after a
// revocation every covered file is refused, with the holders' answers.
func TestDecryptKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	boot, _, stop, err := startNodes(ctx, dir, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	open := func(name string) *client.Client {
		home := filepath.Join(dir, name)
		if _, err := client.CreateIdentity(home, nil, false); err != nil {
			t.Fatal(err)
		}
		c, err := client.Open(client.Options{Home: home, Bootstrap: boot, Placement: dht.PlaceOptions{Diversity: dht.NoDiversity}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob, carol := open("alice"), open("bob"), open("carol")
	if _, err := alice.Grant(ctx, client.GrantRequest{To: bob.Identity(), Prefix: policy.MustNormalizePath("/docs"), M: 2, N: 3, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Grant(ctx, client.GrantRequest{To: bob.Identity(), Prefix: policy.MustNormalizePath("/docs/deep"), M: 1, N: 2, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	type file struct {
		data    []byte
		content string
		want    string // prefix that opens it for bob, "" if none
	}
	var files []file
	for i := range 60 {
		path, want := fmt.Sprintf("/docs/%d.txt", i), "/docs"
		switch {
		case i%3 == 1:
			path, want = fmt.Sprintf("/docs/deep/%d/x.txt", i), "/docs/deep"
		case i%10 == 7:
			path, want = fmt.Sprintf("/other/%d.txt", i), ""
		}
		content := fmt.Sprintf("file %d at %s", i, path)
		files = append(files, file{encryptFile(t, alice, path, content), content, want})
	}
	files = append(files, file{encryptFile(t, carol, "/docs/carol.txt", "carol's"), "carol's", ""})
	headers := make([]*kfile.Header, len(files))
	for i, f := range files {
		headers[i] = headerOf(t, f.data)
	}

	res := bob.DecryptKeys(ctx, headers, client.DecryptOptions{})
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files", len(res), len(files))
	}
	opened := 0
	for i, f := range files {
		r := res[i]
		if f.want == "" {
			if !errors.Is(r.Err, policy.ErrNotGranted) {
				t.Fatalf("file %d (not granted): %v", i, r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Fatalf("file %d: %v", i, r.Err)
		}
		if got := body(t, f.data, r.Key); got != f.content || r.Key.Prefix.String() != f.want || r.Key.ByOwner {
			t.Fatalf("file %d: %q through %s", i, got, r.Key.Prefix)
		}
		if len(r.Key.Nodes) < r.Key.M {
			t.Fatalf("file %d: %d nodes reported for m=%d", i, len(r.Key.Nodes), r.Key.M)
		}
		opened++
	}
	if opened < 50 {
		t.Fatalf("only %d files were meant to open", opened)
	}
	// The same key as one DecryptKey.
	one, err := bob.DecryptKey(ctx, bytes.NewReader(files[0].data), client.DecryptOptions{})
	if err != nil || !bytes.Equal(one.DataKey, res[0].Key.DataKey) {
		t.Fatalf("DecryptKey: %v", err)
	}
	// The owner opens all of hers offline; carol's is not hers.
	for i, r := range alice.DecryptKeys(ctx, headers, client.DecryptOptions{}) {
		if i == len(files)-1 {
			if !errors.Is(r.Err, policy.ErrNotGranted) {
				t.Fatalf("alice on carol's file: %v", r.Err)
			}
			continue
		}
		if r.Err != nil || !r.Key.ByOwner || body(t, files[i].data, r.Key) != files[i].content {
			t.Fatalf("alice, file %d: %v", i, r.Err)
		}
	}

	// Revoked: every file of /docs is refused, the holders say why.
	if _, err := alice.Revoke(ctx, bob.Identity(), policy.MustNormalizePath("/docs")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Revoke(ctx, bob.Identity(), policy.MustNormalizePath("/docs/deep")); err != nil {
		t.Fatal(err)
	}
	for i, r := range bob.DecryptKeys(ctx, headers, client.DecryptOptions{}) {
		if r.Err == nil {
			t.Fatalf("file %d opened after the revocation", i)
		}
		if files[i].want == "" {
			continue
		}
		revoked := 0
		for _, err := range r.Key.Nodes {
			if errors.Is(err, policy.ErrRevoked) {
				revoked++
			}
		}
		if !errors.Is(r.Err, dht.ErrNotEnoughCFrags) || revoked == 0 {
			t.Fatalf("file %d after the revocation: %v, nodes %v", i, r.Err, r.Key.Nodes)
		}
	}
}
