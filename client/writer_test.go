package client_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// A writer's file, on real nodes: every grantee of a prefix above it
// reads it and sees who wrote it; the writer reads nothing he was not
// granted; a grantee who changes the body (he knows the data key) is
// caught by every other grantee; and once the owner revokes the writer,
// his files are refused by everyone, the owner included.
func TestWriters(t *testing.T) {
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
		c, err := client.Open(client.Options{Home: home, Bootstrap: boot, MapMaxAge: -1,
			Placement: dht.PlaceOptions{Diversity: dht.NoDiversity}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, dave := open("alice"), open("dave")
	readers := map[string]*client.Client{"/": open("root"), "/docs": open("docs"), "/docs/sensors": open("sensors")}
	for prefix, r := range readers {
		if _, err := alice.Grant(ctx, client.GrantRequest{To: r.Identity(), Prefix: policy.MustNormalizePath(prefix), M: 2, N: 3, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := alice.AddWriter(dave.Identity(), policy.MustNormalizePath("/docs/sensors"))
	if err != nil {
		t.Fatal(err)
	}
	// The certificate travels as a string.
	if cert, err = policy.ParseWriterCertString(cert.String()); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	path := policy.MustNormalizePath("/docs/sensors/7/2026-12-01.csv")
	if err := dave.EncryptAs(&file, strings.NewReader("t,celsius\n0,21.5\n"), path, cert); err != nil {
		t.Fatal(err)
	}
	if err := dave.EncryptAs(&bytes.Buffer{}, strings.NewReader("x"), policy.MustNormalizePath("/docs/other.txt"), cert); !errors.Is(err, kfile.ErrNotAuthorized) {
		t.Fatalf("writing outside the certificate's prefix: %v", err)
	}
	if err := alice.EncryptAs(&bytes.Buffer{}, strings.NewReader("x"), path, cert); !errors.Is(err, kfile.ErrNotAuthorized) {
		t.Fatalf("writing with another writer's certificate: %v", err)
	}
	for prefix, r := range readers {
		var out bytes.Buffer
		fk, err := r.Decrypt(ctx, &out, bytes.NewReader(file.Bytes()), client.DecryptOptions{})
		if err != nil || out.String() != "t,celsius\n0,21.5\n" {
			t.Fatalf("grantee of %s: %q, %v", prefix, out.String(), err)
		}
		if fk.Contents.Writer != dave.Identity().IdentityKey || fk.Contents.Cert == nil || fk.Contents.Path != path || fk.Prefix.String() != prefix {
			t.Fatalf("grantee of %s sees writer %s, path %s, through %s", prefix, fk.Contents.Writer, fk.Contents.Path, fk.Prefix)
		}
	}
	var out bytes.Buffer
	if _, err := alice.Decrypt(ctx, &out, bytes.NewReader(file.Bytes()), client.DecryptOptions{}); err != nil {
		t.Fatalf("the owner: %v", err)
	}
	// The writer reads only what he writes: not another file of the prefix.
	var mine bytes.Buffer
	alice.Encrypt(&mine, strings.NewReader("alice's"), policy.MustNormalizePath("/docs/sensors/calibration"))
	if _, err := dave.DecryptKey(ctx, bytes.NewReader(mine.Bytes()), client.DecryptOptions{}); !errors.Is(err, policy.ErrNotGranted) {
		t.Fatalf("the writer decrypting another's file: %v", err)
	}

	// A grantee forges: same header, his own body, valid under the data
	// key; the other grantees refuse it.
	forger := readers["/docs"]
	fk, err := forger.DecryptKey(ctx, bytes.NewReader(file.Bytes()), client.DecryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged := forgeBody(t, file.Bytes(), fk, []byte("t,celsius\n0,99.9\n"))
	for prefix, r := range readers {
		var out bytes.Buffer
		_, err := r.Decrypt(ctx, &out, bytes.NewReader(forged), client.DecryptOptions{})
		if !errors.Is(err, kfile.ErrBadSignature) || out.Len() != 0 {
			t.Fatalf("grantee of %s given a forged body: %v, %d bytes released", prefix, err, out.Len())
		}
	}

	// The owner revokes the writer: his files are refused, old and new.
	res, err := alice.RevokeWriter(ctx, dave.Identity())
	if err != nil || res.Maps != 3 || len(res.Failed) != 0 {
		t.Fatalf("RevokeWriter = %+v, %v", res, err)
	}
	var newer bytes.Buffer
	if err := dave.EncryptAs(&newer, strings.NewReader("after"), path, cert); err != nil {
		t.Fatal(err) // nothing stops him writing: readers refuse
	}
	for _, f := range [][]byte{file.Bytes(), newer.Bytes()} {
		for prefix, r := range readers {
			if _, err := r.DecryptKey(ctx, bytes.NewReader(f), client.DecryptOptions{}); !errors.Is(err, client.ErrWriterRevoked) {
				t.Fatalf("grantee of %s, a revoked writer's file: %v", prefix, err)
			}
		}
		if _, err := alice.DecryptKey(ctx, bytes.NewReader(f), client.DecryptOptions{}); !errors.Is(err, client.ErrWriterRevoked) {
			t.Fatalf("the owner, a revoked writer's file: %v", err)
		}
	}
	if _, err := alice.AddWriter(dave.Identity(), path); !errors.Is(err, client.ErrWriterRevoked) {
		t.Fatalf("re-adding a revoked writer: %v", err)
	}
	// The owner's own files are untouched.
	if _, err := readers["/"].DecryptKey(ctx, bytes.NewReader(mine.Bytes()), client.DecryptOptions{}); err != nil {
		t.Fatalf("the owner's file after the writer's revocation: %v", err)
	}
}

// forgeBody re-encrypts the first chunk of a one-chunk file with pt, as
// anyone holding the data key can: valid under the body key, but not
// signed by the writer. The group's sealed signature is kept.
func forgeBody(t *testing.T, file []byte, fk *client.FileKey, pt []byte) []byte {
	t.Helper()
	bk, err := fk.Header.BodyKey(fk.DataKey)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(bk)
	if err != nil {
		t.Fatal(err)
	}
	hl := fk.Header.Len()
	sig := file[len(file)-kfile.GroupSigSize:]
	var nonce [24]byte
	binary.BigEndian.PutUint64(nonce[15:], 0)
	nonce[23] = 1 // the final chunk
	out := append(bytes.Clone(file[:hl]), aead.Seal(nil, nonce[:], pt, nil)...)
	return append(out, sig...)
}

// Version 1 files (kfile's stored vectors): refused unless unsigned files
// are allowed, then decrypted by their owner offline.
func TestVersion1Files(t *testing.T) {
	b, err := os.ReadFile("../kfile/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Name       string `json:"name"`
		MasterSeed string `json:"master_seed"`
		File       string `json:"file"`
		Size       int    `json:"plaintext_size"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, v := range vs {
		if v.File == "" {
			continue
		}
		seed, _ := hex.DecodeString(v.MasterSeed)
		k, err := rekey.NewKeyring(seed)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Open(client.Options{Keyring: k})
		if err != nil {
			t.Fatal(err)
		}
		file, _ := hex.DecodeString(v.File)
		var out bytes.Buffer
		if _, err := c.Decrypt(context.Background(), &out, bytes.NewReader(file), client.DecryptOptions{}); !errors.Is(err, kfile.ErrUnsigned) || out.Len() != 0 {
			t.Fatalf("%s: %v", v.Name, err)
		}
		fk, err := c.Decrypt(context.Background(), &out, bytes.NewReader(file), client.DecryptOptions{AllowUnsigned: true})
		if err != nil || out.Len() != v.Size || fk.Contents.Signed || !fk.ByOwner {
			t.Fatalf("%s: %d bytes, %v", v.Name, out.Len(), err)
		}
		for i, c := range out.Bytes() {
			if c != byte(i%251) {
				t.Fatalf("%s: byte %d", v.Name, i)
			}
		}
		c.Close()
		tested++
	}
	if tested == 0 {
		t.Fatal("no version 1 vector with a file")
	}
}
