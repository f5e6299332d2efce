package seal

import (
	"bytes"
	"errors"
	"testing"
)

// Small parameters keep the tests fast; the bounds are what is tested.
var fast = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestSealPassphrase(t *testing.T) {
	secret := []byte("a 32-byte master seed, say......")
	s, err := SealPassphrase([]byte("correct horse"), secret, []byte("kadre identity v1"), fast)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open([]byte("correct horse"), []byte("kadre identity v1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"wrong passphrase":      func() ([]byte, error) { return s.Open([]byte("wrong horse"), []byte("kadre identity v1")) },
		"other associated data": func() ([]byte, error) { return s.Open([]byte("correct horse"), []byte("kadre node key v1")) },
		"flipped byte": func() ([]byte, error) {
			c := *s
			c.Box = bytes.Clone(s.Box)
			c.Box[len(c.Box)/2] ^= 1
			return c.Open([]byte("correct horse"), []byte("kadre identity v1"))
		},
		"other salt": func() ([]byte, error) {
			c := *s
			c.Salt = bytes.Repeat([]byte{1}, SaltSize)
			return c.Open([]byte("correct horse"), []byte("kadre identity v1"))
		},
		"truncated": func() ([]byte, error) {
			c := *s
			c.Box = s.Box[:Overhead-1]
			return c.Open([]byte("correct horse"), []byte("kadre identity v1"))
		},
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
}

func TestParamsBounds(t *testing.T) {
	if err := DefaultParams().Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{}, {Time: 0, MemoryKiB: 64, Threads: 1}, {Time: MaxTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: MaxMemoryKiB + 1, Threads: 1}, {Time: 1, MemoryKiB: 7, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 0}, {Time: 1, MemoryKiB: 16, Threads: 4},
	} {
		if _, err := p.Key([]byte("x"), make([]byte, SaltSize)); !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v, want ErrParams", p, err)
		}
	}
	if _, err := fast.Key(nil, make([]byte, SaltSize)); err == nil {
		t.Error("empty passphrase accepted")
	}
	if _, err := fast.Key([]byte("x"), make([]byte, 8)); err == nil {
		t.Error("short salt accepted")
	}
}

func TestSealWithKey(t *testing.T) {
	var k, other [KeySize]byte
	k[0], other[0] = 1, 2
	b, err := Seal(&k, []byte("node key"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(&k, b, []byte("ad")); err != nil || string(pt) != "node key" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := Open(&other, b, []byte("ad")); !errors.Is(err, ErrOpen) {
		t.Fatalf("other key: %v", err)
	}
}
