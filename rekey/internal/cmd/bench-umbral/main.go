// Command bench-umbral times kadre's Umbral operations and the reference
// implementation (@nucypher/umbral-pre 0.10.0 under Node, interop/bench.js)
// in one run on the same machine, with the same method: fixed keys, a 1 KiB
// plaintext, 3-of-5 with both keys signed, a warm-up, then interleaved
// rounds of individually timed calls, median and p90 over pooled samples.
//
// It prints, per operation, both medians, the speed-up (reference/kadre),
// and kadre's floor: the operation's count of point multiplications times
// the single-multiplication costs measured in the same run.
//
// Run it with scripts/bench-umbral.sh.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/rekey/internal/curve"
)

type op struct {
	name    string
	prepare func() any
	run     func(any)
}

type stat struct {
	Median float64 `json:"median_us"`
	P90    float64 `json:"p90_us"`
	N      int     `json:"n"`
}

func measure(ops []op, rounds, iters, warmup int) map[string]stat {
	samples := map[string][]float64{}
	once := func(o op, record bool) {
		var x any
		if o.prepare != nil {
			x = o.prepare()
		}
		t0 := time.Now()
		o.run(x)
		dt := time.Since(t0)
		if record {
			samples[o.name] = append(samples[o.name], float64(dt.Nanoseconds())/1e3)
		}
	}
	for _, o := range ops {
		for range warmup {
			once(o, false)
		}
	}
	for range rounds {
		for _, o := range ops {
			for range iters {
				once(o, true)
			}
		}
	}
	out := map[string]stat{}
	for name, xs := range samples {
		sort.Float64s(xs)
		q := func(p float64) float64 { return xs[min(len(xs)-1, int(p*float64(len(xs))))] }
		out[name] = stat{Median: q(0.5), P90: q(0.9), N: len(xs)}
	}
	return out
}

func fixed(label string) *rekey.SecretKey {
	d := sha256.Sum256([]byte(label))
	sk, err := rekey.ParseSecretKey(d[:])
	if err != nil {
		panic(err)
	}
	return sk
}

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-umbral:", err)
		os.Exit(1)
	}
	return v
}

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	iters := flag.Int("iters", 200, "timed calls per operation per round")
	warmup := flag.Int("warmup", 50, "untimed calls per operation first")
	interop := flag.String("interop", "interop", "directory of the reference bridge (interop/)")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	flag.Parse()

	alice, bob, signerSK := fixed("alice"), fixed("bob"), fixed("signer")
	apk, bpk, spk := alice.PublicKey(), bob.PublicKey(), signerSK.PublicKey()
	signer := rekey.NewSigner(signerSK)
	pt := make([]byte, 1024)
	rand.Read(pt)
	capsule, ct := func() (*rekey.Capsule, []byte) {
		c, ct, err := rekey.Encrypt(apk, pt)
		must(0, err)
		return c, ct
	}()
	capsuleB := capsule.Bytes()
	kfrags := must(rekey.GenerateKFrags(alice, bpk, signer, 3, 5, true, true))
	kfragB := kfrags[0].Bytes()
	var cfrags []*rekey.VerifiedCapsuleFrag
	for _, k := range kfrags {
		cfrags = append(cfrags, must(rekey.Reencrypt(capsule, k)))
	}
	cfragB := cfrags[0].Bytes()

	// Single multiplications, for the floors.
	var k1, k2 curve.Scalar
	var kb [32]byte
	rand.Read(kb[:])
	k1.SetBytes(&kb)
	rand.Read(kb[:])
	k2.SetBytes(&kb)
	P := curve.NewGeneratorPoint()
	P.ScalarMult(&k1, P)
	Q := curve.NewIdentityPoint().ScalarMult(&k2, P)
	U := curve.NewIdentityPoint().ScalarMult(&k2, Q)
	table := curve.NewTable(U)
	G := curve.NewGeneratorPoint()
	var R, R2 curve.Point

	umbralOps := []op{
		{name: "encrypt", run: func(any) { rekey.Encrypt(apk, pt) }},
		{name: "decrypt_original", run: func(any) { must(rekey.DecryptOriginal(alice, capsule, ct)) }},
		{name: "generate_kfrags", run: func(any) { must(rekey.GenerateKFrags(alice, bpk, signer, 3, 5, true, true)) }},
		{name: "kfrag_verify", prepare: func() any { return must(rekey.ParseKeyFrag(kfragB)) },
			run: func(x any) { must(x.(*rekey.KeyFrag).Verify(spk, apk, bpk)) }},
		{name: "reencrypt", run: func(any) { must(rekey.Reencrypt(capsule, kfrags[0])) }},
		{name: "cfrag_verify", prepare: func() any { return must(rekey.ParseCapsuleFrag(cfragB)) },
			run: func(x any) { must(x.(*rekey.CapsuleFrag).Verify(capsule, spk, apk, bpk)) }},
		{name: "decrypt_reencrypted", run: func(any) { must(rekey.DecryptReencrypted(bob, apk, capsule, cfrags[:3], ct)) }},
		{name: "capsule_parse", run: func(any) { must(rekey.ParseCapsule(capsuleB)) }},
	}
	mulOps := []op{
		{name: "mul", run: func(any) { R.ScalarMult(&k1, P) }},
		{name: "mul_pair", run: func(any) { curve.ScalarMultPair(&R, &R2, &k1, &k2, P) }},
		{name: "base", run: func(any) { R.ScalarBaseMult(&k1) }},
		{name: "table", run: func(any) { R.ScalarMultTable(&k1, table) }},
		{name: "vartime", run: func(any) { R.ScalarMultVartime(&k1, P) }},
		{name: "double_vartime", run: func(any) { R.DoubleScalarMultVartime(&k1, P, &k2, Q) }},
		{name: "double_vartime_g", run: func(any) { R.DoubleScalarMultVartime(&k1, G, &k2, Q) }},
		{name: "msm3", run: func(any) { R.MultiScalarMult([]*curve.Scalar{&k1, &k2, &k1}, []*curve.Point{P, Q, U}) }},
		{name: "invert_scalar", run: func(any) { var s curve.Scalar; curve.InvertScalar(&s, &k1) }},
		{name: "compress", run: func(any) { R.Compressed() }},
	}

	// The reference first, alone, then kadre: the two never share a core.
	cmd := exec.Command("node", filepath.Join(*interop, "bench.js"))
	cmd.Env = append(os.Environ(), fmt.Sprintf("ROUNDS=%d", *rounds), fmt.Sprintf("ITERS=%d", *iters), fmt.Sprintf("WARMUP=%d", *warmup))
	cmd.Stderr = os.Stderr
	out := must(cmd.Output())
	var ref map[string]stat
	must(0, json.Unmarshal(bytes.TrimSpace(out), &ref))
	kadre := measure(umbralOps, *rounds, *iters, *warmup)
	mul := measure(mulOps, *rounds, *iters, *warmup)

	// Point multiplications per operation in kadre (rekey's code): the
	// floor is what they alone cost.
	m := func(n string) float64 { return mul[n].Median }
	// Double-scalar multiplications (ECDSA and proof checks) count as one
	// operation at their own measured cost; the ones with G as a base use
	// its precomputed table.
	floors := map[string]float64{
		"encrypt":             2*m("base") + m("mul"),
		"decrypt_original":    m("mul"),
		"generate_kfrags":     11*m("base") + m("mul") + 5*m("table") + 2*m("invert_scalar"),
		"kfrag_verify":        m("table") + m("double_vartime_g"),
		"reencrypt":           2*m("mul_pair") + m("table"),
		"cfrag_verify":        m("double_vartime_g") + 3*m("double_vartime"),
		"decrypt_reencrypted": 2*m("mul") + 2*m("msm3") + m("vartime") + m("invert_scalar"),
		"capsule_parse":       m("double_vartime_g"),
	}
	order := []string{"encrypt", "decrypt_original", "generate_kfrags", "kfrag_verify", "reencrypt", "cfrag_verify", "decrypt_reencrypted", "capsule_parse"}
	fmt.Printf("%-22s %12s %12s %9s %7s %11s %9s\n", "operation (µs, median)", "reference", "kadre", "speed-up", "≥3×", "kadre floor", "vs floor")
	for _, n := range order {
		r, k := ref[n].Median, kadre[n].Median
		ok := "yes"
		if r/k < 3 {
			ok = "NO"
		}
		fmt.Printf("%-22s %12.1f %12.1f %8.2f× %7s %11.1f %8.2f×\n", n, r, k, r/k, ok, floors[n], k/floors[n])
	}
	fmt.Printf("\nsingle operations in the same run (µs, median):")
	for _, n := range []string{"mul", "mul_pair", "base", "table", "vartime", "double_vartime", "double_vartime_g", "msm3", "invert_scalar", "compress"} {
		fmt.Printf(" %s=%.1f", n, mul[n].Median)
	}
	fmt.Println()
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"reference": ref, "kadre": kadre, "single": mul, "floors": floors}, "", " ")
		must(0, os.WriteFile(*jsonOut, b, 0o644))
	}
}
