package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kadre/kadre/store"
)

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

	var owner, recipient [33]byte
	owner[0], recipient[0] = 2, 3
	// In kadre the policy package computes these as HMAC-SHA3-256 of each
	// path prefix; any 32 bytes do here.
	levels := [][32]byte{sha256.Sum256([]byte("/")), sha256.Sum256([]byte("/docs")), sha256.Sum256([]byte("/docs/report.txt"))}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	record := []byte("owner-signed grant record")
	err = s.PutGrant(store.Grant{
		Owner: owner, Recipient: recipient, PathHash: levels[1],
		ID: sha256.Sum256(record), Seq: 1, Expires: now.Add(24 * time.Hour), Record: record,
	}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := s.Lookup(&owner, &recipient, levels, now)
	fmt.Println("level", m.Level, err)

	ts, err := s.Revoke(store.Revocation{Owner: owner, Recipient: recipient, PathHash: levels[1], Seq: 2, At: now})
	fmt.Println("deleted", ts.Deleted, err)
	_, err = s.Lookup(&owner, &recipient, levels, now)
	fmt.Println(errors.Is(err, store.ErrRevoked), err)
	// Output:
	// level 1 <nil>
	// deleted true <nil>
	// true store: grant revoked by its owner (path level 1)
}
