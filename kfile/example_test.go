package kfile_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// The owner encrypts /docs/report.txt, then opens it again through the
// level of /docs, as a recipient granted /docs would (with cfrags instead
// of the path key: Header.UnwrapReencrypted).
func Example() {
	alice, err := rekey.NewKeyring(make([]byte, 32))
	if err != nil {
		panic(err)
	}
	path, err := policy.NormalizePath("/docs//report.txt")
	if err != nil {
		panic(err)
	}

	// Encrypt: a header wrapping a fresh data key to every prefix (each at
	// its key epoch, 0 here) and signed by Alice, then the body. Close
	// writes the final chunk and the last group's signature.
	owner := policy.IdentityOf(alice).IdentityKey
	levels := kfile.OwnerLevels(alice, path, nil)
	h, dataKey, err := kfile.NewHeader(owner, path, levels, &kfile.Author{Signer: policy.IdentitySigner(alice)})
	if err != nil {
		panic(err)
	}
	var file bytes.Buffer
	w, err := kfile.NewWriter(&file, h, dataKey)
	if err != nil {
		panic(err)
	}
	io.WriteString(w, "quarterly report")
	if err := w.Close(); err != nil {
		panic(err)
	}

	// Decrypt: read the header, unwrap the data key of level 1 (/docs),
	// open the header (path and writer, checked against the writer's
	// signature), stream the body.
	h, err = kfile.ReadHeader(&file)
	if err != nil {
		panic(err)
	}
	docs := policy.MustNormalizePath("/docs")
	key, err := h.UnwrapOriginal(1, policy.DelegatingKey(alice, docs, h.Epoch(1)))
	if err != nil {
		panic(err)
	}
	c, err := h.Open(key)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Path, h.Levels(), c.ByOwner(owner))
	r, err := kfile.NewReader(&file, h, key)
	if err != nil {
		panic(err)
	}
	pt, err := io.ReadAll(r)
	fmt.Printf("%s %v\n", pt, err)
	// Output:
	// /docs/report.txt 3 true
	// quarterly report <nil>
}
