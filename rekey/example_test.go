package rekey_test

import (
	"fmt"

	"github.com/kadre/kadre/rekey"
)

// A 2-of-3 delegation from alice's /docs key to bob, end to end.
func Example() {
	alice, err := rekey.NewKeyring(make([]byte, 32))
	if err != nil {
		panic(err)
	}
	bob := rekey.GenerateSecretKey()
	docs := alice.DelegatingKey("/docs")

	capsule, ct, err := rekey.Encrypt(docs.PublicKey(), []byte("quarterly report"))
	if err != nil {
		panic(err)
	}
	kfrags, err := rekey.GenerateKFrags(docs, bob.PublicKey(), alice.KFragSigner(), 2, 3, true, true)
	if err != nil {
		panic(err)
	}

	// Two nodes re-encrypt; bob verifies what they send back and decrypts.
	verifying := alice.KFragSigner().VerifyingKey()
	var cfrags []*rekey.VerifiedCapsuleFrag
	for _, kf := range kfrags[1:] {
		vcf, err := rekey.Reencrypt(capsule, kf)
		if err != nil {
			panic(err)
		}
		cf, err := rekey.ParseCapsuleFrag(vcf.Bytes())
		if err != nil {
			panic(err)
		}
		v, err := cf.Verify(capsule, verifying, docs.PublicKey(), bob.PublicKey())
		if err != nil {
			panic(err)
		}
		cfrags = append(cfrags, v)
	}
	pt, err := rekey.DecryptReencrypted(bob, docs.PublicKey(), capsule, cfrags, ct)
	fmt.Printf("%s %v\n", pt, err)
	// Output: quarterly report <nil>
}
