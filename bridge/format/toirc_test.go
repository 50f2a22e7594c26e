package format

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"
)

func testPill(u id.UserID) (string, bool) {
	switch u {
	case "@bob:example.org":
		return "bob", true
	case "@evil:example.org":
		return "ev\r\nil\x00", true // a hostile resolver answer is cleaned
	}
	return "", false
}

func TestToIRC(t *testing.T) {
	tests := []struct {
		name, body, formatted, want string
	}{
		{"plain body", "hello", "", "hello"},
		{"body CRLF", "a\r\nb\rc\nd", "", "a\nb\nc\nd"},
		{"body NUL and controls", "a\x00b\x01ACTION x\x01\x02c\x03", "", "abACTION xc"},
		{"body keeps markup", "<b>x</b>", "", "<b>x</b>"},
		{"body trims blank lines", "\n\nx\n\n", "", "x"},

		{"bold", "", "a <strong>b</strong> c", "a \x02b\x02 c"},
		{"b", "", "<b>b</b>", "\x02b"},
		{"italic", "", "<em>i</em> <i>j</i>", "\x1di\x1d \x1dj"},
		{"underline", "", "<u>u</u>", "\x1fu"},
		{"strike", "", "<del>a</del><s>b</s><strike>c</strike>", "\x1eabc"},
		{"inline code", "", "x <code>y</code> z", "x \x11y\x11 z"},
		{"nested same", "", "<b>a<b>b</b>c</b>d", "\x02abc\x02d"},
		{"nested mixed", "", "<b>a<i>b</i>c</b>", "\x02a\x1db\x1dc"},
		{"space at inline edge", "", "<b>hello </b>world", "\x02hello \x02world"},
		{"entities", "", "&lt;b&gt; &amp;amp; &quot;", "<b> &amp; \""},
		{"whitespace collapse", "", "a  \n\t b", "a b"},
		{"unknown tags keep text", "", "<marquee>x</marquee><sup>2</sup>", "x2"},
		{"script dropped", "", "a<script>alert(1)</script>b<style>p{}</style>", "ab"},
		{"control chars from matrix", "", "<b>a\x01DCC SEND x\x01\x03\x0304b\x00</b>", "\x02aDCC SEND x04b"},

		{"colour", "", `<font color="#ff0000">red</font> x`, "\x0304red\x03 x"},
		{"data-mx-color", "", `<span data-mx-color="#00ff00">g</span>`, "\x0309g"},
		{"colour bg", "", `<span data-mx-color="#ff0000" data-mx-bg-color="#000000">x</span>`, "\x0304,01x"},
		{"bg only", "", `<span data-mx-bg-color="#ffff00">x</span>`, "\x0399,08x"},
		{"colour nearest", "", `<font color="#fe0102">x</font>`, "\x0304x"},
		{"colour short hex and name", "", `<font color="#f00">a</font><font color="blue">b</font>`, "\x0304a\x0312b"},
		{"colour invalid", "", `<font color="javascript:x">a</font>`, "a"},
		{"colour then digit", "", `<font color="#ff0000">r</font>5`, "\x0304r\x03\x02\x025"},
		{"colour then comma", "", `<font color="#ff0000">r</font>,<font color="#ff0000">,x</font>`, "\x0304r\x03\x02\x02,\x0304\x02\x02,x"},
		{"nested colour restored", "", `<font color="#ff0000">r<font color="#0000ff">b</font>r</font>`, "\x0304r\x0312b\x0304r"},
		{"spoiler", "", `a <span data-mx-spoiler="">secret <font color="#ff0000">x</font></span>`, "a \x0301,01secret x"},

		{"link", "", `<a href="https://example.org">site</a>`, "site (https://example.org)"},
		{"link text is href", "", `<a href="https://example.org">https://example.org</a>`, "https://example.org"},
		{"link text without scheme", "", `<a href="https://example.org">example.org</a>`, "example.org"},
		{"mailto", "", `<a href="mailto:a@b.org">a@b.org</a>`, "a@b.org"},
		{"link without text", "", `<a href="https://example.org"></a>`, "https://example.org"},
		{"link without href", "", `<a>x</a>`, "x"},
		{"formatted link", "", `<a href="https://e.org"><b>e</b></a>`, "\x02e\x02 (https://e.org)"},
		{"pill", "", `<a href="https://matrix.to/#/@bob:example.org">Bob B</a>: hi`, "bob: hi"},
		{"pill matrix uri", "", `<a href="matrix:u/bob:example.org">Bob B</a>: hi`, "bob: hi"},
		{"pill unknown", "", `<a href="https://matrix.to/#/@who:example.org">Who</a>: hi`, "Who: hi"},
		{"pill hostile nick", "", `<a href="https://matrix.to/#/@evil:example.org">E</a>`, "ev il"},
		{"room link", "", `<a href="https://matrix.to/#/#room:example.org">#room:example.org</a>`, "#room:example.org (https://matrix.to/#/#room:example.org)"},

		{"reply fallback", "> <@a:b> x\n\nreply",
			`<mx-reply><blockquote><a href="https://matrix.to/#/!r:b/$e">In reply to</a> <a href="https://matrix.to/#/@a:b">a</a><br>x</blockquote></mx-reply>reply`,
			"reply"},
		{"br", "", "a<br>b<br/>c", "a\nb\nc"},
		{"paragraphs", "", "<p>one</p><p>two</p>", "one\ntwo"},
		{"blank line kept", "", "a<br><br>b", "a\n\nb"},
		{"div", "", "<div>a</div>b", "a\nb"},
		{"heading", "", "<h1>Title</h1><p>text</p>", "\x02Title\ntext"},
		{"hr", "", "a<hr>b", "a\n---\nb"},
		{"blockquote", "", "<blockquote><p>q1</p><p>q2</p></blockquote><p>after</p>", "> q1\n> q2\nafter"},
		{"blockquote br", "", "<blockquote>a<br>b</blockquote>", "> a\n> b"},
		{"nested blockquote", "", "<blockquote>a<blockquote>b</blockquote></blockquote>", "> a\n> > b"},
		{"ul", "", "<ul><li>one</li><li>two</li></ul>", "* one\n* two"},
		{"ol", "", "<ol><li>one</li><li>two</li></ol>", "1. one\n2. two"},
		{"ol start", "", `<ol start="9"><li>a</li><li>b</li></ol>`, "9. a\n10. b"},
		{"ol bad start", "", `<ol start="x99999999999999999999"><li>a</li></ol>`, "1. a"},
		{"nested list", "", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "* a\n  * b\n* c"},
		{"list item lines", "", "<ol><li>a<br>b</li></ol>", "1. a\n   b"},
		{"list bold item", "", "<ul><li><b>a</b></li><li>b</li></ul>", "* \x02a\n* b"},
		{"empty li", "", "<ul><li></li></ul>", "*"},
		{"checkbox", "", `<ul><li><input type="checkbox" checked>done</li><li><input type="checkbox">todo</li></ul>`, "* [x] done\n* [ ] todo"},
		{"code block", "", "<pre><code class=\"language-go\">func x() {\n\treturn  1\n}\n</code></pre>after",
			"\x11func x() {\n\x11    return  1\n\x11}\nafter"},
		{"code block hostile", "", "<pre><code>a\r\nb\x00\rc</code></pre>", "\x11a\n\x11b\n\x11c"},
		{"formatting per line", "", "<b>a<br>b</b>", "\x02a\n\x02b"},
		{"table", "", "<table><tr><th>h1</th><th>h2</th></tr><tr><td>a</td><td>b</td></tr></table>", "\x02h1\x02 | \x02h2\na | b"},
		{"image alt", "", `<img src="mxc://x/y" alt=":cat:" data-mx-emoticon> hi`, ":cat: hi"},
		{"unclosed tags", "", "<b><i>x", "\x02\x1dx"},
		{"junk html", "", "</b></i><<>>&&", "<<>>&&"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToIRC(tt.body, tt.formatted, testPill)
			if got != tt.want {
				t.Errorf("ToIRC(%q, %q)\n got  %q\n want %q", tt.body, tt.formatted, got, tt.want)
			}
			checkIRCText(t, got)
		})
	}
}

func TestToIRCNilPill(t *testing.T) {
	got := ToIRC("", `<a href="https://matrix.to/#/@bob:example.org">Bob</a>: hi`, nil)
	if got != "Bob: hi" {
		t.Errorf("got %q", got)
	}
}

// checkIRCText checks what ToIRC promises about its output.
func checkIRCText(t testing.TB, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\n' && c != '\t' && !isCodeByte(c) || c == codeHexColor || c == codeReverse || c == codeReset {
			t.Fatalf("output %q has control byte %#x at %d", s, c, i)
		}
	}
	if strings.HasPrefix(s, "\n") || strings.HasSuffix(s, "\n") {
		t.Fatalf("output %q has leading or trailing newline", s)
	}
}

// x/net/html refuses documents nested deeper than 512 elements; ToIRC then
// falls back to the plain body rather than sending nothing.
func TestToIRCTooDeepFallsBackToBody(t *testing.T) {
	in := strings.Repeat("<blockquote>", 600) + "x"
	if got := ToIRC("plain\r\nbody\x01", in, nil); got != "plain\nbody" {
		t.Errorf("got %q", got)
	}
	in = strings.Repeat("<b>", 400) + "x"
	if got := ToIRC("body", in, nil); got != "\x02x" {
		t.Errorf("got %q", got)
	}
}
