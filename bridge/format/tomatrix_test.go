package format

import (
	"testing"

	"maunium.net/go/mautrix/id"
)

const (
	fontRed    = `<font color="#ff0000" data-mx-color="#ff0000">`
	pillBob    = `<a href="https://matrix.to/#/@bob:example.org">Bob B</a>`
	pillFoo    = `<a href="https://matrix.to/#/@foo:example.org">Foo</a>`
	pillAB     = `<a href="https://matrix.to/#/@ab:example.org">A|B</a>`
	pillNoDisp = `<a href="https://matrix.to/#/@nd:example.org">nodisplay</a>`
)

func TestToMatrix(t *testing.T) {
	tests := []struct {
		name, in        string
		body, formatted string
	}{
		{"plain", "hello world", "hello world", ""},
		{"empty", "", "", ""},
		{"plain hostile stays body only", `<script>alert(1)</script>`, `<script>alert(1)</script>`, ""},

		{"bold", "a \x02b\x02 c", "a b c", "a <strong>b</strong> c"},
		{"italic", "\x1di\x1d", "i", "<em>i</em>"},
		{"underline", "\x1fu\x1f", "u", "<u>u</u>"},
		{"strike", "\x1es\x1e", "s", "<del>s</del>"},
		{"monospace", "\x11m\x11", "m", "<code>m</code>"},
		{"unterminated bold", "\x02b", "b", "<strong>b</strong>"},
		{"toggles without text", "\x02\x02a\x1d\x1d", "a", ""},
		{"codes only", "\x02\x1d\x0f", "", ""},
		{"nested", "\x02a\x1db\x1dc\x02", "abc", "<strong>a<em>b</em>c</strong>"},
		{"unbalanced", "\x02a\x1db\x02c\x1d", "abc", "<strong>a<em>b</em></strong><em>c</em>"},
		{"all styles", "\x02\x1d\x1f\x1e\x11x", "x", "<strong><em><u><del><code>x</code></del></u></em></strong>"},
		{"reset", "\x02\x1d\x0304a\x0fb", "ab", fontRed + "<strong><em>a</em></strong></font>b"},

		{"colour fg", "\x0304red", "red", fontRed + "red</font>"},
		{"colour one digit", "\x034red", "red", fontRed + "red</font>"},
		{"colour fg bg", "\x034,12x", "x", `<font color="#ff0000" data-mx-color="#ff0000" data-mx-bg-color="#0000fc">x</font>`},
		{"colour then plain", "\x0304red\x03 plain", "red plain", fontRed + "red</font> plain"},
		{"colour alone", "\x03alone", "alone", ""},
		{"colour at end", "x\x03", "x", ""},
		{"colour 99 is default", "\x0399x", "x", ""},
		{"colour 99 bg", "\x0399,04x", "x", `<font data-mx-bg-color="#ff0000">x</font>`},
		{"colour trailing commas", "\x031,,x", ",,x", `<font color="#000000" data-mx-color="#000000">,,x</font>`},
		{"colour comma no digit", "\x031,x", ",x", `<font color="#000000" data-mx-color="#000000">,x</font>`},
		{"colour comma first", "\x03,5x", ",5x", ""},
		{"colour three digits", "\x03123", "3", `<font color="#0000fc" data-mx-color="#0000fc">3</font>`},
		{"colour bg three digits", "\x0304,123", "3", `<font color="#ff0000" data-mx-color="#ff0000" data-mx-bg-color="#0000fc">3</font>`},
		{"colour extended", "\x0352x", "x", fontRed + "x</font>"},
		{"colour keeps bg", "\x0304,01a\x0312b", "ab",
			`<font color="#ff0000" data-mx-color="#ff0000" data-mx-bg-color="#000000">a</font>` +
				`<font color="#0000fc" data-mx-color="#0000fc" data-mx-bg-color="#000000">b</font>`},
		{"colour around bold", "\x0304a\x02b\x03c", "abc", fontRed + "a<strong>b</strong></font><strong>c</strong>"},
		{"hex colour", "\x04FF8800hex", "hex", `<font color="#ff8800" data-mx-color="#ff8800">hex</font>`},
		{"hex colour bg", "\x04ff8800,000000x", "x", `<font color="#ff8800" data-mx-color="#ff8800" data-mx-bg-color="#000000">x</font>`},
		{"hex colour short", "\x04FFF", "FFF", ""},
		{"hex colour bad bg", "\x04ff0000,12x", ",12x", fontRed + ",12x</font>"},
		{"reverse", "\x16r", "r", `<font color="#ffffff" data-mx-color="#ffffff" data-mx-bg-color="#000000">r</font>`},
		{"reverse swaps", "\x0304,02\x16r", "r", `<font color="#00007f" data-mx-color="#00007f" data-mx-bg-color="#ff0000">r</font>`},

		{"hostile script", "\x02<script>alert(1)</script>", "<script>alert(1)</script>",
			"<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>"},
		{"hostile attribute", "\x02\"><img src=x onerror=alert(1)>", "\"><img src=x onerror=alert(1)>",
			"<strong>&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</strong>"},
		{"literal entity", "\x02&amp; &lt;", "&amp; &lt;", "<strong>&amp;amp; &amp;lt;</strong>"},
		{"quotes", "\x02'\"", "'\"", "<strong>&#39;&#34;</strong>"},
		{"hostile in colour", "\x0304</font><b>", "</font><b>", fontRed + "&lt;/font&gt;&lt;b&gt;</font>"},

		{"mention colon", "bob: hi", "bob: hi", pillBob + ": hi"},
		{"mention comma", "bob, hi", "bob, hi", pillBob + ", hi"},
		{"mention middle", "hi bob how", "hi bob how", "hi " + pillBob + " how"},
		{"mention end", "thanks bob", "thanks bob", "thanks " + pillBob},
		{"mention at sign", "@bob hi", "@bob hi", "@" + pillBob + " hi"},
		{"mention twice", "bob bob", "bob bob", pillBob + " " + pillBob},
		{"mention punctuation", "(bob).", "(bob).", "(" + pillBob + ")."},
		{"partial word", "bobby bob_ xbob", "bobby bob_ xbob", ""},
		{"brackets nick", "[foo]: hi", "[foo]: hi", pillFoo + ": hi"},
		{"pipe nick", "a|b: hi", "a|b: hi", pillAB + ": hi"},
		{"pipe nick not regex", "a b ab", "a b ab", ""},
		{"bracketed nick", "[bob]", "[bob]", "[" + pillBob + "]"},
		{"no displayname", "nodisplay: x", "nodisplay: x", pillNoDisp + ": x"},
		{"hostile displayname", "evil", "evil",
			`<a href="https://matrix.to/#/@evil:example.org">&lt;b onclick=&#34;x&#34;&gt;&#39;&amp;amp;</a>`},
		{"unicode nick", "zoë: hi", "zoë: hi", `<a href="https://matrix.to/#/@zoe:example.org">Zoë</a>: hi`},
		{"mention in url", "see https://example.org/bob", "see https://example.org/bob", ""},
		{"mention in email", "bob@example.org", "bob@example.org", ""},
		{"mention in bold", "\x02bob\x02: hi", "bob: hi", "<strong>" + pillBob + "</strong>: hi"},
		{"mention across codes", "bo\x02b\x02", "bob", "bo<strong>b</strong>"},
		{"word across codes", "bob\x02by\x02", "bobby", "bob<strong>by</strong>"},
		{"mention in code", "\x11bob\x11", "bob", "<code>bob</code>"},
		{"hostile text next to mention", "bob: <i>", "bob: <i>", pillBob + ": &lt;i&gt;"},

		{"newline", "\x02a\nb", "a\nb", "<strong>a<br>b</strong>"},
		{"newline plain", "a\nb", "a\nb", ""},
		{"newline plain CR", "a\r\nb\rc", "a\nb\nc", ""},
		// Fuzz regression: '\r' after a pill made body and formatted differ.
		{"CR after mention", "bob\r", "bob\n", pillBob + "<br>"},
		{"nul dropped", "a\x00b", "ab", ""},
		{"invalid utf8", "\xff\x02x", "\uFFFDx", "\uFFFD<strong>x</strong>"},
		{"emoji", "\x02😀\x02", "😀", "<strong>😀</strong>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, formatted := ToMatrix(tt.in, testMention)
			if body != tt.body || formatted != tt.formatted {
				t.Errorf("ToMatrix(%q)\n got  %q, %q\n want %q, %q", tt.in, body, formatted, tt.body, tt.formatted)
			}
			if formatted != "" {
				if _, err := checkMatrixHTML(formatted); err != nil {
					t.Errorf("bad HTML %q: %v", formatted, err)
				}
			}
		})
	}
}

func TestToMatrixNilMention(t *testing.T) {
	body, formatted := ToMatrix("bob: \x02hi", nil)
	if body != "bob: hi" || formatted != "bob: <strong>hi</strong>" {
		t.Errorf("got %q, %q", body, formatted)
	}
}

func TestToMatrixMentionCalledOncePerWord(t *testing.T) {
	calls := map[string]int{}
	ToMatrix("x x x y x", func(nick string) (_ id.UserID, _ string, _ bool) {
		calls[nick]++
		return "", "", false
	})
	if calls["x"] != 1 || calls["y"] != 1 {
		t.Errorf("calls %v", calls)
	}
}

func TestStripCodes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"\x02bold\x0f end", "bold end"},
		{"\x034,2red\x03 plain", "red plain"},
		{"\x04ff8800hex", "hex"},
		{"\x04ff8800,000000hex", "hex"},
		{"\x03,5", ",5"},
		{"\x031,,", ",,"},
		{"\x03123", "3"},
		{"\x1d\x1f\x1e\x11\x16x", "x"},
		{"a\x01ACTION\x01", "a\x01ACTION\x01"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := StripCodes(tt.in); got != tt.want {
			t.Errorf("StripCodes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
