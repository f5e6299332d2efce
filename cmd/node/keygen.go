package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/policy"
)

func cmdKeygen(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "keygen", "[-passphrase] [-force]", "Creates a user identity (a master seed from which every key is derived) and prints the public identity to give to owners. Works offline.")
	u.bindHome(fs, e)
	u.bindJSON(fs)
	protect := fs.Bool("passphrase", false, "seal the identity with a passphrase (asked twice on the terminal, or KADRE_PASSPHRASE)")
	force := fs.Bool("force", false, "replace an existing identity (its grants become unusable)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	home, err := u.dir()
	if err != nil {
		return u.fail(err, nil)
	}
	var pass []byte
	if *protect {
		if pass, err = newPassphrase(e); err != nil {
			return u.fail(err, nil)
		}
	}
	keys, err := client.CreateIdentity(home, pass, *force)
	if err != nil {
		return u.fail(err, nil)
	}
	id := policy.IdentityOf(keys)
	return printIdentity(e, &u, id.String(), id.IdentityKey.String(), id.ReceivingKey.String(), filepath.Join(home, client.IdentityFile))
}

func cmdIdentity(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "identity", "", "Prints this user's public identity (what owners grant to).")
	u.bindHome(fs, e)
	u.bindAgent(fs)
	u.bindJSON(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	id, err := b.Identity(ctx)
	if err != nil {
		return u.fail(err, nil)
	}
	home, _ := u.dir()
	return printIdentity(e, &u, id.Identity, id.IdentityKey, id.ReceivingKey, filepath.Join(home, client.IdentityFile))
}

func printIdentity(e *env, u *userFlags, id, identityKey, receivingKey, path string) error {
	if u.json {
		return printJSON(e.stdout, map[string]string{
			"identity": id, "identity_key": identityKey, "receiving_key": receivingKey, "file": path,
		})
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}
