package node

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kadre/kadre/internal/seal"
	"github.com/kadre/kadre/store"
)

// The identity key is sealed under the storage key, refused when others
// may read it, and a key file in clear (first releases) is sealed at the
// next start.
func TestIdentityAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "n"), nil)
	n, err := Start(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := n.Host().ID()
	raw := hex.EncodeToString(n.id.Bytes())
	n.Close()
	path := filepath.Join(cfg.DataDir, IdentityFile)
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), identityMagic+" ") || strings.Contains(string(b), raw) {
		t.Fatalf("identity file is not sealed: %q", b)
	}
	for _, mode := range []os.FileMode{0o640, 0o604} {
		os.Chmod(path, mode)
		if _, err := Start(ctx, cfg, Options{}); !errors.Is(err, ErrIdentityMode) {
			t.Fatalf("mode %v: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	// Another storage key does not open it (nor the store).
	if _, err := Start(ctx, cfg, Options{StorageKey: store.RawKey(make([]byte, 32))}); err == nil {
		t.Fatal("started with another storage key")
	}
	// A legacy key in clear: sealed at start, the same peer.
	os.WriteFile(path, []byte(raw+"\n"), 0o600)
	n, err = Start(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Host().ID() != id {
		t.Fatal("migrated identity is another peer")
	}
	n.Close()
	b, _ = os.ReadFile(path)
	if strings.Contains(string(b), raw) || !strings.HasPrefix(string(b), identityMagic) {
		t.Fatalf("legacy key not sealed: %q", b)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after migration %v", fi.Mode().Perm())
	}
	// A sealed file under the passphrase source.
	pdir := filepath.Join(dir, "p")
	pcfg := testConfig(pdir, nil)
	pk := store.PassphraseWithParams([]byte("a long passphrase"), seal.Params{Time: 1, MemoryKiB: 1024, Threads: 1})
	n, err = Start(ctx, pcfg, Options{StorageKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	sk := n.id
	n.Close()
	k := &capturedKey{src: pk}
	st, err := store.Open(filepath.Join(pdir, StoreDir), store.Options{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	sealKey, _ := k.identitySealKey()
	got, plain, err := readIdentity(filepath.Join(pdir, IdentityFile), sealKey)
	if err != nil || plain || !got.Equal(sk) {
		t.Fatalf("readIdentity = %v, %v, %v", got, plain, err)
	}
	var zero [32]byte
	if _, _, err := readIdentity(filepath.Join(pdir, IdentityFile), &zero); !errors.Is(err, ErrIdentityKey) {
		t.Fatalf("wrong key: %v", err)
	}
}
