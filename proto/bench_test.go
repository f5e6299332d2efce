package proto

import (
	"bufio"
	"bytes"
	"testing"
)

func BenchmarkReadRequest(b *testing.B) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, validRequests()["max reencrypt"]); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			b.Fatal(err)
		}
	}
}
