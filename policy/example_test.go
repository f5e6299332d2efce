package policy_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

func ExampleNormalizePath() {
	for _, s := range []string{"/home/", "//home", "/home/./x", "/cafe\u0301", "home", "/home/../etc", "/home\u2215etc"} {
		p, err := policy.NormalizePath(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(p)
	}
	// Output:
	// /home
	// /home
	// /home/x
	// /café
	// policy: invalid path: "home" is relative; paths must start with "/"
	// policy: invalid path: ".." is not allowed in a path
	// policy: invalid path: U+2215 DIVISION SLASH (look-alike of "/") at byte 5
}

func ExamplePath_Prefixes() {
	p := policy.MustNormalizePath("/home/ubuntu/secret.txt")
	for i, q := range p.Prefixes() {
		fmt.Println(i, q)
	}
	// Output:
	// 0 /
	// 1 /home
	// 2 /home/ubuntu
	// 3 /home/ubuntu/secret.txt
}

func ExampleParseIdentity() {
	k, _ := rekey.NewKeyring(bytes.Repeat([]byte{1}, rekey.SeedSize))
	s := policy.IdentityOf(k).String()
	fmt.Println(len(s), s[:7])
	id, err := policy.ParseIdentity(s)
	fmt.Println(err == nil && id == policy.IdentityOf(k))
	_, err = policy.ParseIdentity(s[:len(s)-1] + "x")
	fmt.Println(err)
	// Output:
	// 119 kadre1q
	// true
	// policy: invalid identity: checksum mismatch (a typo, or a truncated copy)
}

func ExampleNewGrants() {
	owner, _ := rekey.NewKeyring(bytes.Repeat([]byte{1}, rekey.SeedSize))
	bob, _ := rekey.NewKeyring(bytes.Repeat([]byte{2}, rekey.SeedSize))
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

	grants, err := policy.NewGrants(owner, policy.GrantParams{
		Recipient: policy.IdentityOf(bob),
		Prefix:    policy.MustNormalizePath("/home/ubuntu"),
		Threshold: 2,
		Shares:    3,
		Sequence:  1,
		Expiry:    uint64(now.Add(30 * 24 * time.Hour).Unix()),
	})
	if err != nil {
		panic(err)
	}
	// Each node receives one grant and checks it before storing.
	for _, g := range grants {
		wire := g.Bytes()
		parsed, err := policy.ParseGrant(wire)
		if err != nil {
			panic(err)
		}
		_, err = policy.ValidateGrantForStore(parsed, now, 90*24*time.Hour)
		fmt.Println(len(wire), err)
	}
	// Output:
	// 628 <nil>
	// 628 <nil>
	// 628 <nil>
}
