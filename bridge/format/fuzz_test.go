package format

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzIRCSeeds = []string{
	"", "plain", "\x02b\x1di\x1fu\x1es\x11m\x16r\x0fx",
	"\x0304,12red\x03", "\x03", "\x0399", "\x031,,", "\x03,5", "\x03123", "\x04FF8800,000000x", "\x04FFF",
	"<script>alert(1)</script>", "\x02\"><img src=x onerror=alert(1)>", "&amp;",
	"bob: hi", "[foo], a|b x", "https://e.org/bob bob@e.org", "bob\x02by", "\x11bob",
	"a\nb", "\xff\xfe", "😀漢", "a\x00b",
}

// FuzzToMatrix: never panics; body carries no mIRC code; formatted is ""
// or balanced HTML using only the allowed elements and attributes, whose text
// content is exactly body (mentions use displayname == nick).
func FuzzToMatrix(f *testing.F) {
	for _, s := range fuzzIRCSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		body, formatted := ToMatrix(in, identityMention)
		if StripCodes(body) != body {
			t.Fatalf("body %q has mIRC codes", body)
		}
		if !utf8.ValidString(body) || !utf8.ValidString(formatted) {
			t.Fatalf("invalid UTF-8 out: %q %q", body, formatted)
		}
		if strings.Contains(body, "\x00") {
			t.Fatalf("NUL in body %q", body)
		}
		if formatted == "" {
			return
		}
		text, err := checkMatrixHTML(formatted)
		if err != nil {
			t.Fatalf("ToMatrix(%q) formatted %q: %v", in, formatted, err)
		}
		if text != body {
			t.Fatalf("ToMatrix(%q): text of formatted %q != body %q", in, text, body)
		}
	})
}

// FuzzToIRC: never panics; no CR, NUL or foreign control byte in the output.
func FuzzToIRC(f *testing.F) {
	seeds := []string{
		"", "<b>x</b>", "<mx-reply><blockquote>q</blockquote></mx-reply>r",
		`<a href="https://matrix.to/#/@bob:example.org">Bob</a>`, `<a href="matrix:u/bob:example.org">B</a>`,
		"<ul><li>a<ol start=\"-3\"><li>b</li></ol></li></ul>", "<pre><code>a\r\n\tb\x00</code></pre>",
		`<font color="#ff0000" data-mx-bg-color="#00f">x</font>5`, `<span data-mx-spoiler>s</span>`,
		"<blockquote><blockquote>x<br>y</blockquote></blockquote>", "<table><tr><td>a</td><td>b</td></tr></table>",
		"a\rb\x01c", "<<>>&&;</b>", "<p>\r</p>",
	}
	for _, s := range seeds {
		f.Add("body\r\n\x00", s)
	}
	f.Add("a\rb\x00\x01c", "")
	f.Fuzz(func(t *testing.T, body, formatted string) {
		out := ToIRC(body, formatted, testPill)
		checkIRCText(t, out)
		for _, line := range Split(out, 400) {
			if strings.ContainsAny(line, "\r\n\x00") {
				t.Fatalf("split line %q", line)
			}
		}
	})
}

// FuzzSplit checks Split's invariants for any text and size.
func FuzzSplit(f *testing.F) {
	seeds := []string{
		"", "a", "a b c", "a\r\nb\rc\n\nd", "\x00", strings.Repeat("x", 100), strings.Repeat("😀", 30),
		strings.Repeat("漢 ", 20), strings.Repeat("\xff", 30), strings.Repeat("a", 14) + "\x0304,12red",
		strings.Repeat("\x04ff0000,00ff00", 5), "\x03\x03\x03,1,2,3",
	}
	for _, s := range seeds {
		for _, n := range []int{-1, 0, 16, 17, 20, 400} {
			f.Add(s, n)
		}
	}
	f.Fuzz(func(t *testing.T, in string, maxBytes int) {
		if maxBytes > 1<<16 {
			maxBytes = 1 << 16
		}
		checkSplit(t, in, maxBytes, Split(in, maxBytes))
	})
}
