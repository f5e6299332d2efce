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
	var pass []byte
	if *protect {
		if pass, err = passphraseFrom(e, "new passphrase: ")(); err != nil {
			return err
		}
	}
	keys, err := client.CreateIdentity(home, pass, *force)
	if err != nil {
		return identityHint(err)
	}
	return printIdentity(e, &u, policy.IdentityOf(keys), filepath.Join(home, client.IdentityFile))
}

func cmdIdentity(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "identity", "", "Prints this user's public identity.")
	u.bind(fs, e)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	home, _ := u.dir()
	return printIdentity(e, &u, c.Identity(), filepath.Join(home, client.IdentityFile))
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
