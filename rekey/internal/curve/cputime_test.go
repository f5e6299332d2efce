//go:build linux

package curve

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time consumed by the calling OS thread
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID), Linux).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// TestCPUTimes prints per-operation thread CPU time, which is stable on a
// loaded machine where wall-clock benchmarks are not. Run with
// KADRE_CPUTIME=1 go test -run TestCPUTimes -v ./internal/curve/
func TestCPUTimes(t *testing.T) {
	if os.Getenv("KADRE_CPUTIME") == "" {
		t.Skip("set KADRE_CPUTIME=1")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	k := benchScalar()
	var k2 Scalar
	k2.SquareVal(k)
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	q := dbl(p)
	tab := NewTable(p)
	var r Point
	var s Scalar
	x := genX
	y := genY
	ks := []*Scalar{k, &k2, k}
	ps := []*Point{p, q, NewGeneratorPoint()}
	pp := p.p
	aff := affinePoint{genX, genY}
	var aff2 affinePoint
	var t16 [glvEntries]affinePoint
	ops := []struct {
		name string
		n    int
		f    func()
	}{
		{"FieldMul", 2000000, func() { feMul(&x, &x, &y) }},
		{"FieldSquare", 2000000, func() { feSquare(&x, &x) }},
		{"FieldAdd", 2000000, func() { feAdd(&x, &x, &y) }},
		{"FieldMul21", 2000000, func() { feMul21(&x, &x) }},
		{"projDouble", 200000, func() { projDouble(&pp, &pp) }},
		{"projAdd", 200000, func() { projAdd(&pp, &pp, &p.p) }},
		{"projAddMixed", 200000, func() { projAddMixed(&pp, &pp, &aff) }},
		{"lookupAffine16", 200000, func() { lookupAffine16(&aff2, &t16, 5, 0) }},
		{"glvSplit", 20000, func() { glvSplit(k) }},
		{"FieldInvert", 5000, func() { feInvert(&x, &x) }},
		{"ScalarMult", 3000, func() { r.ScalarMult(k, p) }},
		{"ScalarBaseMult", 5000, func() { r.ScalarBaseMult(k) }},
		{"ScalarMultTable", 5000, func() { r.ScalarMultTable(k, tab) }},
		{"ScalarMultVartime", 3000, func() { r.ScalarMultVartime(k, p) }},
		{"DoubleScalarMultVartime", 3000, func() { r.DoubleScalarMultVartime(k, NewGeneratorPoint(), &k2, q) }},
		{"DoubleScalarMultVartimeNoG", 3000, func() { r.DoubleScalarMultVartime(k, q, &k2, p) }},
		{"MultiScalarMult3", 1000, func() { r.MultiScalarMult(ks, ps) }},
		{"Compressed", 5000, func() { p.Compressed() }},
		{"InvertScalar", 5000, func() { InvertScalar(&s, k) }},
	}
	for _, op := range ops {
		op.f()
		best := time.Duration(1 << 62)
		for rep := 0; rep < 3; rep++ {
			start := threadCPU()
			for i := 0; i < op.n; i++ {
				op.f()
			}
			if d := (threadCPU() - start) / time.Duration(op.n); d < best {
				best = d
			}
		}
		t.Logf("%-24s %10d ns CPU/op", op.name, best.Nanoseconds())
	}
}
