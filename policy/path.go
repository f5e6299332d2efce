package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Path limits (SPEC.md, "policy: paths"). They bound the work a recipient's
// request costs a node (one lookup per level) and keep every path hash input
// small.
const (
	// MaxPathDepth is the maximum number of components of a path. A path
	// of depth d has d+1 levels ("/" included), so a re-encryption request
	// has at most MaxPathDepth+1 levels.
	MaxPathDepth = 32

	// MaxComponentLen is the maximum length of one component in bytes (the
	// common file-system NAME_MAX).
	MaxComponentLen = 255

	// MaxPathLen is the maximum length in bytes of both the input string
	// and the normalized path (the common file-system PATH_MAX).
	MaxPathLen = 4096

	// MaxLevels is the maximum number of levels (prefixes) of a path.
	MaxLevels = MaxPathDepth + 1
)

// Path is a normalized absolute path: "/" or "/" followed by components
// joined with "/", none of them empty, ".", or "..". Its bytes are what the
// path hash and the path key derivation consume, so two spellings of one
// path ("/home/", "//home", "/./home") give one Path and one hash.
//
// The zero Path is the root "/".
type Path struct {
	// s is the normalized form without the leading "/" ("" for the root),
	// so the zero value is the root.
	s string
}

// RootPath returns "/".
func RootPath() Path { return Path{} }

// NormalizePath parses s into a Path. The rules (SPEC.md, "policy: paths"):
//
//   - s must be valid UTF-8, at most MaxPathLen bytes, and contain no
//     control character (C0 including NUL, DEL, C1);
//   - s must be absolute: it starts with "/" (a relative path would mean
//     something different in every working directory);
//   - empty components ("//", trailing "/") and "." components are dropped;
//   - a ".." component is refused rather than resolved: resolving it
//     lexically can disagree with the file system (symlinks) and would let
//     two different strings name one grant by accident;
//   - at most MaxPathDepth components of at most MaxComponentLen bytes.
//
// No Unicode normalization is applied: "é" precomposed and decomposed are
// different paths, as they are for most file systems.
func NormalizePath(s string) (Path, error) {
	if s == "" {
		return Path{}, fmt.Errorf("%w: empty path (use \"/\" for the root)", ErrInvalidPath)
	}
	if len(s) > MaxPathLen {
		return Path{}, fmt.Errorf("%w: path is %d bytes, the limit is %d", ErrInvalidPath, len(s), MaxPathLen)
	}
	if !utf8.ValidString(s) {
		return Path{}, fmt.Errorf("%w: path is not valid UTF-8", ErrInvalidPath)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return Path{}, fmt.Errorf("%w: control character %U at byte %d", ErrInvalidPath, r, i)
		}
	}
	if s[0] != '/' {
		return Path{}, fmt.Errorf("%w: %q is relative; paths must start with \"/\"", ErrInvalidPath, s)
	}
	var b strings.Builder
	depth := 0
	for c := range strings.SplitSeq(s[1:], "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return Path{}, fmt.Errorf("%w: \"..\" is not allowed in a path", ErrInvalidPath)
		}
		if len(c) > MaxComponentLen {
			return Path{}, fmt.Errorf("%w: component of %d bytes, the limit is %d", ErrInvalidPath, len(c), MaxComponentLen)
		}
		depth++
		if depth > MaxPathDepth {
			return Path{}, fmt.Errorf("%w: more than %d components", ErrInvalidPath, MaxPathDepth)
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
	}
	return Path{s: b.String()}, nil
}

// MustNormalizePath is NormalizePath for constants in tests and examples.
// It panics on error.
func MustNormalizePath(s string) Path {
	p, err := NormalizePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the normalized form, "/" for the root.
func (p Path) String() string { return "/" + p.s }

// Bytes returns the normalized form as bytes: the message of the path hash
// and the label of the path key derivation.
func (p Path) Bytes() []byte { return []byte(p.String()) }

// IsRoot reports whether p is "/".
func (p Path) IsRoot() bool { return p.s == "" }

// Depth returns the number of components: 0 for "/", 2 for "/home/ubuntu".
func (p Path) Depth() int {
	if p.s == "" {
		return 0
	}
	return strings.Count(p.s, "/") + 1
}

// Components returns the components, nil for the root.
func (p Path) Components() []string {
	if p.s == "" {
		return nil
	}
	return strings.Split(p.s, "/")
}

// Prefixes returns every prefix of p, root first and p itself last:
// "/home/ubuntu" gives ["/", "/home", "/home/ubuntu"]. A path of depth d has
// d+1 prefixes; index i is the level of depth i in a re-encryption request.
func (p Path) Prefixes() []Path {
	out := make([]Path, 0, p.Depth()+1)
	out = append(out, Path{})
	for i := 0; i < len(p.s); i++ {
		if p.s[i] == '/' {
			out = append(out, Path{s: p.s[:i]})
		}
	}
	if p.s != "" {
		out = append(out, p)
	}
	return out
}

// HasPrefix reports whether q is p or an ancestor of p, component-wise:
// "/home" is a prefix of "/home/x" but not of "/homework".
func (p Path) HasPrefix(q Path) bool {
	if q.s == "" || q.s == p.s {
		return true
	}
	return strings.HasPrefix(p.s, q.s) && len(p.s) > len(q.s) && p.s[len(q.s)] == '/'
}
