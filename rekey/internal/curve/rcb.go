package curve

// Complete point arithmetic on y² = x³ + 7 in homogeneous projective
// coordinates (X:Y:Z) ↔ (X/Z, Y/Z), identity (0:1:0).
//
// Formulas: J. Renes, C. Costello, L. Batina, "Complete addition formulas for
// prime order elliptic curves", EUROCRYPT 2016 (ePrint 2015/1060),
// Algorithms 7 (addition), 8 (mixed addition) and 9 (doubling) for a = 0,
// with b3 = 3·b = 21. They have no exceptional cases on a prime-order curve:
// P + Q, P + P, P + (-P) and additions with the identity all use the same
// sequence of field operations, so there is no branch on point values.

// projPoint is a point in homogeneous projective coordinates.
type projPoint struct {
	x, y, z fieldElement
}

// affinePoint is a point (x, y) with implicit Z = 1. It cannot represent
// the identity; tables of affinePoint only ever hold non-identity points.
type affinePoint struct {
	x, y fieldElement
}

// projAdd sets r = p + q (RCB 2015, Algorithm 7: 12M + 2m3b + 19a).
// r may alias p or q.
func projAdd(r, p, q *projPoint) {
	var t0, t1, t2, t3, t4, x3, y3, z3 fieldElement
	feMul(&t0, &p.x, &q.x) // 1. t0 = X1·X2
	feMul(&t1, &p.y, &q.y) // 2. t1 = Y1·Y2
	feMul(&t2, &p.z, &q.z) // 3. t2 = Z1·Z2
	feAdd(&t3, &p.x, &p.y) // 4. t3 = X1+Y1
	feAdd(&t4, &q.x, &q.y) // 5. t4 = X2+Y2
	feMul(&t3, &t3, &t4)   // 6. t3 = t3·t4
	feAdd(&t4, &t0, &t1)   // 7. t4 = t0+t1
	feSub(&t3, &t3, &t4)   // 8. t3 = t3-t4
	feAdd(&t4, &p.y, &p.z) // 9. t4 = Y1+Z1
	feAdd(&x3, &q.y, &q.z) // 10. X3 = Y2+Z2
	feMul(&t4, &t4, &x3)   // 11. t4 = t4·X3
	feAdd(&x3, &t1, &t2)   // 12. X3 = t1+t2
	feSub(&t4, &t4, &x3)   // 13. t4 = t4-X3
	feAdd(&x3, &p.x, &p.z) // 14. X3 = X1+Z1
	feAdd(&y3, &q.x, &q.z) // 15. Y3 = X2+Z2
	feMul(&x3, &x3, &y3)   // 16. X3 = X3·Y3
	feAdd(&y3, &t0, &t2)   // 17. Y3 = t0+t2
	feSub(&y3, &x3, &y3)   // 18. Y3 = X3-Y3
	feAdd(&x3, &t0, &t0)   // 19. X3 = t0+t0
	feAdd(&t0, &x3, &t0)   // 20. t0 = X3+t0
	feMul21(&t2, &t2)      // 21. t2 = b3·t2
	feAdd(&z3, &t1, &t2)   // 22. Z3 = t1+t2
	feSub(&t1, &t1, &t2)   // 23. t1 = t1-t2
	feMul21(&y3, &y3)      // 24. Y3 = b3·Y3
	feMul(&x3, &t4, &y3)   // 25. X3 = t4·Y3
	feMul(&t2, &t3, &t1)   // 26. t2 = t3·t1
	feSub(&x3, &t2, &x3)   // 27. X3 = t2-X3
	feMul(&y3, &y3, &t0)   // 28. Y3 = Y3·t0
	feMul(&t1, &t1, &z3)   // 29. t1 = t1·Z3
	feAdd(&y3, &t1, &y3)   // 30. Y3 = t1+Y3
	feMul(&t0, &t0, &t3)   // 31. t0 = t0·t3
	feMul(&z3, &z3, &t4)   // 32. Z3 = Z3·t4
	feAdd(&z3, &z3, &t0)   // 33. Z3 = Z3+t0
	r.x, r.y, r.z = x3, y3, z3
}

// projAddMixed sets r = p + q for an affine (hence non-identity) q
// (RCB 2015, Algorithm 8: 11M + 2m3b + 13a). p may be the identity.
// r may alias p.
func projAddMixed(r, p *projPoint, q *affinePoint) {
	var t0, t1, t2, t3, t4, x3, y3, z3 fieldElement
	feMul(&t0, &p.x, &q.x) // 1. t0 = X1·X2
	feMul(&t1, &p.y, &q.y) // 2. t1 = Y1·Y2
	feAdd(&t3, &q.x, &q.y) // 3. t3 = X2+Y2
	feAdd(&t4, &p.x, &p.y) // 4. t4 = X1+Y1
	feMul(&t3, &t3, &t4)   // 5. t3 = t3·t4
	feAdd(&t4, &t0, &t1)   // 6. t4 = t0+t1
	feSub(&t3, &t3, &t4)   // 7. t3 = t3-t4
	feMul(&t4, &q.y, &p.z) // 8. t4 = Y2·Z1
	feAdd(&t4, &t4, &p.y)  // 9. t4 = t4+Y1
	feMul(&y3, &q.x, &p.z) // 10. Y3 = X2·Z1
	feAdd(&y3, &y3, &p.x)  // 11. Y3 = Y3+X1
	feAdd(&x3, &t0, &t0)   // 12. X3 = t0+t0
	feAdd(&t0, &x3, &t0)   // 13. t0 = X3+t0
	feMul21(&t2, &p.z)     // 14. t2 = b3·Z1
	feAdd(&z3, &t1, &t2)   // 15. Z3 = t1+t2
	feSub(&t1, &t1, &t2)   // 16. t1 = t1-t2
	feMul21(&y3, &y3)      // 17. Y3 = b3·Y3
	feMul(&x3, &t4, &y3)   // 18. X3 = t4·Y3
	feMul(&t2, &t3, &t1)   // 19. t2 = t3·t1
	feSub(&x3, &t2, &x3)   // 20. X3 = t2-X3
	feMul(&y3, &y3, &t0)   // 21. Y3 = Y3·t0
	feMul(&t1, &t1, &z3)   // 22. t1 = t1·Z3
	feAdd(&y3, &t1, &y3)   // 23. Y3 = t1+Y3
	feMul(&t0, &t0, &t3)   // 24. t0 = t0·t3
	feMul(&z3, &z3, &t4)   // 25. Z3 = Z3·t4
	feAdd(&z3, &z3, &t0)   // 26. Z3 = Z3+t0
	r.x, r.y, r.z = x3, y3, z3
}

// projDouble sets r = 2p (RCB 2015, Algorithm 9: 6M + 2S + 1m3b + 7a).
// r may alias p. The chains of additions computing 8·t0 (steps 2-4) and
// 3·t2 (steps 11-12) are each replaced by one multiplication by a small
// constant, which is cheaper than two or three modular additions here.
func projDouble(r, p *projPoint) {
	var t0, t1, t2, zz, x3, y3, z3 fieldElement
	feSquare(&t0, &p.y)      // 1. t0 = Y·Y
	feMulSmall(&z3, &t0, 8)  // 2-4. Z3 = 8·t0
	feMul(&t1, &p.y, &p.z)   // 5. t1 = Y·Z
	feSquare(&zz, &p.z)      // 6. t2 = Z·Z
	feMul21(&t2, &zz)        // 7. t2 = b3·t2
	feMul(&x3, &t2, &z3)     // 8. X3 = t2·Z3
	feAdd(&y3, &t0, &t2)     // 9. Y3 = t0+t2
	feMul(&z3, &t1, &z3)     // 10. Z3 = t1·Z3
	feMulSmall(&t2, &zz, 63) // 11-12. t2 = 3·t2 = 3·b3·Z²
	feSub(&t0, &t0, &t2)     // 13. t0 = t0-t2
	feMul(&y3, &t0, &y3)     // 14. Y3 = t0·Y3
	feAdd(&y3, &x3, &y3)     // 15. Y3 = X3+Y3
	feMul(&t1, &p.x, &p.y)   // 16. t1 = X·Y
	feMul(&x3, &t0, &t1)     // 17. X3 = t0·t1
	feAdd(&x3, &x3, &x3)     // 18. X3 = X3+X3
	r.x, r.y, r.z = x3, y3, z3
}

// projSetIdentity sets r = (0:1:0).
func projSetIdentity(r *projPoint) {
	r.x = feZero
	r.y = feOne
	r.z = feZero
}

// projSelect sets r = b if m is all ones and r = a if m is zero.
func projSelect(r, a, b *projPoint, m uint64) {
	feSelect(&r.x, &a.x, &b.x, m)
	feSelect(&r.y, &a.y, &b.y, m)
	feSelect(&r.z, &a.z, &b.z, m)
}

// projIsIdentity returns 1 if p is the identity (Z = 0), else 0.
func projIsIdentity(p *projPoint) uint64 { return feIsZero(&p.z) }

// batchToAffine converts the points in to affine form in out with one field
// inversion (Montgomery's trick: invert the product of all Z, then peel the
// individual inverses off with prefix products; 3(n-1) multiplications plus
// 2n for the coordinates). scratch must have len(in) elements. All inputs
// must be non-identity: a single Z = 0 turns every output into (0, 0).
func batchToAffine(out []affinePoint, in []projPoint, scratch []fieldElement) {
	n := len(in)
	if n == 0 {
		return
	}
	_ = out[n-1]
	_ = scratch[n-1]
	// scratch[i] = Z_0·…·Z_i.
	scratch[0] = in[0].z
	for i := 1; i < n; i++ {
		feMul(&scratch[i], &scratch[i-1], &in[i].z)
	}
	var inv, zinv fieldElement
	feInvert(&inv, &scratch[n-1]) // (Z_0·…·Z_{n-1})^-1
	for i := n - 1; i > 0; i-- {
		feMul(&zinv, &inv, &scratch[i-1]) // Z_i^-1
		feMul(&inv, &inv, &in[i].z)       // (Z_0·…·Z_{i-1})^-1
		feMul(&out[i].x, &in[i].x, &zinv)
		feMul(&out[i].y, &in[i].y, &zinv)
	}
	feMul(&out[0].x, &in[0].x, &inv)
	feMul(&out[0].y, &in[0].y, &inv)
}
