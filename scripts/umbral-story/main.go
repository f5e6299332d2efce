// Command umbral-story walks through kadre's cryptographic story in one
// process with the real rekey package: an owner grants /docs to a recipient
// 3-of-5, encrypts /docs/report.txt, five fragment holders re-encrypt, the
// recipient decrypts (also with two holders gone), and after three holders
// delete their fragments the recipient can no longer decrypt.
//
// It is the part of scripts/demo.sh that needs no network.
package main

import (
	"crypto/rand"
	"fmt"
	"os"

	"github.com/kadre/kadre/rekey"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "umbral-story: error:", err)
		os.Exit(1)
	}
}

func newKeyring() (*rekey.Keyring, error) {
	seed := make([]byte, rekey.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return rekey.NewKeyring(seed)
}

func run() error {
	owner, err := newKeyring()
	if err != nil {
		return err
	}
	recipient, err := newKeyring()
	if err != nil {
		return err
	}
	docs := owner.DelegatingKey("/docs")
	fmt.Printf("owner's /docs key      %s\n", docs.PublicKey())
	fmt.Printf("recipient's key        %s\n", recipient.Receiving().PublicKey())

	kfrags, err := rekey.GenerateKFrags(docs, recipient.Receiving().PublicKey(), owner.KFragSigner(), 3, 5, true, true)
	if err != nil {
		return err
	}
	fmt.Printf("grant /docs 3-of-5     %d fragments, one per holder\n", len(kfrags))

	secret := []byte("Q3 report: the numbers are fine.")
	capsule, ct, err := rekey.Encrypt(docs.PublicKey(), secret)
	if err != nil {
		return err
	}
	fmt.Printf("encrypt /docs/report   %d-byte ciphertext, %d-byte capsule\n", len(ct), len(capsule.Bytes()))

	verifying := owner.KFragSigner().VerifyingKey()
	collect := func(holders []int) ([]*rekey.VerifiedCapsuleFrag, error) {
		var out []*rekey.VerifiedCapsuleFrag
		for _, h := range holders {
			served, err := rekey.Reencrypt(capsule, kfrags[h])
			if err != nil {
				return nil, err
			}
			cf, err := rekey.ParseCapsuleFrag(served.Bytes())
			if err != nil {
				return nil, err
			}
			v, err := cf.Verify(capsule, verifying, docs.PublicKey(), recipient.Receiving().PublicKey())
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	for _, holders := range [][]int{{0, 1, 2, 3, 4}, {1, 3, 4}} {
		cfrags, err := collect(holders)
		if err != nil {
			return err
		}
		pt, err := rekey.DecryptReencrypted(recipient.Receiving(), docs.PublicKey(), capsule, cfrags, ct)
		if err != nil {
			return fmt.Errorf("decrypt with holders %v: %w", holders, err)
		}
		fmt.Printf("decrypt, holders %v  %q\n", holders, pt)
	}
	// Revocation: holders 0, 1 and 2 delete their fragments; 2 < 3 remain.
	cfrags, err := collect([]int{3, 4})
	if err != nil {
		return err
	}
	if _, err := rekey.DecryptReencrypted(recipient.Receiving(), docs.PublicKey(), capsule, cfrags, ct); err == nil {
		return fmt.Errorf("decryption succeeded after revocation")
	}
	fmt.Printf("revoke (3 of 5 gone)   decryption refused: %v\n", rekey.ErrDecryption)
	return nil
}
