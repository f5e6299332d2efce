package rekey

// The reference serializes its structs with rmp-serde as MessagePack arrays
// of fields; every byte field is shorter than 256 bytes, so each is a bin8
// (c4 len bytes). kadre writes exactly that and reads back only that: one
// canonical encoding per object, no trailing bytes (SPEC.md §2.1).

const (
	mpBin8  = 0xc4
	mpTrue  = 0xc3
	mpFalse = 0xc2
)

func mpFixArray(n int) byte { return 0x90 | byte(n) }

// mpWriter appends canonical MessagePack to a byte slice.
type mpWriter struct{ b []byte }

func (w *mpWriter) array(n int) { w.b = append(w.b, mpFixArray(n)) }

func (w *mpWriter) bin(p []byte) {
	w.b = append(w.b, mpBin8, byte(len(p)))
	w.b = append(w.b, p...)
}

func (w *mpWriter) bool(v bool) {
	if v {
		w.b = append(w.b, mpTrue)
	} else {
		w.b = append(w.b, mpFalse)
	}
}

// mpReader consumes canonical MessagePack; the first mismatch sticks in ok.
type mpReader struct {
	b  []byte
	ok bool
}

func newMPReader(b []byte) *mpReader { return &mpReader{b: b, ok: true} }

func (r *mpReader) array(n int) {
	if !r.ok || len(r.b) < 1 || r.b[0] != mpFixArray(n) {
		r.ok = false
		return
	}
	r.b = r.b[1:]
}

func (r *mpReader) bin(n int) []byte {
	if !r.ok || len(r.b) < 2+n || r.b[0] != mpBin8 || int(r.b[1]) != n {
		r.ok = false
		return make([]byte, n)
	}
	p := r.b[2 : 2+n]
	r.b = r.b[2+n:]
	return p
}

func (r *mpReader) bool() bool {
	if !r.ok || len(r.b) < 1 || (r.b[0] != mpTrue && r.b[0] != mpFalse) {
		r.ok = false
		return false
	}
	v := r.b[0] == mpTrue
	r.b = r.b[1:]
	return v
}

// done reports whether everything parsed and nothing is left over.
func (r *mpReader) done() bool { return r.ok && len(r.b) == 0 }
