package rekey

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The interop tests run the reference implementation, @nucypher/umbral-pre
// 0.10.0, through interop/umbral.js (installed by `npm ci` in interop/,
// which scripts/test.sh does). They are not skipped when Node or the
// package is missing: they fail and say how to install it.

type jsOp map[string]any

type jsResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	m     map[string]json.RawMessage
}

func (r *jsResult) bytes(t testing.TB, key string) []byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.m[key], &s); err != nil {
		t.Fatalf("reference result has no %q: %v", key, err)
	}
	return unhex(t, s)
}

func (r *jsResult) list(t testing.TB, key string) [][]byte {
	t.Helper()
	var ss []string
	if err := json.Unmarshal(r.m[key], &ss); err != nil {
		t.Fatalf("reference result has no %q: %v", key, err)
	}
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = unhex(t, s)
	}
	return out
}

// runJS runs a batch of operations in one reference process.
func runJS(t testing.TB, ops []jsOp) []*jsResult {
	t.Helper()
	dir, err := filepath.Abs("../interop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@nucypher", "umbral-pre")); err != nil {
		t.Fatalf("the reference package is not installed: run `npm ci` in interop/ (scripts/test.sh does): %v", err)
	}
	in, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "umbral.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference process: %v: %s", err, stderr.String())
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	if len(raw) != len(ops) {
		t.Fatalf("reference answered %d of %d operations", len(raw), len(ops))
	}
	res := make([]*jsResult, len(raw))
	for i, m := range raw {
		r := &jsResult{m: m}
		json.Unmarshal(m["ok"], &r.OK)
		json.Unmarshal(m["error"], &r.Error)
		res[i] = r
	}
	return res
}

func mustJS(t testing.TB, ops ...jsOp) []*jsResult {
	t.Helper()
	res := runJS(t, ops)
	for i, r := range res {
		if !r.OK {
			t.Fatalf("reference %s: %s", ops[i]["op"], r.Error)
		}
	}
	return res
}

func h(b []byte) string { return hex.EncodeToString(b) }

func pkOrNil(pk *PublicKey) any {
	if pk == nil {
		return nil
	}
	return h(pk.Bytes())
}

var flagSets = [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

// JS encrypts and generates kfrags; Go verifies the kfrags and
// re-encrypts; JS verifies the cfrags and decrypts.
func TestInteropJSToGo(t *testing.T) {
	a, b, s := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "signer")
	apk, bpk, spk := a.sk.PublicKey(), b.sk.PublicKey(), s.sk.PublicKey()
	pt := []byte("from the reference, through kadre")
	for _, f := range flagSets {
		t.Run(fmt.Sprintf("sign_delegating=%v/sign_receiving=%v", f[0], f[1]), func(t *testing.T) {
			res := mustJS(t,
				jsOp{"op": "encrypt", "pk": h(apk.Bytes()), "plaintext": h(pt)},
				jsOp{"op": "generate_kfrags", "delegating_sk": h(a.sk.Bytes()), "receiving_pk": h(bpk.Bytes()),
					"signer_sk": h(s.sk.Bytes()), "threshold": 3, "shares": 5, "sign_delegating": f[0], "sign_receiving": f[1]},
			)
			capsuleB, ct := res[0].bytes(t, "capsule"), res[0].bytes(t, "ciphertext")
			capsule, err := ParseCapsule(capsuleB)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(capsule.Bytes(), capsuleB) {
				t.Fatal("reference capsule does not re-serialize byte for byte")
			}
			var cfrags []string
			for i, kb := range res[1].list(t, "kfrags") {
				kf, err := ParseKeyFrag(kb)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(kf.Bytes(), kb) {
					t.Fatalf("reference kfrag %d does not re-serialize byte for byte", i)
				}
				vk, err := kf.Verify(spk, apk, bpk)
				if err != nil {
					t.Fatalf("reference kfrag %d: %v", i, err)
				}
				cfrags = append(cfrags, h(mustReencrypt(t, capsule, vk).Bytes()))
			}
			ops := []jsOp{}
			for _, cf := range cfrags {
				ops = append(ops, jsOp{"op": "verify_cfrag", "cfrag": cf, "capsule": h(capsuleB),
					"verifying_pk": h(spk.Bytes()), "delegating_pk": h(apk.Bytes()), "receiving_pk": h(bpk.Bytes())},
					jsOp{"op": "roundtrip", "type": "cfrag", "bytes": cf})
			}
			ops = append(ops, jsOp{"op": "decrypt_reencrypted", "receiving_sk": h(b.sk.Bytes()), "delegating_pk": h(apk.Bytes()),
				"verifying_pk": h(spk.Bytes()), "receiving_pk": h(bpk.Bytes()), "capsule": h(capsuleB),
				"cfrags": []string{cfrags[4], cfrags[0], cfrags[2]}, "ciphertext": h(ct)})
			out := mustJS(t, ops...)
			for i := 0; i < len(cfrags); i++ {
				if got := h(out[2*i+1].bytes(t, "bytes")); got != cfrags[i] {
					t.Fatalf("kadre cfrag %d does not re-serialize byte for byte in the reference", i)
				}
			}
			if got := out[len(out)-1].bytes(t, "plaintext"); !bytes.Equal(got, pt) {
				t.Fatalf("reference decrypted %q", got)
			}
		})
	}
}

// Go encrypts and generates kfrags; JS verifies and re-encrypts; Go
// verifies the cfrags and decrypts.
func TestInteropGoToJS(t *testing.T) {
	a, b, s := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "signer")
	apk, bpk, spk := a.sk.PublicKey(), b.sk.PublicKey(), s.sk.PublicKey()
	pt := []byte("from kadre, through the reference")
	for _, f := range flagSets {
		t.Run(fmt.Sprintf("sign_delegating=%v/sign_receiving=%v", f[0], f[1]), func(t *testing.T) {
			capsule, ct, err := Encrypt(apk, pt)
			if err != nil {
				t.Fatal(err)
			}
			kfrags, err := GenerateKFrags(a.sk, bpk, s.signer, 3, 5, f[0], f[1])
			if err != nil {
				t.Fatal(err)
			}
			var dk, rk *PublicKey
			if f[0] {
				dk = apk
			}
			if f[1] {
				rk = bpk
			}
			ops := []jsOp{
				{"op": "roundtrip", "type": "capsule", "bytes": h(capsule.Bytes())},
				{"op": "decrypt_original", "sk": h(a.sk.Bytes()), "capsule": h(capsule.Bytes()), "ciphertext": h(ct)},
			}
			for _, kf := range kfrags {
				ops = append(ops,
					jsOp{"op": "roundtrip", "type": "kfrag", "bytes": h(kf.Bytes())},
					jsOp{"op": "reencrypt", "capsule": h(capsule.Bytes()), "kfrag": h(kf.Bytes()),
						"verifying_pk": h(spk.Bytes()), "delegating_pk": pkOrNil(dk), "receiving_pk": pkOrNil(rk)})
			}
			res := mustJS(t, ops...)
			if got := res[0].bytes(t, "bytes"); !bytes.Equal(got, capsule.Bytes()) {
				t.Fatal("kadre capsule does not re-serialize byte for byte in the reference")
			}
			if got := res[1].bytes(t, "plaintext"); !bytes.Equal(got, pt) {
				t.Fatalf("reference decryptOriginal = %q", got)
			}
			var cfrags []*VerifiedCapsuleFrag
			for i := range kfrags {
				if got := res[2+2*i].bytes(t, "bytes"); !bytes.Equal(got, kfrags[i].Bytes()) {
					t.Fatalf("kadre kfrag %d does not re-serialize byte for byte in the reference", i)
				}
				cb := res[3+2*i].bytes(t, "cfrag")
				cf, err := ParseCapsuleFrag(cb)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(cf.Bytes(), cb) {
					t.Fatalf("reference cfrag %d does not re-serialize byte for byte", i)
				}
				vc, err := cf.Verify(capsule, spk, apk, bpk)
				if err != nil {
					t.Fatalf("reference cfrag %d: %v", i, err)
				}
				cfrags = append(cfrags, vc)
			}
			got, err := DecryptReencrypted(b.sk, apk, capsule, []*VerifiedCapsuleFrag{cfrags[1], cfrags[3], cfrags[4]}, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("DecryptReencrypted = %q, %v", got, err)
			}
		})
	}
}

// Keys, factories and signatures agree in both directions.
func TestInteropKeysAndSignatures(t *testing.T) {
	s := newParty(t, "signer")
	msg := []byte("signed by kadre")
	seed := bytes.Repeat([]byte{7}, 32)
	f, err := NewSecretKeyFactory(seed)
	if err != nil {
		t.Fatal(err)
	}
	res := mustJS(t,
		jsOp{"op": "public_key", "sk": h(s.sk.Bytes())},
		jsOp{"op": "verify_signature", "pk": h(s.sk.PublicKey().Bytes()), "msg": h(msg), "signature": h(mustSign(t, s.signer, msg).Bytes())},
		jsOp{"op": "sign", "sk": h(s.sk.Bytes()), "msg": h(msg)},
		jsOp{"op": "skf", "seed": h(seed), "factories": []string{h([]byte("kadre/paths/v1"))}, "key": h([]byte("/home/ubuntu"))},
	)
	if got := res[0].bytes(t, "pk"); !bytes.Equal(got, s.sk.PublicKey().Bytes()) {
		t.Fatal("public keys differ")
	}
	var valid bool
	json.Unmarshal(res[1].m["valid"], &valid)
	if !valid {
		t.Fatal("reference rejects a kadre signature")
	}
	sig, err := ParseSignature(res[2].bytes(t, "signature"))
	if err != nil || !sig.Verify(s.sk.PublicKey(), msg) {
		t.Fatalf("kadre rejects a reference signature: %v", err)
	}
	want := f.MakeFactory([]byte("kadre/paths/v1")).MakeKey([]byte("/home/ubuntu")).Bytes()
	if got := res[3].bytes(t, "key"); !bytes.Equal(got, want) {
		t.Fatal("derived path keys differ")
	}
}

// The negative cases fail on both sides: wrong keys, too few cfrags,
// cfrags of two grants, repeated cfrags.
func TestInteropRefusals(t *testing.T) {
	a, b, s, m := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "signer"), newParty(t, "mallory")
	apk, bpk, spk := a.sk.PublicKey(), b.sk.PublicKey(), s.sk.PublicKey()
	capsule, ct, err := Encrypt(apk, []byte("refused"))
	if err != nil {
		t.Fatal(err)
	}
	g1, err := GenerateKFrags(a.sk, bpk, s.signer, 2, 3, true, true)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := GenerateKFrags(a.sk, bpk, s.signer, 2, 3, true, true)
	if err != nil {
		t.Fatal(err)
	}
	cf := func(k *VerifiedKeyFrag) string { return h(mustReencrypt(t, capsule, k).Bytes()) }
	dec := func(name string, sk *SecretKey, cfrags ...string) jsOp {
		return jsOp{"op": "decrypt_reencrypted", "name": name, "receiving_sk": h(sk.Bytes()), "delegating_pk": h(apk.Bytes()),
			"verifying_pk": h(spk.Bytes()), "receiving_pk": h(bpk.Bytes()), "capsule": h(capsule.Bytes()),
			"cfrags": cfrags, "ciphertext": h(ct)}
	}
	c1a, c1b, c2 := cf(g1[0]), cf(g1[1]), cf(g2[1])
	ops := []jsOp{
		{"op": "verify_kfrag", "name": "kfrag, wrong verifying key", "kfrag": h(g1[0].Bytes()), "verifying_pk": h(apk.Bytes()), "delegating_pk": h(apk.Bytes()), "receiving_pk": h(bpk.Bytes())},
		{"op": "verify_kfrag", "name": "kfrag, wrong receiving key", "kfrag": h(g1[0].Bytes()), "verifying_pk": h(spk.Bytes()), "delegating_pk": h(apk.Bytes()), "receiving_pk": h(m.sk.PublicKey().Bytes())},
		{"op": "verify_cfrag", "name": "cfrag, wrong delegating key", "cfrag": c1a, "capsule": h(capsule.Bytes()), "verifying_pk": h(spk.Bytes()), "delegating_pk": h(m.sk.PublicKey().Bytes()), "receiving_pk": h(bpk.Bytes())},
		dec("fewer than threshold", b.sk, c1a),
		dec("two grants", b.sk, c1a, c2),
		dec("repeated", b.sk, c1a, c1a),
		{"op": "decrypt_original", "name": "wrong secret key", "sk": h(m.sk.Bytes()), "capsule": h(capsule.Bytes()), "ciphertext": h(ct)},
		dec("control: the good pair decrypts", b.sk, c1a, c1b),
	}
	res := runJS(t, ops)
	for i, r := range res[:len(res)-1] {
		if r.OK {
			t.Errorf("reference accepted %s", ops[i]["name"])
		}
	}
	if !res[len(res)-1].OK {
		t.Fatalf("control failed in the reference: %s", res[len(res)-1].Error)
	}
	// The same cases in kadre.
	if _, err := g1[0].Unverify().Verify(apk, apk, bpk); err == nil {
		t.Error("kadre accepted a kfrag with the wrong verifying key")
	}
	if _, err := g1[0].Unverify().Verify(spk, apk, m.sk.PublicKey()); err == nil {
		t.Error("kadre accepted a kfrag with the wrong receiving key")
	}
	parsed := func(s string) *CapsuleFrag {
		c, err := ParseCapsuleFrag(unhex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := parsed(c1a).Verify(capsule, spk, m.sk.PublicKey(), bpk); err == nil {
		t.Error("kadre accepted a cfrag with the wrong delegating key")
	}
	v := func(s string) *VerifiedCapsuleFrag {
		vc, err := parsed(s).Verify(capsule, spk, apk, bpk)
		if err != nil {
			t.Fatal(err)
		}
		return vc
	}
	for name, set := range map[string][]*VerifiedCapsuleFrag{
		"fewer than threshold": {v(c1a)}, "two grants": {v(c1a), v(c2)}, "repeated": {v(c1a), v(c1a)},
	} {
		if _, err := DecryptReencrypted(b.sk, apk, capsule, set, ct); err == nil {
			t.Errorf("kadre accepted %s", name)
		}
	}
	if _, err := DecryptOriginal(m.sk, capsule, ct); err == nil {
		t.Error("kadre decrypted with the wrong secret key")
	}
}

// Every vector mutated (sampled bit flips of capsule, kfrag, cfrag,
// signature, ciphertext) is refused by the reference too.
func TestInteropMutatedVectors(t *testing.T) {
	v := loadVectors(t)
	g := v.Grants[3]
	keys := jsOp{"verifying_pk": g.VerifyingPK, "delegating_pk": g.DelegatingPK, "receiving_pk": g.ReceivingPK}
	with := func(op jsOp) jsOp {
		for k, x := range keys {
			op[k] = x
		}
		return op
	}
	const stride = 5
	var ops []jsOp
	for _, m := range flips(unhex(t, g.Capsule), stride) {
		ops = append(ops, with(jsOp{"op": "decrypt_reencrypted", "what": "capsule", "receiving_sk": g.ReceivingSK,
			"capsule": h(m), "cfrags": g.CFrags[:3], "ciphertext": g.Ciphertext}))
	}
	for _, m := range flips(unhex(t, g.Ciphertext), stride) {
		ops = append(ops, with(jsOp{"op": "decrypt_reencrypted", "what": "ciphertext", "receiving_sk": g.ReceivingSK,
			"capsule": g.Capsule, "cfrags": g.CFrags[:3], "ciphertext": h(m)}))
	}
	for _, m := range flips(unhex(t, g.CFrags[0]), stride) {
		ops = append(ops, with(jsOp{"op": "verify_cfrag", "what": "cfrag", "cfrag": h(m), "capsule": g.Capsule}))
	}
	for _, m := range flips(unhex(t, g.KFrags[0]), stride) {
		// A kfrag passes if its proxy signature and commitment hold; the
		// receiver signature inside it is caught through the cfrag.
		ops = append(ops, with(jsOp{"op": "reencrypt", "what": "kfrag", "kfrag": h(m), "capsule": g.Capsule}))
	}
	s := v.Signatures[1]
	for _, m := range flips(unhex(t, s.Signature), 1) {
		ops = append(ops, jsOp{"op": "verify_signature", "what": "signature", "pk": s.PK, "msg": s.Msg, "signature": h(m)})
	}
	res := runJS(t, ops)
	var followUp []jsOp
	for i, r := range res {
		switch ops[i]["what"] {
		case "kfrag":
			if r.OK {
				followUp = append(followUp, with(jsOp{"op": "verify_cfrag", "what": "cfrag of mutated kfrag",
					"cfrag": h(r.bytes(t, "cfrag")), "capsule": g.Capsule}))
			}
		case "signature":
			var valid bool
			json.Unmarshal(r.m["valid"], &valid)
			if r.OK && valid {
				t.Errorf("reference accepted a mutated signature")
			}
		default:
			if r.OK {
				t.Errorf("reference accepted a mutated %s", ops[i]["what"])
			}
		}
	}
	for i, r := range runJS(t, followUp) {
		if r.OK {
			t.Errorf("reference accepted %s", followUp[i]["what"])
		}
	}
	if n := len(ops); n < 400 {
		t.Fatalf("only %d mutations ran", n)
	}
}
