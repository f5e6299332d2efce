package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Path limits (SPEC.md §3.2). They bound the work a recipient's
// request costs a node (one lookup per level) and keep every path hash input
// small.
const (
	// MaxPathDepth is the maximum number of components of a path. A path
	// of depth d has d+1 levels ("/" included), so a re-encryption request
	// has at most MaxPathDepth+1 levels.
	MaxPathDepth = 32

	// MaxComponentLen is the maximum length of one component of the normal
	// form in bytes (the common file-system NAME_MAX).
	MaxComponentLen = 255

	// MaxPathLen is the maximum length in bytes of both the input string
	// and the normalized path (the common file-system PATH_MAX). NFC can
	// make a string up to three times longer, so both are checked.
	MaxPathLen = 4096

	// MaxLevels is the maximum number of levels (prefixes) of a path.
	MaxLevels = MaxPathDepth + 1

	// maxNonStarters is the Stream-Safe Text Format limit of UAX #15: the
	// normalizer inserts graphemeJoiner after this many non-starters in a
	// row, which a Path refuses instead.
	maxNonStarters = 30
	graphemeJoiner = "\u034f"
)

// Path is a normalized absolute path: "/" or "/" followed by components
// joined with "/", none of them empty, ".", or "..". Its bytes are what the
// path hash and the path key derivation consume, so two spellings of one
// path ("/home/", "//home", "/./home", NFD "/cafe\u0301" and NFC
// "/caf\u00e9") give one Path and one hash. The normal form is NFC and holds
// none of the characters NormalizePath refuses.
//
// The zero Path is the root "/".
type Path struct {
	// s is the normalized form without the leading "/" ("" for the root),
	// so the zero value is the root.
	s string
}

// RootPath returns "/".
func RootPath() Path { return Path{} }

// NormalizePath parses s into a Path. The rules, in this order (SPEC.md
// §3.2.1, which gives the reasons):
//
//   - s must be non-empty, at most MaxPathLen bytes and valid UTF-8;
//   - s must contain no character of a refused class: controls (C0, DEL,
//     C1), format characters (Cf: zero-width space, joiners, soft hyphen,
//     BOM, bidi controls), line and paragraph separators, white space other
//     than U+0020, other default-ignorable characters and variation
//     selectors, private-use characters, noncharacters, code points
//     unassigned in the Unicode version of the normalization tables
//     (unicode.Version), look-alikes of "/" (U+2215 DIVISION SLASH, U+2044
//     FRACTION SLASH, U+FF0F FULLWIDTH SOLIDUS, …) and the dot leaders
//     U+2024 and U+2025;
//   - no component may start with a combining mark (it would draw on the
//     "/" before it) or consist only of dots and look-alikes of "." other
//     than plain ASCII dots ("…", "．．");
//   - s must be absolute: it starts with "/" (a relative path would mean
//     something different in every working directory);
//   - s is normalized to NFC (so precomposed and decomposed spellings are
//     one path), and refused if it has more than 30 non-starters in a row
//     (UAX #15, Stream-Safe Text Format);
//   - empty components ("//", trailing "/") and "." components are dropped;
//   - a ".." component is refused rather than resolved: resolving it
//     lexically can disagree with the file system (symlinks) and would let
//     two different strings name one grant by accident;
//   - the normal form has at most MaxPathDepth components of at most
//     MaxComponentLen bytes, and at most MaxPathLen bytes in all.
//
// Every error wraps ErrInvalidPath; a refused character is named by code
// point, name or class, and byte offset in s, never echoed. NFC leaves a
// string already in NFC (every ASCII string) as it is, so the Path and path
// hash of such a path do not depend on the normalization step; a
// decomposed spelling gives the same Path as the composed one as long as
// it fits in MaxPathLen. NormalizePath(p.String()) is p for every Path p.
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
	ascii, err := checkPathCharacters(s)
	if err != nil {
		return Path{}, err
	}
	if s[0] != '/' {
		return Path{}, fmt.Errorf("%w: %q is relative; paths must start with \"/\"", ErrInvalidPath, s)
	}
	n := s
	if !ascii {
		n = norm.NFC.String(s)
		// s holds no U+034F (a default-ignorable character), so one in n
		// was inserted by the normalizer's stream-safe rule.
		if strings.Contains(n, graphemeJoiner) {
			return Path{}, fmt.Errorf("%w: more than %d combining marks in a row at byte %d", ErrInvalidPath, maxNonStarters, streamSafeOverflow(s))
		}
	}
	var b strings.Builder
	depth := 0
	for c := range strings.SplitSeq(n[1:], "/") {
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
	if l := 1 + b.Len(); l > MaxPathLen {
		return Path{}, fmt.Errorf("%w: normal form is %d bytes, the limit is %d", ErrInvalidPath, l, MaxPathLen)
	}
	return Path{s: b.String()}, nil
}

// checkPathCharacters refuses the first character of s in a refused class,
// a component that starts with a combining mark and a component made only
// of dots and look-alikes of "." (SPEC.md §3.2.1, steps 4 and 5), and
// reports whether s is ASCII (and so already NFC). It works on s, before
// NFC, so that byte offsets point into what the caller typed; NFC changes
// none of the three properties, which TestRefusalsStableUnderNFC checks for
// every code point.
func checkPathCharacters(s string) (ascii bool, err error) {
	ascii = true
	start := 0 // offset of the current component
	dotsOnly := true
	lookAlike := -1 // offset of the component's first look-alike of "."
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				return false, runeError(rune(c), "control character, Cc", i)
			case c == '/':
				if dotsOnly && lookAlike >= 0 {
					return false, dotComponentError(s, lookAlike)
				}
				start, dotsOnly, lookAlike = i+1, true, -1
			case c != '.':
				dotsOnly = false
			}
			i++
			continue
		}
		ascii = false
		r, size := utf8.DecodeRuneInString(s[i:])
		if class := refusedClass(r); class != "" {
			return false, runeError(r, class, i)
		}
		if i == start && unicode.Is(unicode.M, r) {
			return false, runeError(r, "combining mark at the start of a component", i)
		}
		if !isDotLookAlike(r) {
			dotsOnly = false
		} else if lookAlike < 0 {
			lookAlike = i
		}
		i += size
	}
	if dotsOnly && lookAlike >= 0 {
		return false, dotComponentError(s, lookAlike)
	}
	return ascii, nil
}

func runeError(r rune, class string, offset int) error {
	if name := runeName(r); name != "" {
		return fmt.Errorf("%w: %U %s (%s) at byte %d", ErrInvalidPath, r, name, class, offset)
	}
	return fmt.Errorf("%w: %U (%s) at byte %d", ErrInvalidPath, r, class, offset)
}

func dotComponentError(s string, offset int) error {
	r, _ := utf8.DecodeRuneInString(s[offset:])
	return runeError(r, `look-alike of "." in a component of dots only`, offset)
}

// streamSafeOverflow returns the offset in s of the character before which
// NFC inserts a U+034F COMBINING GRAPHEME JOINER (UAX #15, Stream-Safe Text
// Format), for the error message only.
func streamSafeOverflow(s string) int {
	var it norm.Iter
	it.InitString(norm.NFC, s)
	for !it.Done() {
		pos := it.Pos()
		if strings.HasPrefix(string(it.Next()), graphemeJoiner) {
			return pos
		}
	}
	return len(s)
}

// refusedClass returns why r may not appear in a path (a class for the
// error message), or "" if it may. The classes, in the order tested, are
// those of SPEC.md §3.2.1 step 4.
func refusedClass(r rune) string {
	if r < utf8.RuneSelf {
		if r < 0x20 || r == 0x7f {
			return "control character, Cc"
		}
		return ""
	}
	switch {
	case unicode.Is(unicode.Cc, r):
		return "control character, Cc"
	case unicode.Is(unicode.Noncharacter_Code_Point, r):
		return "noncharacter"
	case !isAssigned(r):
		return "unassigned in Unicode " + unicode.Version
	case unicode.Is(unicode.Co, r):
		return "private-use character, Co"
	case unicode.Is(unicode.Bidi_Control, r):
		return "bidirectional control, Cf"
	case unicode.Is(unicode.Cf, r):
		return "format character, Cf"
	case unicode.Is(unicode.Zl, r):
		return "line separator, Zl"
	case unicode.Is(unicode.Zp, r):
		return "paragraph separator, Zp"
	case unicode.Is(unicode.White_Space, r):
		return "space other than U+0020, Zs"
	case r == 0x2800:
		return "blank character"
	case unicode.Is(unicode.Variation_Selector, r):
		return "variation selector"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return "default-ignorable character"
	case isSlashLookAlike(r):
		return `look-alike of "/"`
	case r == 0x2024:
		return `look-alike of "."`
	case r == 0x2025:
		return `look-alike of ".."`
	}
	return ""
}

// isAssigned reports whether r has a general category other than Cn in
// unicode.Version, which is also the version of the NFC tables (x/text
// selects its tables by Go release; TestUnicodeVersions checks they agree).
// Unassigned code points are refused because a later Unicode version may
// give one a decomposition, and two implementations would then disagree on
// the normal form and the path hash.
func isAssigned(r rune) bool {
	// unicode.C includes the unassigned code points, so its subcategories are
	// listed instead.
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z,
		unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// isSlashLookAlike reports whether r is a character other than "/" that
// displays as a slash: Unicode's confusables for U+002F except letters of
// ordinary text (U+3033 stays: it is used only in vertical text, paired
// with U+3035), with the double and triple solidus operators (which read
// as "//" and so as "/") and the fullwidth solidus.
// Letters that look alike in some fonts (U+30CE KATAKANA LETTER NO,
// U+4E3F, U+2CC6 COPTIC CAPITAL LETTER OLD COPTIC ESH) stay allowed:
// refusing them would refuse ordinary Japanese names.
func isSlashLookAlike(r rune) bool {
	switch r {
	case 0x1735, // PHILIPPINE SINGLE PUNCTUATION
		0x2041,  // CARET INSERTION POINT
		0x2044,  // FRACTION SLASH
		0x2215,  // DIVISION SLASH
		0x2571,  // BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT
		0x27CB,  // MATHEMATICAL RISING DIAGONAL
		0x29F8,  // BIG SOLIDUS
		0x2AFB,  // TRIPLE SOLIDUS BINARY RELATION
		0x2AFD,  // DOUBLE SOLIDUS OPERATOR
		0x2F03,  // KANGXI RADICAL SLASH
		0x3033,  // VERTICAL KANA REPEAT MARK UPPER HALF
		0x31D3,  // CJK STROKE SP
		0xFF0F,  // FULLWIDTH SOLIDUS
		0x1D23A: // GREEK INSTRUMENTAL NOTATION SYMBOL-47
		return true
	}
	return false
}

// isDotLookAlike reports whether r is a character other than "." that
// displays as one or more dots on the baseline or mid-line: Unicode's
// confusables for U+002E, the middle dots, the leaders and the ellipsis,
// and the small and fullwidth full stops. They are ordinary inside a name
// ("٠٫٥", "a…b") and refused only in a component made of dots alone, which
// would read as ".", ".." or "...". (U+2024 and U+2025 are refused
// everywhere by refusedClass.)
func isDotLookAlike(r rune) bool {
	switch r {
	case 0x00B7, // MIDDLE DOT
		0x0387,  // GREEK ANO TELEIA (NFC: U+00B7)
		0x0660,  // ARABIC-INDIC DIGIT ZERO
		0x06D4,  // ARABIC FULL STOP
		0x06F0,  // EXTENDED ARABIC-INDIC DIGIT ZERO
		0x0701,  // SYRIAC SUPRALINEAR FULL STOP
		0x0702,  // SYRIAC SUBLINEAR FULL STOP
		0x2024,  // ONE DOT LEADER
		0x2025,  // TWO DOT LEADER
		0x2026,  // HORIZONTAL ELLIPSIS
		0x2027,  // HYPHENATION POINT
		0x30FB,  // KATAKANA MIDDLE DOT
		0xA4F8,  // LISU LETTER TONE MYA TI
		0xA60E,  // VAI FULL STOP
		0xFE52,  // SMALL FULL STOP
		0xFF0E,  // FULLWIDTH FULL STOP
		0xFF65,  // HALFWIDTH KATAKANA MIDDLE DOT
		0x10A50, // KHAROSHTHI PUNCTUATION DOT
		0x1D16D: // MUSICAL SYMBOL COMBINING AUGMENTATION DOT
		return true
	}
	return false
}

// runeName returns the Unicode name of the characters an error is most
// likely to be about, "" for others (whose class the error still gives).
// A full name table would add a megabyte to every binary.
func runeName(r rune) string {
	switch {
	case r >= 0x2000 && r <= 0x200A:
		return [...]string{"EN QUAD", "EM QUAD", "EN SPACE", "EM SPACE", "THREE-PER-EM SPACE",
			"FOUR-PER-EM SPACE", "SIX-PER-EM SPACE", "FIGURE SPACE", "PUNCTUATION SPACE",
			"THIN SPACE", "HAIR SPACE"}[r-0x2000]
	case r >= 0xFE00 && r <= 0xFE0F:
		return fmt.Sprintf("VARIATION SELECTOR-%d", r-0xFE00+1)
	case r >= 0xE0100 && r <= 0xE01EF:
		return fmt.Sprintf("VARIATION SELECTOR-%d", r-0xE0100+17)
	}
	switch r {
	case 0x00A0:
		return "NO-BREAK SPACE"
	case 0x00AD:
		return "SOFT HYPHEN"
	case 0x00B7:
		return "MIDDLE DOT"
	case 0x0300:
		return "COMBINING GRAVE ACCENT"
	case 0x0301:
		return "COMBINING ACUTE ACCENT"
	case 0x0308:
		return "COMBINING DIAERESIS"
	case 0x0337:
		return "COMBINING SHORT SOLIDUS OVERLAY"
	case 0x0338:
		return "COMBINING LONG SOLIDUS OVERLAY"
	case 0x034F:
		return "COMBINING GRAPHEME JOINER"
	case 0x0387:
		return "GREEK ANO TELEIA"
	case 0x061C:
		return "ARABIC LETTER MARK"
	case 0x0660:
		return "ARABIC-INDIC DIGIT ZERO"
	case 0x06D4:
		return "ARABIC FULL STOP"
	case 0x06F0:
		return "EXTENDED ARABIC-INDIC DIGIT ZERO"
	case 0x0701:
		return "SYRIAC SUPRALINEAR FULL STOP"
	case 0x0702:
		return "SYRIAC SUBLINEAR FULL STOP"
	case 0x115F:
		return "HANGUL CHOSEONG FILLER"
	case 0x1160:
		return "HANGUL JUNGSEONG FILLER"
	case 0x1680:
		return "OGHAM SPACE MARK"
	case 0x1735:
		return "PHILIPPINE SINGLE PUNCTUATION"
	case 0x180E:
		return "MONGOLIAN VOWEL SEPARATOR"
	case 0x200B:
		return "ZERO WIDTH SPACE"
	case 0x200C:
		return "ZERO WIDTH NON-JOINER"
	case 0x200D:
		return "ZERO WIDTH JOINER"
	case 0x200E:
		return "LEFT-TO-RIGHT MARK"
	case 0x200F:
		return "RIGHT-TO-LEFT MARK"
	case 0x2024:
		return "ONE DOT LEADER"
	case 0x2025:
		return "TWO DOT LEADER"
	case 0x2026:
		return "HORIZONTAL ELLIPSIS"
	case 0x2027:
		return "HYPHENATION POINT"
	case 0x2028:
		return "LINE SEPARATOR"
	case 0x2029:
		return "PARAGRAPH SEPARATOR"
	case 0x202A:
		return "LEFT-TO-RIGHT EMBEDDING"
	case 0x202B:
		return "RIGHT-TO-LEFT EMBEDDING"
	case 0x202C:
		return "POP DIRECTIONAL FORMATTING"
	case 0x202D:
		return "LEFT-TO-RIGHT OVERRIDE"
	case 0x202E:
		return "RIGHT-TO-LEFT OVERRIDE"
	case 0x202F:
		return "NARROW NO-BREAK SPACE"
	case 0x2041:
		return "CARET INSERTION POINT"
	case 0x2044:
		return "FRACTION SLASH"
	case 0x205F:
		return "MEDIUM MATHEMATICAL SPACE"
	case 0x2060:
		return "WORD JOINER"
	case 0x2061:
		return "FUNCTION APPLICATION"
	case 0x2062:
		return "INVISIBLE TIMES"
	case 0x2063:
		return "INVISIBLE SEPARATOR"
	case 0x2064:
		return "INVISIBLE PLUS"
	case 0x2066:
		return "LEFT-TO-RIGHT ISOLATE"
	case 0x2067:
		return "RIGHT-TO-LEFT ISOLATE"
	case 0x2068:
		return "FIRST STRONG ISOLATE"
	case 0x2069:
		return "POP DIRECTIONAL ISOLATE"
	case 0x2215:
		return "DIVISION SLASH"
	case 0x2571:
		return "BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT"
	case 0x27CB:
		return "MATHEMATICAL RISING DIAGONAL"
	case 0x2800:
		return "BRAILLE PATTERN BLANK"
	case 0x29F8:
		return "BIG SOLIDUS"
	case 0x2AFB:
		return "TRIPLE SOLIDUS BINARY RELATION"
	case 0x2AFD:
		return "DOUBLE SOLIDUS OPERATOR"
	case 0x2F03:
		return "KANGXI RADICAL SLASH"
	case 0x3000:
		return "IDEOGRAPHIC SPACE"
	case 0x3033:
		return "VERTICAL KANA REPEAT MARK UPPER HALF"
	case 0x30FB:
		return "KATAKANA MIDDLE DOT"
	case 0x3164:
		return "HANGUL FILLER"
	case 0x31D3:
		return "CJK STROKE SP"
	case 0xA4F8:
		return "LISU LETTER TONE MYA TI"
	case 0xA60E:
		return "VAI FULL STOP"
	case 0xFE52:
		return "SMALL FULL STOP"
	case 0xFEFF:
		return "ZERO WIDTH NO-BREAK SPACE"
	case 0xFF0E:
		return "FULLWIDTH FULL STOP"
	case 0xFF0F:
		return "FULLWIDTH SOLIDUS"
	case 0xFF65:
		return "HALFWIDTH KATAKANA MIDDLE DOT"
	case 0xFFA0:
		return "HALFWIDTH HANGUL FILLER"
	case 0x10A50:
		return "KHAROSHTHI PUNCTUATION DOT"
	case 0x1D16D:
		return "MUSICAL SYMBOL COMBINING AUGMENTATION DOT"
	case 0x1D23A:
		return "GREEK INSTRUMENTAL NOTATION SYMBOL-47"
	}
	return ""
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
