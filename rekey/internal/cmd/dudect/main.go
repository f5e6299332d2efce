// Command dudect is a statistical timing-leak check of kadre's curve package
// in the style of dudect (Reparaz, Balasch, Verbauwhede, "Dude, is my code
// constant time?", DATE 2017).
//
// For each operation it times many calls with two input classes, interleaved
// in random order: class 0 always uses the same fixed secret scalar (by
// default the low-Hamming-weight scalar 2^100 + 1, whose GLV halves are
// 2^100 + 1 and 0, an input a variable-time implementation is much faster
// on; -fixed zero uses k = 0, -fixed random a random scalar chosen once),
// class 1 uses fresh uniformly random
// scalars. It then runs Welch's t-test on the raw timings and on copies
// cropped at several upper percentiles (as dudect does, to remove the
// long tail caused by interrupts and other processes) and reports the
// largest |t|. |t| < 4.5 means no leak was detected; a leak gives |t| that
// grows with the number of measurements.
//
// ScalarMultVartime is included as a positive control: it must be flagged.
//
// Usage: scripts/dudect.sh [-n measurements] [-fixed low|zero|random]
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/kadre/kadre/rekey/internal/curve"
)

// welch accumulates mean and variance of two classes online (Welford).
type welch struct {
	n    [2]float64
	mean [2]float64
	m2   [2]float64
}

func (w *welch) push(class int, x float64) {
	w.n[class]++
	d := x - w.mean[class]
	w.mean[class] += d / w.n[class]
	w.m2[class] += d * (x - w.mean[class])
}

func (w *welch) t() float64 {
	if w.n[0] < 2 || w.n[1] < 2 {
		return 0
	}
	v0 := w.m2[0] / (w.n[0] - 1)
	v1 := w.m2[1] / (w.n[1] - 1)
	return (w.mean[0] - w.mean[1]) / math.Sqrt(v0/w.n[0]+v1/w.n[1])
}

type result struct {
	name   string
	maxT   float64
	rawT   float64
	crop   string
	mean   [2]float64
	counts [2]int
}

// measure times op on n inputs. inputs[i] is prepared for class classes[i].
func measure(name string, n int, classes []uint8, run func(i int)) result {
	times := make([]float64, n)
	// Warm up (caches, lazily built tables, CPU frequency).
	for i := 0; i < n/20+100; i++ {
		run(i % n)
	}
	runtime.GC()
	for i := 0; i < n; i++ {
		start := time.Now()
		run(i)
		times[i] = float64(time.Since(start).Nanoseconds())
	}

	// Crop thresholds at percentiles 1 - 0.5^(10·(k+1)/P) of all timings
	// (dudect's prepare_percentiles), plus the uncropped test.
	sorted := append([]float64(nil), times...)
	sort.Float64s(sorted)
	const P = 20
	thresholds := []float64{math.Inf(1)}
	labels := []string{"none"}
	for k := 0; k < P; k++ {
		q := 1 - math.Pow(0.5, 10*float64(k+1)/P)
		idx := int(q * float64(n-1))
		thresholds = append(thresholds, sorted[idx])
		labels = append(labels, fmt.Sprintf("p%.2f", 100*q))
	}
	tests := make([]welch, len(thresholds))
	for i, x := range times {
		c := int(classes[i])
		for k, th := range thresholds {
			if x <= th {
				tests[k].push(c, x)
			}
		}
	}
	r := result{name: name, rawT: tests[0].t()}
	for k := range tests {
		if t := tests[k].t(); math.Abs(t) >= math.Abs(r.maxT) {
			r.maxT = t
			r.crop = labels[k]
		}
	}
	r.mean = tests[0].mean
	r.counts = [2]int{int(tests[0].n[0]), int(tests[0].n[1])}
	return r
}

func randomScalar() *curve.Scalar {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	var s curve.Scalar
	s.SetBytes(&b)
	return &s
}

func main() {
	n := flag.Int("n", 200000, "measurements per operation")
	fixedKind := flag.String("fixed", "low", "fixed-class scalar: low (2^100+1), zero or random")
	flag.Parse()

	var fixed curve.Scalar
	switch *fixedKind {
	case "low":
		var b [32]byte
		b[31-12] = 0x10 // 2^100
		b[31] = 1
		fixed.SetBytes(&b)
	case "zero":
		fixed.Zero()
	case "random":
		fixed = *randomScalar()
	default:
		fmt.Fprintln(os.Stderr, "dudect: -fixed must be low, zero or random")
		os.Exit(2)
	}

	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	classes := make([]uint8, *n)
	inputs := make([]curve.Scalar, *n)
	for i := range classes {
		classes[i] = uint8(rng.IntN(2))
		if classes[i] == 0 {
			inputs[i] = fixed
		} else {
			inputs[i] = *randomScalar()
		}
	}
	base := new(curve.Point).ScalarBaseMult(randomScalar()) // fixed public point
	var out curve.Point
	var sout curve.Scalar

	fmt.Printf("dudect: %d measurements per operation, fixed class = %s scalar, GOMAXPROCS=%d\n\n",
		*n, *fixedKind, runtime.GOMAXPROCS(0))
	fmt.Printf("%-22s %10s %10s %9s %10s %12s %12s  %s\n", "operation", "max |t|", "raw t", "crop", "n0/n1", "mean0 (ns)", "mean1 (ns)", "verdict")
	ops := []struct {
		name    string
		control bool
		run     func(i int)
	}{
		{"ScalarMult", false, func(i int) { out.ScalarMult(&inputs[i], base) }},
		{"ScalarBaseMult", false, func(i int) { out.ScalarBaseMult(&inputs[i]) }},
		{"InvertScalar", false, func(i int) { curve.InvertScalar(&sout, &inputs[i]) }},
		{"ScalarMultVartime", true, func(i int) { out.ScalarMultVartime(&inputs[i], base) }},
	}
	failed := false
	for _, op := range ops {
		r := measure(op.name, *n, classes, op.run)
		leak := math.Abs(r.maxT) >= 4.5
		verdict := "no leak detected"
		if leak {
			verdict = "LEAK"
		}
		if op.control {
			if leak {
				verdict += " (expected: positive control)"
			} else {
				verdict += " (positive control NOT detected: test too weak)"
				failed = true
			}
		} else if leak {
			failed = true
		}
		fmt.Printf("%-22s %10.2f %10.2f %9s %5d/%-5d %12.0f %12.0f  %s\n",
			r.name, math.Abs(r.maxT), r.rawT, r.crop, r.counts[0], r.counts[1], r.mean[0], r.mean[1], verdict)
	}
	_ = out
	if failed {
		os.Exit(1)
	}
}
