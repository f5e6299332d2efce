package sim

import (
	"math"
	"sort"
	"time"
)

// CaptureProbability is the trust model's formula (issue 11; placement is
// SPEC.md §5.2's): the chance that at least m of a grant's n holders are the
// attacker's when each is with probability f,
// P = Σ_{k≥m} C(n,k) f^k (1−f)^(n−k).
func CaptureProbability(n, m int, f float64) float64 {
	p := 0.0
	for k := m; k <= n; k++ {
		p += math.Exp(logChoose(n, k)) * math.Pow(f, float64(k)) * math.Pow(1-f, float64(n-k))
	}
	return p
}

// CaptureProbabilityFinite is the same chance when the n holders are n
// distinct nodes drawn from a sample of size s of which a are the
// attacker's (hypergeometric): what placement does on a small network.
func CaptureProbabilityFinite(n, m, s, a int) float64 {
	if s < n {
		return math.NaN()
	}
	p := 0.0
	for k := m; k <= n; k++ {
		if k > a || n-k > s-a {
			continue
		}
		p += math.Exp(logChoose(a, k) + logChoose(s-a, n-k) - logChoose(s, n))
	}
	return p
}

func logChoose(n, k int) float64 {
	if k < 0 || k > n {
		return math.Inf(-1)
	}
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// binomCDF is P[X ≤ k] for X ~ Binomial(n, p).
func binomCDF(k, n int, p float64) float64 {
	if k < 0 {
		return 0
	}
	if k >= n {
		return 1
	}
	s := 0.0
	for i := 0; i <= k; i++ {
		s += math.Exp(logChoose(n, i) + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return math.Min(s, 1)
}

// ClopperPearson is the exact two-sided confidence interval, at level
// 1−alpha, of a proportion with k successes in n trials.
func ClopperPearson(k, n int, alpha float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	// lo: P[X ≥ k | lo] = alpha/2; hi: P[X ≤ k | hi] = alpha/2.
	bisect := func(f func(p float64) float64) float64 {
		a, b := 0.0, 1.0
		for range 100 {
			m := (a + b) / 2
			if f(m) > 0 {
				b = m
			} else {
				a = m
			}
		}
		return (a + b) / 2
	}
	if k > 0 {
		lo = bisect(func(p float64) float64 { return (1 - binomCDF(k-1, n, p)) - alpha/2 })
	}
	hi = 1
	if k < n {
		hi = bisect(func(p float64) float64 { return alpha/2 - binomCDF(k, n, p) })
	}
	return lo, hi
}

// Dist summarizes a sample of values.
type Dist struct {
	N                  int
	Mean               float64
	P50, P90, P99, Max float64
}

func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	q := func(p float64) float64 {
		// Nearest rank.
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), Mean: sum / float64(len(s)), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
