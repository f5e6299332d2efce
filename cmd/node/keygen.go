package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

func cmdKeygen(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "keygen", "[-passphrase] [-force]", "Creates a user identity (a master seed from which every key is derived) and prints the public identity to give to owners.")
	u.bind(fs, e)
	protect := fs.Bool("passphrase", false, "seal the identity with a passphrase (asked on the terminal, or KADRE_PASSPHRASE)")
	force := fs.Bool("force", false, "replace an existing identity (its grants become unusable)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	home, err := u.dir()
	if err != nil {
		return err
	}
	path := filepath.Join(home, keyringFile)
	if _, err := os.Stat(path); err == nil && !*force {
		return withHint(fmt.Errorf("an identity already exists in %s", path), "print it with `kadre identity`; -force replaces it")
	}
	seed := make([]byte, rekey.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	keys, err := rekey.NewKeyring(seed)
	if err != nil {
		return err
	}
	id := policy.IdentityOf(keys)
	doc := keyringDoc{Version: 1, Seed: hex.EncodeToString(seed)}
	if *protect {
		p, err := passphraseFrom(e, "new passphrase: ")()
		if err != nil {
			return err
		}
		if len(p) < 8 {
			return withHint(errors.New("passphrase shorter than 8 characters"), "choose a longer passphrase")
		}
		if doc, err = sealSeed(seed, p); err != nil {
			return err
		}
	}
	doc.Identity = id.String()
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("failed to write identity: %w", err)
	}
	return printIdentity(e, &u, id, path)
}

func cmdIdentity(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "identity", "", "Prints this user's public identity.")
	u.bind(fs, e)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	home, keys, err := u.keyring(e)
	if err != nil {
		return err
	}
	return printIdentity(e, &u, policy.IdentityOf(keys), filepath.Join(home, keyringFile))
}

func printIdentity(e *env, u *userFlags, id policy.Identity, path string) error {
	if u.json {
		return printJSON(e.stdout, map[string]string{
			"identity": id.String(), "identity_key": id.IdentityKey.String(),
			"receiving_key": id.ReceivingKey.String(), "file": path,
		})
	}
	fmt.Fprintln(e.stdout, id.String())
	return nil
}
