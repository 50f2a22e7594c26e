package format

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// MinSplitBytes is the smallest chunk size Split works with; smaller
// maxBytes values are raised to it. 16 bytes hold the longest mIRC colour
// code (\x04RRGGBB,RRGGBB is 14 bytes) and any UTF-8 rune, so Split can always
// make progress without cutting either.
const MinSplitBytes = 16

// Split splits text into lines that are safe to send as IRC message text.
//
// Lines are first split on "\r\n", lone '\r' and '\n'. Empty lines are
// dropped, NUL bytes removed. Each line longer than maxBytes is then cut into
// chunks of at most maxBytes bytes: after the last space that fits (the space
// stays at the end of its chunk), else at the last UTF-8 rune boundary that
// fits, moved back so as not to cut a mIRC colour code (\x03NN,NN or
// \x04RRGGBB,RRGGBB) in two. A multi-byte rune is never cut; invalid UTF-8
// bytes count as one-byte runes. maxBytes below MinSplitBytes counts as
// MinSplitBytes.
//
// Invariants, for every input: no chunk is empty, longer than maxBytes, or
// contains '\r', '\n' or '\x00'; each chunk is valid UTF-8 when the input is;
// and the concatenation of the chunks of one line is exactly that line
// (minus NULs). Nothing is lost. Formatting is not carried over: a chunk that
// starts in the middle of bold text starts unformatted on the reader's
// client.
func Split(text string, maxBytes int) []string {
	chunks := SplitChunks(text, maxBytes)
	if len(chunks) == 0 {
		return nil
	}
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = c.Text
	}
	return out
}

// Chunk is one piece of Split's output. Continues is set when the chunk continues the line of the
// chunk before it (the line was cut for length), rather than starting a new line of the text: a
// draft/multiline batch sends such a chunk with draft/multiline-concat, so that the receiver joins
// it without a line break.
type Chunk struct {
	Text      string
	Continues bool
}

// SplitChunks is Split, telling which chunks continue the previous line.
func SplitChunks(text string, maxBytes int) []Chunk {
	if maxBytes < MinSplitBytes {
		maxBytes = MinSplitBytes
	}
	text = strings.ReplaceAll(text, "\x00", "")
	var out []Chunk
	for len(text) > 0 {
		i := strings.IndexAny(text, "\r\n")
		line, rest := text, ""
		if i >= 0 {
			line, rest = text[:i], text[i+1:]
			if text[i] == '\r' && strings.HasPrefix(rest, "\n") {
				rest = rest[1:]
			}
		}
		text = rest
		continues := false
		for len(line) > maxBytes {
			cut := cutPoint(line, maxBytes)
			out = append(out, Chunk{Text: line[:cut], Continues: continues})
			line, continues = line[cut:], true
		}
		if line != "" {
			out = append(out, Chunk{Text: line, Continues: continues})
		}
	}
	return out
}

// maxCodeLen is the length of the longest mIRC code, \x04RRGGBB,RRGGBB.
const maxCodeLen = 14

// cutPoint returns where to end the first chunk of s, len(s) > limit >=
// MinSplitBytes. The result is in (0, limit].
func cutPoint(s string, limit int) int {
	if i := strings.LastIndexByte(s[:limit], ' '); i >= 0 {
		return i + 1
	}
	cut := 0
	for cut < len(s) {
		_, w := utf8.DecodeRuneInString(s[cut:])
		if cut+w > limit {
			break
		}
		cut += w
	}
	// Do not cut inside a colour code: "\x0304" | ",12" would change what
	// both halves mean. Codes never overlap, so any \x03 or \x04 is the start
	// of one.
	for j := max(0, cut-maxCodeLen); j < cut; j++ {
		if n := codeLen(s, j); n > 1 && j+n > cut && j > 0 {
			return j
		}
	}
	return cut
}

// MessageBudget returns how many bytes of message text fit in one IRC line
// "COMMAND target :text" as relayed to other clients with the prefix
// ":source " (source being nick!user@host as the server shows it), within the
// 512-byte limit including CRLF (tags excluded). Callers that do not know
// their exact user@host should pass a generous guess. The result is never
// below MinSplitBytes.
func MessageBudget(source, command, target string) int {
	n := 510 - len(":"+source+" "+command+" "+target+" :")
	return max(n, MinSplitBytes)
}

// OneLine makes text safe as a single IRC parameter that must not wrap (a topic, a kick reason):
// its lines are joined with " / ", NULs removed, and the result cut at the last rune boundary within
// maxBytes (no cut when maxBytes <= 0). It never contains '\r', '\n' or '\x00'.
func OneLine(text string, maxBytes int) string {
	lines := Split(text, len(text)+MinSplitBytes)
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	s := strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), " / ")
	if maxBytes > 0 && len(s) > maxBytes {
		cut := 0
		for cut < len(s) {
			_, w := utf8.DecodeRuneInString(s[cut:])
			if cut+w > maxBytes {
				break
			}
			cut += w
		}
		s = s[:cut]
	}
	return s
}
