package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

func testConfig(dir string, boot []string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Bootstrap = boot
	cfg.MetricsAddr = ""
	return cfg
}

func testKeyring(t *testing.T) *rekey.Keyring {
	t.Helper()
	seed := make([]byte, rekey.SeedSize)
	rand.Read(seed)
	k, err := rekey.NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A node backed up, restored into an empty directory and started there is
// the same peer and still serves the fragment it held.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	n, err := Start(ctx, testConfig(src, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	owner, bob := testKeyring(t), testKeyring(t)
	bobID := policy.IdentityOf(bob)
	grants, err := policy.NewGrants(owner, policy.GrantParams{Recipient: bobID, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(time.Now().Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	ownerHost := client(t, owner, n)
	if _, err := ownerHost.StoreGrant(ctx, n.Host().ID(), grants[0]); err != nil {
		t.Fatal(err)
	}
	peerID := n.Host().ID()
	n.Close()

	pass := []byte("correct horse battery staple")
	var backup bytes.Buffer
	stats, err := Backup(src, nil, pass, &backup)
	if err != nil || stats.Grants != 1 {
		t.Fatalf("Backup = %+v, %v", stats, err)
	}
	if bytes.Contains(backup.Bytes(), grants[0].KFrag) {
		t.Fatal("the backup holds the kfrag in clear")
	}
	// Refusals, which leave nothing behind.
	if _, err := Restore(filepath.Join(dir, "wrong"), nil, []byte("wrong passphrase"), bytes.NewReader(backup.Bytes()), time.Now()); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	for _, i := range []int{5, len(backupMagic) + 12, 60, backup.Len() / 2, backup.Len() - 3} {
		b := bytes.Clone(backup.Bytes())
		b[i] ^= 0x10
		if _, err := Restore(filepath.Join(dir, "flipped"), nil, pass, bytes.NewReader(b), time.Now()); err == nil {
			t.Fatalf("a backup with byte %d flipped restored", i)
		}
	}
	if _, err := Restore(filepath.Join(dir, "cut"), nil, pass, bytes.NewReader(backup.Bytes()[:backup.Len()-10]), time.Now()); err == nil {
		t.Fatal("a truncated backup restored")
	}
	other := filepath.Join(dir, "other")
	o, err := Start(ctx, testConfig(other, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if _, err := Restore(other, nil, pass, bytes.NewReader(backup.Bytes()), time.Now()); err == nil {
		t.Fatal("restored over another node's identity")
	}

	dst := filepath.Join(dir, "dst")
	stats, err = Restore(dst, nil, pass, bytes.NewReader(backup.Bytes()), time.Now())
	if err != nil || stats.Grants != 1 {
		t.Fatalf("Restore = %+v, %v", stats, err)
	}
	r, err := Start(ctx, testConfig(dst, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Host().ID() != peerID {
		t.Fatalf("restored node is %s, was %s", r.Host().ID(), peerID)
	}
	// While it runs, a backup is refused.
	if _, err := Backup(dst, nil, pass, &bytes.Buffer{}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("backup of a running node: %v", err)
	}
	// Bob decrypts through the restored node.
	h, dataKey, err := kfile.NewHeader(policy.IdentityOf(owner).IdentityKey, policy.MustNormalizePath("/docs/a"),
		kfile.LevelKeys(owner, policy.MustNormalizePath("/docs/a")))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := policy.RecipientPairKey(bob, h.Owner())
	if err != nil {
		t.Fatal(err)
	}
	var levels []dht.Level
	for i, prefix := range h.Path().Prefixes() {
		c, _, _ := h.Level(i)
		levels = append(levels, dht.Level{PathHash: pair.PathHash(prefix, 0), Capsule: c})
	}
	cf, err := client(t, bob, r).Reencrypt(ctx, r.Host().ID(), h.Owner(), bobID, levels)
	if err != nil {
		t.Fatal(err)
	}
	delegating, _ := cf.Grant.DelegatingKey.Rekey()
	got, err := h.UnwrapReencrypted(cf.Level, bob.Receiving(), delegating, []*rekey.VerifiedCapsuleFrag{cf.CFrag})
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("decrypt through the restored node: %v", err)
	}
}

// client starts a light client of keys bootstrapped from n.
func client(t *testing.T, keys *rekey.Keyring, n *Node) *dht.Host {
	t.Helper()
	boot, err := dht.ParseAddrs(n.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	h, err := dht.New(context.Background(), dht.Config{Identity: keys.Identity(), Bootstrap: boot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}
