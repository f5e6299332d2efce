package policy

import (
	"crypto/hmac"
	"crypto/sha3"
	"errors"
	"hash"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/runenames"
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
		{"/ a /  b ", "/ a /  b "},
		{"/...", "/..."},
		{"/.hidden/..x", "/.hidden/..x"},
		{"/héllo/世界", "/héllo/世界"},
		{"/" + strings.Repeat("a", MaxComponentLen), "/" + strings.Repeat("a", MaxComponentLen)},
		{strings.Repeat("/a", MaxPathDepth), strings.Repeat("/a", MaxPathDepth)},
		{strings.Repeat("/a", MaxPathDepth) + "/./", strings.Repeat("/a", MaxPathDepth)},

		// NFC (§3.2.1 step 7): decomposed and singleton spellings compose,
		// NFC input is unchanged.
		{"/caf\u00e9", "/caf\u00e9"},
		{"/cafe\u0301", "/caf\u00e9"},
		{"/cafe\u0301/", "/caf\u00e9"},
		{"/\u212b", "/\u00c5"},                             // ANGSTROM SIGN
		{"/A\u030a", "/\u00c5"},                            // A + COMBINING RING ABOVE
		{"/\u1100\u1161\u11a8", "/\uac01"},                 // conjoining jamo → 각
		{"/q\u0307\u0323", "/q\u0323\u0307"},               // marks reordered by class
		{"/x\u0387", "/x\u00b7"},                           // GREEK ANO TELEIA → MIDDLE DOT
		{"/\U0001D160", "/\U0001D158\U0001D165\U0001D16E"}, // excluded from composition
		// The component limit applies to the normal form: 300 bytes of
		// NFD that compose to 200.
		{"/" + strings.Repeat("e\u0301", 100), "/" + strings.Repeat("\u00e9", 100)},
		{"/a" + strings.Repeat("\u0301", maxNonStarters), "/\u00e1" + strings.Repeat("\u0301", maxNonStarters-1)},

		// Look-alikes of "." are ordinary inside a name, and so are letters
		// that resemble "/" in some fonts.
		{"/a\u2026b", "/a\u2026b"},
		{"/a/\u2026x", "/a/\u2026x"},
		{"/\u0660\u066b\u0665", "/\u0660\u066b\u0665"},
		{"/.\uff0ex", "/.\uff0ex"},
		{"/\u30ce\u30fc\u30c8", "/\u30ce\u30fc\u30c8"},
		{"/\u4e3f", "/\u4e3f"},
		{"/a\u0301/b", "/\u00e1/b"},
		{"/\u05e9\u05c1\u05bc", "/\u05e9\u05bc\u05c1"}, // reordered; U+FB2C is excluded from composition
	} {
		p, err := NormalizePath(tc.in)
		if err != nil {
			t.Errorf("NormalizePath(%+q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("NormalizePath(%+q) = %+q, want %+q", tc.in, p, tc.want)
		}
	}
}

func TestNormalizePathRefusals(t *testing.T) {
	long := strings.Repeat("/"+strings.Repeat("\U0001D160", 21), MaxPathDepth) // 2720 bytes, NFC 8096
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty path"},
		{"relative", "home", "is relative"},
		{"relative dot", "./home", "is relative"},
		{"relative dotdot", "../home", "is relative"},
		{"dotdot", "/home/../etc", `".."`},
		{"trailing dotdot", "/home/..", `".."`},
		{"root dotdot", "/..", `".."`},
		{"NFD dotdot", "/a/../\u0065\u0301", `".."`},
		{"NUL", "/home\x00/x", "U+0000 (control character, Cc) at byte 5"},
		{"newline", "/home\n", "U+000A (control character, Cc) at byte 5"},
		{"tab", "/a\tb", "U+0009 (control character, Cc) at byte 2"},
		{"DEL", "/a\x7fb", "U+007F (control character, Cc) at byte 2"},
		{"C1 control", "/a\u0085b", "U+0085 (control character, Cc) at byte 2"},
		{"invalid UTF-8", "/a\xffb", "not valid UTF-8"},
		{"truncated UTF-8", "/a\xe4\xb8", "not valid UTF-8"},
		{"surrogate", "/a\xed\xa0\x80", "not valid UTF-8"},
		{"overlong slash", "/a\xc0\xafb", "not valid UTF-8"},
		{"component too long", "/" + strings.Repeat("a", MaxComponentLen+1), "component of 256 bytes"},
		{"too deep", strings.Repeat("/a", MaxPathDepth+1), "more than 32 components"},
		{"input too long", "/" + strings.Repeat("/", MaxPathLen), "path is 4097 bytes"},
		{"path too long", strings.Repeat("/"+strings.Repeat("a", 200), 21), "path is 4221 bytes"},
		{"NFD input too long", "/" + strings.Repeat("e\u0301", 1366), "path is 4099 bytes"},

		// Limits of the normal form, which NFC can make longer.
		{"NFC component too long", "/" + strings.Repeat("\U0001D160", 22), "component of 264 bytes, the limit is 255"},
		{"NFC path too long", long, "normal form is 8096 bytes, the limit is 4096"},
		{"not stream-safe", "/a" + strings.Repeat("\u0301", maxNonStarters+1), "more than 30 combining marks in a row at byte 62"},
		{"not stream-safe NFD", "/\u00e1" + strings.Repeat("\u0301", maxNonStarters), "more than 30 combining marks in a row at byte 61"},

		// Format characters (Cf), bidi controls first.
		{"ZWSP", "/a\u200bb", "U+200B ZERO WIDTH SPACE (format character, Cf) at byte 2"},
		{"ZWNJ", "/a\u200cb", "U+200C ZERO WIDTH NON-JOINER (format character, Cf) at byte 2"},
		{"ZWJ", "/a\u200db", "U+200D ZERO WIDTH JOINER (format character, Cf) at byte 2"},
		{"word joiner", "/a\u2060b", "U+2060 WORD JOINER (format character, Cf) at byte 2"},
		{"invisible times", "/a\u2062b", "U+2062 INVISIBLE TIMES (format character, Cf) at byte 2"},
		{"soft hyphen", "/pass\u00adword", "U+00AD SOFT HYPHEN (format character, Cf) at byte 5"},
		{"BOM first", "/\ufeffhome", "U+FEFF ZERO WIDTH NO-BREAK SPACE (format character, Cf) at byte 1"},
		{"BOM before slash", "\ufeff/home", "U+FEFF ZERO WIDTH NO-BREAK SPACE (format character, Cf) at byte 0"},
		{"Mongolian vowel separator", "/a\u180eb", "U+180E MONGOLIAN VOWEL SEPARATOR (format character, Cf) at byte 2"},
		{"Arabic number sign", "/\u0600", "U+0600 (format character, Cf) at byte 1"},
		{"tag", "/a\U000E0041", "U+E0041 (format character, Cf) at byte 2"},
		{"LRM", "/a\u200eb", "U+200E LEFT-TO-RIGHT MARK (bidirectional control, Cf) at byte 2"},
		{"RLM", "/a\u200fb", "U+200F RIGHT-TO-LEFT MARK (bidirectional control, Cf) at byte 2"},
		{"ALM", "/a\u061cb", "U+061C ARABIC LETTER MARK (bidirectional control, Cf) at byte 2"},
		{"LRE", "/a\u202ab", "U+202A LEFT-TO-RIGHT EMBEDDING (bidirectional control, Cf) at byte 2"},
		{"RLE", "/a\u202bb", "U+202B RIGHT-TO-LEFT EMBEDDING (bidirectional control, Cf) at byte 2"},
		{"PDF", "/a\u202cb", "U+202C POP DIRECTIONAL FORMATTING (bidirectional control, Cf) at byte 2"},
		{"LRO", "/a\u202db", "U+202D LEFT-TO-RIGHT OVERRIDE (bidirectional control, Cf) at byte 2"},
		{"RLO", "/invoice\u202efdp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE (bidirectional control, Cf) at byte 8"},
		{"LRI", "/a\u2066b", "U+2066 LEFT-TO-RIGHT ISOLATE (bidirectional control, Cf) at byte 2"},
		{"RLI", "/a\u2067b", "U+2067 RIGHT-TO-LEFT ISOLATE (bidirectional control, Cf) at byte 2"},
		{"FSI", "/a\u2068b", "U+2068 FIRST STRONG ISOLATE (bidirectional control, Cf) at byte 2"},
		{"PDI", "/a\u2069b", "U+2069 POP DIRECTIONAL ISOLATE (bidirectional control, Cf) at byte 2"},

		// Separators and white space other than U+0020.
		{"line separator", "/a\u2028b", "U+2028 LINE SEPARATOR (line separator, Zl) at byte 2"},
		{"paragraph separator", "/a\u2029b", "U+2029 PARAGRAPH SEPARATOR (paragraph separator, Zp) at byte 2"},
		{"NBSP", "/a\u00a0b", "U+00A0 NO-BREAK SPACE (space other than U+0020, Zs) at byte 2"},
		{"ogham space", "/a\u1680b", "U+1680 OGHAM SPACE MARK (space other than U+0020, Zs) at byte 2"},
		{"en quad", "/a\u2000b", "U+2000 EN QUAD (space other than U+0020, Zs) at byte 2"},
		{"hair space", "/a\u200ab", "U+200A HAIR SPACE (space other than U+0020, Zs) at byte 2"},
		{"narrow NBSP", "/a\u202fb", "U+202F NARROW NO-BREAK SPACE (space other than U+0020, Zs) at byte 2"},
		{"math space", "/a\u205fb", "U+205F MEDIUM MATHEMATICAL SPACE (space other than U+0020, Zs) at byte 2"},
		{"ideographic space", "/a\u3000b", "U+3000 IDEOGRAPHIC SPACE (space other than U+0020, Zs) at byte 2"},
		{"braille blank", "/\u2800", "U+2800 BRAILLE PATTERN BLANK (blank character) at byte 1"},

		// Other invisible characters.
		{"variation selector", "/a\ufe0f", "U+FE0F VARIATION SELECTOR-16 (variation selector) at byte 2"},
		{"variation selector supplement", "/\u845b\U000E0100", "U+E0100 VARIATION SELECTOR-17 (variation selector) at byte 4"},
		{"Mongolian FVS", "/\u1820\u180b", "U+180B (variation selector) at byte 4"},
		{"CGJ", "/a\u034fb", "U+034F COMBINING GRAPHEME JOINER (default-ignorable character) at byte 2"},
		{"Hangul filler", "/\u3164", "U+3164 HANGUL FILLER (default-ignorable character) at byte 1"},
		{"halfwidth Hangul filler", "/\uffa0", "U+FFA0 HALFWIDTH HANGUL FILLER (default-ignorable character) at byte 1"},
		{"choseong filler", "/\u115f", "U+115F HANGUL CHOSEONG FILLER (default-ignorable character) at byte 1"},

		// Code points without a stable meaning.
		{"private use BMP", "/\ue000", "U+E000 (private-use character, Co) at byte 1"},
		{"private use plane 15", "/x\U000F0000", "U+F0000 (private-use character, Co) at byte 2"},
		{"private use plane 16", "/x\U0010FFFD", "U+10FFFD (private-use character, Co) at byte 2"},
		{"noncharacter FDD0", "/\ufdd0", "U+FDD0 (noncharacter) at byte 1"},
		{"noncharacter FFFE", "/\ufffe", "U+FFFE (noncharacter) at byte 1"},
		{"noncharacter 1FFFF", "/\U0001FFFF", "U+1FFFF (noncharacter) at byte 1"},
		{"noncharacter 10FFFF", "/\U0010FFFF", "U+10FFFF (noncharacter) at byte 1"},
		{"unassigned BMP", "/\u0378", "U+0378 (unassigned in Unicode " + unicode.Version + ") at byte 1"},
		{"unassigned plane 5", "/\U00050000", "U+50000 (unassigned in Unicode " + unicode.Version + ") at byte 1"},
		{"unassigned tag range", "/\U000E0080", "U+E0080 (unassigned in Unicode " + unicode.Version + ") at byte 1"},

		// Look-alikes of "/", anywhere.
		{"division slash", "/home\u2215etc", "U+2215 DIVISION SLASH (look-alike of \"/\") at byte 5"},
		{"fraction slash", "/a\u2044b", "U+2044 FRACTION SLASH (look-alike of \"/\") at byte 2"},
		{"fullwidth solidus", "/a\uff0fb", "U+FF0F FULLWIDTH SOLIDUS (look-alike of \"/\") at byte 2"},
		{"big solidus", "/a\u29f8b", "U+29F8 BIG SOLIDUS (look-alike of \"/\") at byte 2"},
		{"Philippine punctuation", "/a\u1735b", "U+1735 PHILIPPINE SINGLE PUNCTUATION (look-alike of \"/\") at byte 2"},
		{"caret insertion point", "/a\u2041b", "U+2041 CARET INSERTION POINT (look-alike of \"/\") at byte 2"},
		{"box drawing diagonal", "/a\u2571b", "U+2571 BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT (look-alike of \"/\") at byte 2"},
		{"rising diagonal", "/a\u27cbb", "U+27CB MATHEMATICAL RISING DIAGONAL (look-alike of \"/\") at byte 2"},
		{"triple solidus", "/a\u2afbb", "U+2AFB TRIPLE SOLIDUS BINARY RELATION (look-alike of \"/\") at byte 2"},
		{"double solidus", "/a\u2afdb", "U+2AFD DOUBLE SOLIDUS OPERATOR (look-alike of \"/\") at byte 2"},
		{"Kangxi slash", "/a\u2f03b", "U+2F03 KANGXI RADICAL SLASH (look-alike of \"/\") at byte 2"},
		{"kana repeat upper half", "/a\u3033b", "U+3033 VERTICAL KANA REPEAT MARK UPPER HALF (look-alike of \"/\") at byte 2"},
		{"CJK stroke", "/a\u31d3b", "U+31D3 CJK STROKE SP (look-alike of \"/\") at byte 2"},
		{"Greek notation 47", "/a\U0001D23Ab", "U+1D23A GREEK INSTRUMENTAL NOTATION SYMBOL-47 (look-alike of \"/\") at byte 2"},

		// Look-alikes of ".": the leaders anywhere, the others in a component
		// of dots only.
		{"one dot leader", "/\u2024", "U+2024 ONE DOT LEADER (look-alike of \".\") at byte 1"},
		{"one dot leader pair", "/a/\u2024\u2024/b", "U+2024 ONE DOT LEADER (look-alike of \".\") at byte 3"},
		{"one dot leader in name", "/a\u2024txt", "U+2024 ONE DOT LEADER (look-alike of \".\") at byte 2"},
		{"two dot leader", "/a/\u2025", "U+2025 TWO DOT LEADER (look-alike of \"..\") at byte 3"},
		{"dot and leader", "/.\u2024", "U+2024 ONE DOT LEADER (look-alike of \".\") at byte 2"},
		{"ellipsis component", "/\u2026", "U+2026 HORIZONTAL ELLIPSIS (look-alike of \".\" in a component of dots only) at byte 1"},
		{"fullwidth dot", "/a/\uff0e/b", "U+FF0E FULLWIDTH FULL STOP (look-alike of \".\" in a component of dots only) at byte 3"},
		{"fullwidth dots", "/a/\uff0e\uff0e", "U+FF0E FULLWIDTH FULL STOP (look-alike of \".\" in a component of dots only) at byte 3"},
		{"dot fullwidth dot", "/a/.\uff0e", "U+FF0E FULLWIDTH FULL STOP (look-alike of \".\" in a component of dots only) at byte 4"},
		{"small full stop", "/\ufe52\ufe52", "U+FE52 SMALL FULL STOP (look-alike of \".\" in a component of dots only) at byte 1"},
		{"Arabic zeros", "/x/\u0660\u0660/y", "U+0660 ARABIC-INDIC DIGIT ZERO (look-alike of \".\" in a component of dots only) at byte 3"},
		{"extended Arabic zero", "/\u06f0", "U+06F0 EXTENDED ARABIC-INDIC DIGIT ZERO (look-alike of \".\" in a component of dots only) at byte 1"},
		{"middle dots", "/\u00b7\u00b7", "U+00B7 MIDDLE DOT (look-alike of \".\" in a component of dots only) at byte 1"},
		{"ano teleia", "/.\u0387", "U+0387 GREEK ANO TELEIA (look-alike of \".\" in a component of dots only) at byte 2"},
		{"Syriac dot", "/\u0701", "U+0701 SYRIAC SUPRALINEAR FULL STOP (look-alike of \".\" in a component of dots only) at byte 1"},
		{"Kharoshthi dot", "/\U00010A50.", "U+10A50 KHAROSHTHI PUNCTUATION DOT (look-alike of \".\" in a component of dots only) at byte 1"},
		{"augmentation dot", "/.\U0001D16D", "U+1D16D MUSICAL SYMBOL COMBINING AUGMENTATION DOT (look-alike of \".\" in a component of dots only) at byte 2"},

		// A combining mark at the start of a component draws on the "/".
		{"mark first", "/\u0301a", "U+0301 COMBINING ACUTE ACCENT (combining mark at the start of a component) at byte 1"},
		{"solidus overlay", "/a/\u0338b", "U+0338 COMBINING LONG SOLIDUS OVERLAY (combining mark at the start of a component) at byte 3"},
		{"mark after empty component", "/a//\u0308", "U+0308 COMBINING DIAERESIS (combining mark at the start of a component) at byte 4"},
		{"mark after dot component", "/./\u0300", "U+0300 COMBINING GRAVE ACCENT (combining mark at the start of a component) at byte 3"},
		{"spacing mark first", "/\u093e", "U+093E (combining mark at the start of a component) at byte 1"},
		{"mark before slash", "\u0301/a", "U+0301 COMBINING ACUTE ACCENT (combining mark at the start of a component) at byte 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NormalizePath(tc.in)
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("NormalizePath(%+q) error = %v, want ErrInvalidPath", tc.in, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "policy: invalid path: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("NormalizePath(%+q) error = %q, want it to contain %q", tc.in, msg, tc.want)
			}
			// The message names a refused character and never contains it,
			// so that it cannot reorder or hide the text around it.
			for _, r := range msg {
				if refusedClass(r) != "" {
					t.Errorf("error %+q contains %U", msg, r)
				}
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
	for _, s := range []string{
		"/", "", "home", "/home/./x", "//a//b/", "/..", "/a\x00", "/héllo", "/a/b/c/d/e",
		"/caf\u00e9", "/cafe\u0301", "/\u212b", "/\u1100\u1161\u11a8", "/q\u0307\u0323", "/\U0001D160",
		"/a\u200bb", "/pass\u00adword", "/invoice\u202efdp.exe", "/\ufeffhome", "/a\u2028b", "/a\u2029b",
		"/home\u2215etc", "/a\u2044b", "/a\uff0fb", "/a\u29f8b", "/a\u1735b", "/a\u00a0b", "/a\u3000b",
		"/\u2024", "/\u2024\u2024", "/a/\u2025", "/\u2026", "/\uff0e\uff0e", "/\u0660\u0660", "/.\u0387",
		"/\u0301a", "/a/\u0338b", "/a\ufe0f", "/\u3164", "/\ue000", "/\ufdd0", "/\u0378", "/\u2800",
		"/a" + strings.Repeat("\u0301", maxNonStarters+1), "/" + strings.Repeat("\U0001D160", 22),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := NormalizePath(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
		} else {
			checkNormalForm(t, p)
		}
		// Canonically equivalent input within the input limit gives the
		// same answer (SPEC.md §3.2.1 step 7).
		if !utf8.ValidString(s) || len(s) > MaxPathLen {
			return
		}
		for _, form := range []norm.Form{norm.NFC, norm.NFD} {
			e := form.String(s)
			if len(e) > MaxPathLen {
				continue
			}
			q, err2 := NormalizePath(e)
			if (err == nil) != (err2 == nil) || q != p {
				t.Fatalf("%+q gives %+q, %v but its %v form %+q gives %+q, %v", s, p, err, form, e, q, err2)
			}
		}
	})
}

// checkNormalForm checks the invariants of an accepted Path: its string
// normalizes to itself, is NFC, holds no refused character, and has the
// shape and limits of SPEC.md §3.2.1.
func checkNormalForm(t *testing.T, p Path) {
	t.Helper()
	n := p.String()
	q, err := NormalizePath(n)
	if err != nil || q != p {
		t.Fatalf("normal form %+q does not normalize to itself: %v", n, err)
	}
	if !norm.NFC.IsNormalString(n) {
		t.Fatalf("normal form %+q is not NFC", n)
	}
	if !utf8.ValidString(n) || len(n) > MaxPathLen || n[0] != '/' || (len(n) > 1 && strings.HasSuffix(n, "/")) || strings.Contains(n, "//") {
		t.Fatalf("bad normal form %+q", n)
	}
	for i, r := range n {
		if c := refusedClass(r); c != "" {
			t.Fatalf("normal form %+q holds %U (%s) at byte %d", n, r, c, i)
		}
	}
	pre := p.Prefixes()
	if len(pre) != p.Depth()+1 || pre[len(pre)-1] != p || !pre[0].IsRoot() || p.Depth() > MaxPathDepth {
		t.Fatalf("%+q: bad prefixes %v", n, pre)
	}
	for i, c := range p.Components() {
		if c == "" || c == "." || c == ".." || len(c) > MaxComponentLen {
			t.Fatalf("%+q: bad component %+q", n, c)
		}
		if first, _ := utf8.DecodeRuneInString(c); unicode.Is(unicode.M, first) {
			t.Fatalf("%+q: component %+q starts with a mark", n, c)
		}
		if pre[i+1].Depth() != i+1 || !p.HasPrefix(pre[i+1]) {
			t.Fatalf("%+q: prefix %d = %+q", n, i+1, pre[i+1])
		}
	}
}

// TestNormalizePathCanonicalEquivalence checks SPEC.md §3.2.1 step 7:
// canonically equivalent spellings are one Path and one path hash, whose
// message is the NFC bytes.
func TestNormalizePathCanonicalEquivalence(t *testing.T) {
	owner, _ := testIdentity(t, 1)
	recipient, _ := testIdentity(t, 2)
	pair, err := OwnerPairKey(owner, IdentityOf(recipient).IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ nfc, other string }{
		{"/caf\u00e9", "/cafe\u0301"},
		{"/caf\u00e9/men\u00fc", "/cafe\u0301/menu\u0308"},
		{"/\u00c5ngstr\u00f6m", "/\u212bngstro\u0308m"},
		{"/\u00c5ngstr\u00f6m", "/A\u030angstro\u0308m"},
		{"/\ud55c\uad6d\uc5b4", "/\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165"},
		{"/\u1ec7/x", "/e\u0323\u0302/x"},
		{"/\u1ec7/x", "/e\u0302\u0323//x/"},
	} {
		p, q := MustNormalizePath(tc.nfc), MustNormalizePath(tc.other)
		if p.String() != tc.nfc || p != q {
			t.Errorf("%+q and %+q give %+q and %+q, want both %+q", tc.nfc, tc.other, p, q, tc.nfc)
		}
		if !slices.Equal(pair.PathHashes(p, nil), pair.PathHashes(q, nil)) {
			t.Errorf("%+q and %+q have different path hashes", tc.nfc, tc.other)
		}
	}

	// The path hash of NFD "/cafe\u0301" is the HMAC of the NFC bytes
	// 2f 63 61 66 c3 a9 (then the epoch), computed here without Path.
	m := hmac.New(func() hash.Hash { return sha3.New256() }, pair.pathKey[:])
	m.Write([]byte{0x2f, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0, 0, 0, 0, 0})
	if got := pair.PathHash(MustNormalizePath("/cafe\u0301"), 0); !hmac.Equal(got[:], m.Sum(nil)) {
		t.Errorf("path hash of NFD input is not the HMAC of its NFC bytes")
	}
	if pair.PathHash(MustNormalizePath("/cafe"), 0) == pair.PathHash(MustNormalizePath("/caf\u00e9"), 0) {
		t.Error("/cafe and /café have one path hash")
	}
}

// TestUnicodeVersions checks that the character classes (package unicode)
// and the NFC tables (x/text, which picks its tables by Go release) are of
// one Unicode version: a code point assigned in unicode.Version but unknown
// to the NFC tables would pass through unnormalized (SPEC.md §3.2.1).
func TestUnicodeVersions(t *testing.T) {
	if unicode.Version != norm.Version {
		t.Fatalf("unicode.Version %s, norm.Version %s", unicode.Version, norm.Version)
	}
	if unicode.Version != "15.0.0" {
		return
	}
	// Unicode 15.0: 149,186 characters (graphic and format), 65 controls,
	// 137,468 private-use code points and 2,048 surrogates.
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if isAssigned(r) {
			n++
		}
	}
	if want := 149186 + 65 + 137468 + 2048; n != want {
		t.Errorf("%d assigned code points, want %d", n, want)
	}
}

// TestRefusalsStableUnderNFC checks, for every code point, the facts that
// let NormalizePath check characters before NFC and split after it
// (SPEC.md §3.2.1): NFC and NFD never turn an allowed character into a
// refused one or back, never produce "/" or "." from anything else, keep a
// combining mark first exactly when the character is one, and map look-alikes
// of "." to look-alikes of "." only. It also runs NormalizePath on each code
// point in a few positions: none may panic, and an error must wrap
// ErrInvalidPath.
func TestRefusalsStableUnderNFC(t *testing.T) {
	if testing.Short() {
		t.Skip("walks every code point")
	}
	isMark := func(r rune) bool { return unicode.Is(unicode.M, r) }
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		c := string(r)
		allowed := refusedClass(r) == ""
		for _, f := range []norm.Form{norm.NFC, norm.NFD} {
			d := f.String(c)
			if d == c {
				continue
			}
			first, _ := utf8.DecodeRuneInString(d)
			if isMark(first) != isMark(r) {
				t.Errorf("%U: %v form starts with %U, mark %v", r, f, first, isMark(first))
			}
			for _, x := range d {
				if (refusedClass(x) == "") != allowed {
					t.Errorf("%U (allowed %v): %v form holds %U (%q)", r, allowed, f, x, refusedClass(x))
				}
				if x == '/' || x == '.' {
					t.Errorf("%U: %v form holds %q", r, f, x)
				}
				if isDotLookAlike(x) != isDotLookAlike(r) {
					t.Errorf("%U: %v form holds %U, dot look-alike %v", r, f, x, isDotLookAlike(x))
				}
			}
		}
		if p := norm.NFD.PropertiesString(c); p.LeadCCC() != 0 && !isMark(r) {
			t.Errorf("%U: decomposition starts with a non-starter but it is not a mark", r)
		}
		for _, s := range []string{"/" + c + "/b", "/a" + c, "/." + c + c} {
			p, err := NormalizePath(s)
			if err != nil {
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("NormalizePath(%+q): %v", s, err)
				}
				continue
			}
			if q, err := NormalizePath(p.String()); err != nil || q != p {
				t.Fatalf("%+q: normal form %+q does not normalize to itself: %v", s, p, err)
			}
		}
	}
	for b := range 256 {
		s := "/a" + string([]byte{byte(b)})
		if _, err := NormalizePath(s); err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("NormalizePath(%+q): %v", s, err)
		}
	}
}

// TestRuneNames checks the names errors give against the Unicode
// Character Database, and that every look-alike has one.
func TestRuneNames(t *testing.T) {
	if runenames.Name('a') == "" {
		t.Skip("no rune names")
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		name := runeName(r)
		if name != "" && name != runenames.Name(r) {
			t.Errorf("%U: name %q, want %q", r, name, runenames.Name(r))
		}
		if name == "" && (isSlashLookAlike(r) || isDotLookAlike(r) || unicode.Is(unicode.Bidi_Control, r)) {
			t.Errorf("%U (%s) has no name", r, runenames.Name(r))
		}
	}
}
