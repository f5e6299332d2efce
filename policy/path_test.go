package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"//", "/"},
		{"/.", "/"},
		{"/./", "/"},
		{"/home", "/home"},
		{"/home/", "/home"},
		{"//home", "/home"},
		{"/home//", "/home"},
		{"/home/./x", "/home/x"},
		{"/./home/.", "/home"},
		{"/home/ubuntu/secret.txt", "/home/ubuntu/secret.txt"},
		{"/a b/c\\d", "/a b/c\\d"},
		{"/...", "/..."},
		{"/.hidden/..x", "/.hidden/..x"},
		{"/héllo/世界", "/héllo/世界"},
		{"/" + strings.Repeat("a", MaxComponentLen), "/" + strings.Repeat("a", MaxComponentLen)},
		{strings.Repeat("/a", MaxPathDepth), strings.Repeat("/a", MaxPathDepth)},
		{strings.Repeat("/a", MaxPathDepth) + "/./", strings.Repeat("/a", MaxPathDepth)},
	} {
		p, err := NormalizePath(tc.in)
		if err != nil {
			t.Errorf("NormalizePath(%q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tc.in, p, tc.want)
		}
	}
}

func TestNormalizePathRefusals(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"relative", "home"},
		{"relative dot", "./home"},
		{"relative dotdot", "../home"},
		{"dotdot", "/home/../etc"},
		{"trailing dotdot", "/home/.."},
		{"root dotdot", "/.."},
		{"NUL", "/home\x00/x"},
		{"newline", "/home\n"},
		{"tab", "/a\tb"},
		{"DEL", "/a\x7fb"},
		{"C1 control", "/a\u0085b"},
		{"invalid UTF-8", "/a\xffb"},
		{"truncated UTF-8", "/a\xe4\xb8"},
		{"component too long", "/" + strings.Repeat("a", MaxComponentLen+1)},
		{"too deep", strings.Repeat("/a", MaxPathDepth+1)},
		{"input too long", "/" + strings.Repeat("/", MaxPathLen)},
		{"path too long", strings.Repeat("/"+strings.Repeat("a", 200), 21)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NormalizePath(tc.in)
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("NormalizePath(%q) error = %v, want ErrInvalidPath", tc.in, err)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestPathPrefixes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/", []string{"/"}},
		{"/home", []string{"/", "/home"}},
		{"/home/ubuntu/secret.txt", []string{"/", "/home", "/home/ubuntu", "/home/ubuntu/secret.txt"}},
	} {
		p := MustNormalizePath(tc.in)
		var got []string
		for _, q := range p.Prefixes() {
			got = append(got, q.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q.Prefixes() = %q, want %q", tc.in, got, tc.want)
		}
		if p.Depth()+1 != len(got) {
			t.Errorf("%q: depth %d but %d prefixes", tc.in, p.Depth(), len(got))
		}
	}
	if !RootPath().IsRoot() || (Path{}).String() != "/" || RootPath().Components() != nil {
		t.Error("zero Path is not the root")
	}
	if got := MustNormalizePath("/a/b").Components(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Components = %q", got)
	}
}

func TestPathHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		p, q string
		want bool
	}{
		{"/home/x", "/", true},
		{"/home/x", "/home", true},
		{"/home/x", "/home/x", true},
		{"/homework", "/home", false},
		{"/home", "/home/x", false},
		{"/", "/", true},
		{"/", "/home", false},
	} {
		if got := MustNormalizePath(tc.p).HasPrefix(MustNormalizePath(tc.q)); got != tc.want {
			t.Errorf("%q.HasPrefix(%q) = %v", tc.p, tc.q, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "", "home", "/home/./x", "//a//b/", "/..", "/a\x00", "/héllo", "/a/b/c/d/e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := NormalizePath(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
			return
		}
		n := p.String()
		q, err := NormalizePath(n)
		if err != nil || q != p {
			t.Fatalf("normal form %q does not normalize to itself: %v", n, err)
		}
		if !utf8.ValidString(n) || len(n) > MaxPathLen || n[0] != '/' || (len(n) > 1 && strings.HasSuffix(n, "/")) || strings.Contains(n, "//") {
			t.Fatalf("bad normal form %q", n)
		}
		pre := p.Prefixes()
		if len(pre) != p.Depth()+1 || pre[len(pre)-1] != p || !pre[0].IsRoot() {
			t.Fatalf("%q: bad prefixes %v", n, pre)
		}
		for i, c := range p.Components() {
			if c == "" || c == "." || c == ".." || len(c) > MaxComponentLen {
				t.Fatalf("%q: bad component %q", n, c)
			}
			if pre[i+1].Depth() != i+1 || !p.HasPrefix(pre[i+1]) {
				t.Fatalf("%q: prefix %d = %q", n, i+1, pre[i+1])
			}
		}
	})
}
