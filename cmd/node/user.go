package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/term"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// A user's files, in the kadre home directory (SPEC.md, "User files").
const (
	keyringFile      = "identity.json" // the master seed, optionally passphrase-sealed, 0600
	grantsFile       = "grants.json"   // the owner's grants and their holders
	clientConfigFile = "client.json"   // bootstrap addresses
)

// userFlags are the flags every user command shares.
type userFlags struct {
	home      string
	bootstrap string
	json      bool
}

func (u *userFlags) bind(fs *flag.FlagSet, e *env) {
	fs.StringVar(&u.home, "home", e.getenv("KADRE_HOME"), "kadre home directory with the identity and grants (env KADRE_HOME, default ~/.kadre)")
	fs.StringVar(&u.bootstrap, "bootstrap", e.getenv("KADRE_BOOTSTRAP"), "comma-separated node multiaddrs with /p2p/ (env KADRE_BOOTSTRAP, or client.json in the home directory)")
	fs.BoolVar(&u.json, "json", false, "print JSON")
}

func (u *userFlags) dir() (string, error) {
	if u.home != "" {
		return u.home, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", withHint(fmt.Errorf("no home directory: %w", err), "set KADRE_HOME or -home")
	}
	return filepath.Join(h, ".kadre"), nil
}

func newFlagSet(e *env, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("kadre "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kadre %s %s\n\n%s\n\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

// keyringDoc is identity.json: the 32-byte master seed every key of the
// user derives from (rekey.Keyring), in clear or sealed with
// XChaCha20-Poly1305 under argon2id(passphrase).
type keyringDoc struct {
	Version  int    `json:"version"`
	Identity string `json:"identity"` // public, for reference
	Seed     string `json:"seed,omitempty"`
	KDF      string `json:"kdf,omitempty"` // "argon2id"
	Salt     string `json:"salt,omitempty"`
	Time     uint32 `json:"time,omitempty"`
	MemoryKB uint32 `json:"memory_kib,omitempty"`
	Threads  uint8  `json:"threads,omitempty"`
	Sealed   string `json:"sealed_seed,omitempty"` // nonce ‖ ciphertext ‖ tag
}

// Argon2id parameters of a sealed identity: 3 passes over 64 MiB.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 4
)

func sealSeed(seed, passphrase []byte) (keyringDoc, error) {
	doc := keyringDoc{Version: 1, KDF: "argon2id", Time: argonTime, MemoryKB: argonMemory, Threads: argonThreads}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return doc, err
	}
	key := argon2.IDKey(passphrase, salt, argonTime, argonMemory, argonThreads, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return doc, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return doc, err
	}
	doc.Salt = hex.EncodeToString(salt)
	doc.Sealed = hex.EncodeToString(aead.Seal(nonce, nonce, seed, []byte("kadre identity v1")))
	return doc, nil
}

func (d *keyringDoc) open(passphrase func() ([]byte, error)) ([]byte, error) {
	if d.Version != 1 {
		return nil, fmt.Errorf("identity file version %d is not supported", d.Version)
	}
	if d.KDF == "" {
		seed, err := hex.DecodeString(d.Seed)
		if err != nil || len(seed) != rekey.SeedSize {
			return nil, errors.New("identity file: the seed is not 64 hex characters")
		}
		return seed, nil
	}
	if d.KDF != "argon2id" || d.Time == 0 || d.Time > 100 || d.MemoryKB == 0 || d.MemoryKB > 4<<20 || d.Threads == 0 {
		return nil, errors.New("identity file: unsupported or invalid key derivation parameters")
	}
	p, err := passphrase()
	if err != nil {
		return nil, err
	}
	salt, err1 := hex.DecodeString(d.Salt)
	sealed, err2 := hex.DecodeString(d.Sealed)
	if err := errors.Join(err1, err2); err != nil || len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, errors.New("identity file: sealed seed is malformed")
	}
	key := argon2.IDKey(p, salt, d.Time, d.MemoryKB, d.Threads, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	seed, err := aead.Open(nil, sealed[:n], sealed[n:], []byte("kadre identity v1"))
	if err != nil || len(seed) != rekey.SeedSize {
		return nil, withHint(errors.New("wrong passphrase for the identity file"), "type the passphrase given to `kadre keygen`, or set KADRE_PASSPHRASE")
	}
	return seed, nil
}

// passphraseFrom returns the passphrase from KADRE_PASSPHRASE or, on a
// terminal, a prompt.
func passphraseFrom(e *env, prompt string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if p := e.getenv("KADRE_PASSPHRASE"); p != "" {
			return []byte(p), nil
		}
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil, withHint(errors.New("the identity is passphrase-protected and there is no terminal to ask"), "set KADRE_PASSPHRASE")
		}
		fmt.Fprint(e.stderr, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		return p, err
	}
}

// loadKeyring reads the user's identity.
func loadKeyring(e *env, home string) (*rekey.Keyring, error) {
	b, err := os.ReadFile(filepath.Join(home, keyringFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, withHint(fmt.Errorf("no identity in %s", home), "create one with `kadre keygen`")
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read identity: %w", err)
	}
	var doc keyringDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("identity file %s: %w", filepath.Join(home, keyringFile), err)
	}
	seed, err := doc.open(passphraseFrom(e, "passphrase: "))
	if err != nil {
		return nil, err
	}
	return rekey.NewKeyring(seed)
}

// keyring loads the user's identity from the home directory.
func (u *userFlags) keyring(e *env) (string, *rekey.Keyring, error) {
	home, err := u.dir()
	if err != nil {
		return "", nil, err
	}
	keys, err := loadKeyring(e, home)
	return home, keys, err
}

// bootstrapAddrs are the -bootstrap flag or KADRE_BOOTSTRAP, else
// client.json's "bootstrap".
func (u *userFlags) bootstrapAddrs(home string) ([]string, error) {
	if u.bootstrap != "" {
		return splitList(u.bootstrap), nil
	}
	var cc struct {
		Bootstrap []string `json:"bootstrap"`
	}
	err := loadConfigFile(filepath.Join(home, clientConfigFile), &cc)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return cc.Bootstrap, nil
}

// session is a user command connected to the network.
type session struct {
	home string
	keys *rekey.Keyring
	me   policy.Identity
	host *dht.Host
}

// connect loads the identity and joins the network as a light client.
func (u *userFlags) connect(ctx context.Context, e *env) (*session, error) {
	home, keys, err := u.keyring(e)
	if err != nil {
		return nil, err
	}
	s := &session{home: home, keys: keys, me: policy.IdentityOf(keys)}
	addrs, err := u.bootstrapAddrs(home)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, withHint(errors.New("no bootstrap address"), "pass -bootstrap /ip4/…/tcp/…/p2p/…, set KADRE_BOOTSTRAP, or source the testnet's env file")
	}
	infos, err := dht.ParseAddrs(addrs)
	if err != nil {
		return nil, withHint(fmt.Errorf("bootstrap address: %w", err), "addresses look like /ip4/127.0.0.1/tcp/4710/p2p/16Uiu2…")
	}
	s.host, err = dht.New(ctx, dht.Config{Identity: keys.Identity(), Bootstrap: infos, QueryTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.host.Bootstrap(bctx); err != nil {
		s.host.Close()
		return nil, withHint(fmt.Errorf("failed to join the network: %w", err), "check that the bootstrap nodes are running (kadre status, scripts/testnet.sh status)")
	}
	return s, nil
}

func (s *session) close() {
	if s.host != nil {
		s.host.Close()
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortID abbreviates identities and peer IDs for tables; every kadre
// identity starts with "kadre1q", so the head kept is longer than that.
func shortID(s string) string {
	if len(s) > 24 {
		return s[:14] + "…" + s[len(s)-6:]
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
