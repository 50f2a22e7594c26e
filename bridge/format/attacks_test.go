package format

// Known attack classes in the formatting layer (docs/security.md, "Attack map", lists them all):
//
//   HTML from IRC always escaped before it reaches formatted_body
//       -> TestAttackHTMLFromIRCEscapedInToMatrix (and TestToMatrix, FuzzToMatrix)
//   CR in a quoted reply sent raw IRC commands
//       -> TestAttackCRInReplyQuoteToIRC (and TestToIRC, FuzzToIRC, FuzzSplit, FuzzOneLine)

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Text from IRC, including mentions whose Matrix display name is itself hostile HTML, comes out as
// HTML made only of the elements and attributes ToMatrix emits; everything else is escaped text.
func TestAttackHTMLFromIRCEscapedInToMatrix(t *testing.T) {
	for _, in := range []string{
		"<script>alert(1)</script>",
		"\x02<img src=x onerror=alert(1)>",
		"\x0304,12<b onclick=\"x\">red</b>\x03",
		"evil: \x02hi",                               // display name `<b onclick="x">'&amp;`
		"bob: <a href=\"javascript:alert(1)\">x\x1d", // a real pill next to a fake link
		"\x1d</em><script>x</script><em>\x1d",
		"\x11<pre>&lt;</pre>\x11 &amp; &#60;b&#62; <!-- c --> <![CDATA[x]]>",
		"\x02\"'><svg/onload=alert(1)>\x0f<mx-reply>q</mx-reply>",
		"\x1fhttps://e.org/?a=<b>&c=\"d\"",
	} {
		body, formatted := ToMatrix(in, testMention)
		if formatted == "" {
			if strings.ContainsAny(in, "\x02\x03\x1d\x1f\x11") || strings.Contains(in, ":") {
				t.Errorf("%q: expected a formatted body (the input has codes or a mention)", in)
			}
			continue
		}
		if _, err := checkMatrixHTML(formatted); err != nil {
			t.Errorf("ToMatrix(%q) formatted %q: %v", in, formatted, err)
		}
		for _, bad := range []string{"<script", "<img", "<svg", "<b ", "<pre", "<mx-reply", "<!--", "<![CDATA", "<a href=\"javascript"} {
			if strings.Contains(formatted, bad) {
				t.Errorf("ToMatrix(%q) formatted %q contains %q", in, formatted, bad)
			}
		}
		if StripCodes(body) != body {
			t.Errorf("ToMatrix(%q) body %q has mIRC codes", in, body)
		}
	}
}

// The reply fallback of a Matrix reply (<mx-reply>, wherever it is) never reaches IRC, and no CR
// in what remains survives ToIRC or Split: a CR only ever starts another line of the same message.
func TestAttackCRInReplyQuoteToIRC(t *testing.T) {
	for _, tc := range []struct{ body, formatted, want string }{
		{"> <@bob:example.org> q\r\nQUIT :x\n\nanswer", "<mx-reply><blockquote>q\r\nQUIT :x</blockquote></mx-reply>answer", "answer"},
		{"x", "answer<mx-reply>q\rPRIVMSG NickServ :DROP</mx-reply>", "answer"},
		{"x", "<p>a\rb</p><mx-reply><mx-reply>q\r</mx-reply></mx-reply>", "a b"}, // HTML: CR is a space
		{"a\rQUIT :x", "", "a\nQUIT :x"},
		{"a\r\n\r\nb\x00\rc", "", "a\n\nb\nc"},
		{"x", "<pre><code>a\r\nQUIT\rb</code></pre>", "\x11a\n\x11QUIT\n\x11b"},
	} {
		got := ToIRC(tc.body, tc.formatted, testPill)
		checkIRCText(t, got)
		if got != tc.want {
			t.Errorf("ToIRC(%q, %q) = %q, want %q", tc.body, tc.formatted, got, tc.want)
		}
		for _, line := range Split(got, 50) {
			if strings.ContainsAny(line, "\r\n\x00") || strings.Contains(line, "DROP") {
				t.Errorf("line %q", line)
			}
		}
	}
}

// FuzzOneLine: a topic or kick reason from Matrix becomes one IRC parameter: no CR, LF or NUL,
// within maxBytes (when > 0), valid UTF-8 when the input is, no leading or trailing space.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"", "topic", "a\r\nTOPIC #x :pwned", "a\rb\nc\x00d", " \n \r\n ", strings.Repeat("ü", 300),
		strings.Repeat("😀", 100), "\x02bold\x0304red", "line / line", "\xff\xfe\r\n\xc3", "<b>html</b>"} {
		for _, n := range []int{0, -1, 1, 3, 255, 307} {
			f.Add(s, n)
		}
	}
	f.Fuzz(func(t *testing.T, in string, maxBytes int) {
		if maxBytes > 1<<16 {
			maxBytes = 1 << 16
		}
		out := OneLine(in, maxBytes)
		if strings.ContainsAny(out, "\r\n\x00") {
			t.Fatalf("OneLine(%q, %d) = %q", in, maxBytes, out)
		}
		if maxBytes > 0 && len(out) > maxBytes {
			t.Fatalf("OneLine(%q, %d) = %d bytes", in, maxBytes, len(out))
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("OneLine(%q, %d) = %q: invalid UTF-8", in, maxBytes, out)
		}
		// (NUL bytes go first, byte by byte as OneLine drops them: "\xe2\x00\x80\x89" is a thin
		// space once its NUL is gone, and rightly comes out empty.)
		if maxBytes <= 0 && strings.TrimSpace(strings.Map(dropBreaks, strings.ReplaceAll(in, "\x00", ""))) != "" && out == "" {
			t.Fatalf("OneLine(%q) lost everything", in)
		}
	})
}

func dropBreaks(r rune) rune {
	if r == '\r' || r == '\n' || r == 0 {
		return -1
	}
	return r
}
