package store_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

func keyring() *rekey.Keyring {
	seed := make([]byte, rekey.SeedSize)
	rand.Read(seed)
	k, _ := rekey.NewKeyring(seed)
	return k
}

// A grant on /docs serves a request for /docs/report.txt; after the owner
// revokes it, the deepest level that had anything says why access ends.
func Example() {
	dir, _ := os.MkdirTemp("", "kadre-store-example")
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, store.Options{}) // key file created in dir
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	alice, bob := keyring(), keyring()
	owner, recipient := policy.IdentityOf(alice), policy.IdentityOf(bob)
	now := time.Now()
	grants, err := policy.NewGrants(alice, policy.GrantParams{
		Recipient: recipient, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(now.Add(24 * time.Hour).Unix()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.PutGrant(grants[0], now); err != nil {
		fmt.Println(err)
		return
	}
	pair, err := policy.RecipientPairKey(bob, owner.IdentityKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	levels := pair.PathHashes(policy.MustNormalizePath("/docs/report.txt"), nil)
	level, _, _, err := s.Lookup(owner.IdentityKey, recipient.IdentityKey, levels, now)
	fmt.Println("level", level, err)

	rev := &policy.Revocation{Owner: owner.IdentityKey, Recipient: recipient.IdentityKey,
		PathHash: grants[0].PathHash, Sequence: 2, IssuedAt: uint64(now.Unix())}
	_, held, err := s.Revoke(rev, now, now.Add(24*time.Hour))
	fmt.Println("deleted", held, err)
	level, _, _, err = s.Lookup(owner.IdentityKey, recipient.IdentityKey, levels, now)
	fmt.Println(level, errors.Is(err, store.ErrRevoked), errors.Is(err, policy.ErrRevoked), err)
	// Output:
	// level 1 <nil>
	// deleted true <nil>
	// 1 true true store: grant revoked by its owner (path level 1)
}
