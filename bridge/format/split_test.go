package format

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"empty", "", 100, nil},
		{"short", "hello", 100, []string{"hello"}},
		{"exact", "0123456789abcdef", 16, []string{"0123456789abcdef"}},
		{"newlines", "a\nb\r\nc\rd", 100, []string{"a", "b", "c", "d"}},
		{"empty lines dropped", "a\n\n\r\n\r\rb\n", 100, []string{"a", "b"}},
		{"only newlines", "\r\n\n\r", 100, nil},
		{"CR LF CR", "a\r\n\rb", 100, []string{"a", "b"}},
		{"NUL removed", "a\x00b\x00\n\x00", 100, []string{"ab"}},
		{"spaces kept", "  ", 100, []string{"  "}},
		{"word break", "aaaa bbbb cccc dddd eeee", 16, []string{"aaaa bbbb cccc ", "dddd eeee"}},
		{"space at limit", "aaaaaaaaaaaaaaa bbb", 16, []string{"aaaaaaaaaaaaaaa ", "bbb"}},
		{"space just past limit", "aaaaaaaaaaaaaaaa bbb", 16, []string{"aaaaaaaaaaaaaaaa", " bbb"}},
		{"no spaces", strings.Repeat("x", 40), 16, []string{strings.Repeat("x", 16), strings.Repeat("x", 16), strings.Repeat("x", 8)}},
		{"long word after short", "hi " + strings.Repeat("y", 20), 16, []string{"hi ", strings.Repeat("y", 16), "yyyy"}},
		{"many spaces", strings.Repeat(" ", 20), 16, []string{strings.Repeat(" ", 16), "    "}},
		{"max below minimum", strings.Repeat("z", 20), 1, []string{strings.Repeat("z", 16), "zzzz"}},
		{"max zero", "abc", 0, []string{"abc"}},
		{"max negative", "abc", -5, []string{"abc"}},
		// "é" is 2 bytes: 15 bytes of a then é would end at byte 17.
		{"two-byte rune at boundary", strings.Repeat("a", 15) + "éé", 16, []string{strings.Repeat("a", 15), "éé"}},
		// "😀" is 4 bytes.
		{"emoji at boundary", strings.Repeat("a", 14) + "😀😀", 16, []string{strings.Repeat("a", 14), "😀😀"}},
		{"emoji only", strings.Repeat("😀", 5), 16, []string{"😀😀😀😀", "😀"}},
		{"CJK", strings.Repeat("漢", 7), 16, []string{"漢漢漢漢漢", "漢漢"}},
		{"CJK with space", "漢漢漢 漢漢漢漢", 16, []string{"漢漢漢 ", "漢漢漢漢"}},
		{"invalid utf8", strings.Repeat("\xff", 20), 16, []string{strings.Repeat("\xff", 16), "\xff\xff\xff\xff"}},
		{"colour code not cut", strings.Repeat("a", 14) + "\x0304,12red", 16, []string{strings.Repeat("a", 14), "\x0304,12red"}},
		{"colour code digits not cut", strings.Repeat("a", 15) + "\x0345", 16, []string{strings.Repeat("a", 15), "\x0345"}},
		{"hex colour not cut", "abcdef" + "\x04ff0000,00ff00x", 16, []string{"abcdef", "\x04ff0000,00ff00x"}},
		{"colour at start kept", "\x0304,12" + strings.Repeat("b", 20), 16, []string{"\x0304,12" + strings.Repeat("b", 10), strings.Repeat("b", 10)}},
		{"bare colour then comma", strings.Repeat("a", 15) + "\x03,5", 16, []string{strings.Repeat("a", 15) + "\x03", ",5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.in, tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q, %d)\n got  %q\n want %q", tt.in, tt.max, got, tt.want)
			}
			checkSplit(t, tt.in, tt.max, got)
		})
	}
}

func TestSplitLong(t *testing.T) {
	// A realistic 4 KiB message of mixed words and runes.
	var b strings.Builder
	for i := 0; b.Len() < 4096; i++ {
		b.WriteString([]string{"word ", "漢字 ", "😀", "\x02bold\x02 ", "\x0304,12c\x03 ", "https://example.org/" + strings.Repeat("p", 50) + " "}[i%6])
	}
	for _, max := range []int{16, 17, 100, 400, 512} {
		checkSplit(t, b.String(), max, Split(b.String(), max))
	}
}

// splitLinesRef is a reference implementation of Split's line splitting.
func splitLinesRef(s string) []string {
	s = strings.ReplaceAll(s, "\x00", "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkSplit checks Split's invariants: chunk sizes and contents, valid
// UTF-8 in from valid UTF-8 out, and per-line concatenation.
func checkSplit(t testing.TB, in string, maxBytes int, chunks []string) {
	t.Helper()
	limit := max(maxBytes, MinSplitBytes)
	validIn := utf8.ValidString(in)
	for _, c := range chunks {
		if c == "" {
			t.Fatalf("Split(%q, %d): empty chunk in %q", in, maxBytes, chunks)
		}
		if len(c) > limit {
			t.Fatalf("Split(%q, %d): chunk %q is %d bytes", in, maxBytes, c, len(c))
		}
		if strings.ContainsAny(c, "\r\n\x00") {
			t.Fatalf("Split(%q, %d): chunk %q has CR, LF or NUL", in, maxBytes, c)
		}
		if validIn && !utf8.ValidString(c) {
			t.Fatalf("Split(%q, %d): chunk %q is not valid UTF-8", in, maxBytes, c)
		}
	}
	// Reassemble lines: chunks of one line are consecutive; walk the
	// reference lines and consume chunks until each line is rebuilt.
	lines := splitLinesRef(in)
	i := 0
	for _, line := range lines {
		var got strings.Builder
		for got.Len() < len(line) && i < len(chunks) {
			got.WriteString(chunks[i])
			i++
		}
		if got.String() != line {
			t.Fatalf("Split(%q, %d) = %q: line %q rebuilt as %q", in, maxBytes, chunks, line, got.String())
		}
	}
	if i != len(chunks) {
		t.Fatalf("Split(%q, %d) = %q: %d extra chunks", in, maxBytes, chunks, len(chunks)-i)
	}
}

func TestMessageBudget(t *testing.T) {
	got := MessageBudget("nick!user@host", "PRIVMSG", "#chan")
	want := 510 - len(":nick!user@host PRIVMSG #chan :")
	if got != want {
		t.Errorf("got %d, want %d", got, want)
	}
	if got := MessageBudget(strings.Repeat("x", 600), "PRIVMSG", "#c"); got != MinSplitBytes {
		t.Errorf("huge prefix: got %d", got)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain topic", 0, "plain topic"},
		{"first\r\nsecond\rthird\nfourth", 0, "first / second / third / fourth"},
		{"a\x00b\n\n  \nc", 0, "ab / c"},
		{"QUIT :x\r\nPRIVMSG #c :y", 0, "QUIT :x / PRIVMSG #c :y"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
	}
	for _, tt := range tests {
		got := OneLine(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n\x00") {
			t.Errorf("OneLine(%q) kept a forbidden byte: %q", tt.in, got)
		}
	}
}
