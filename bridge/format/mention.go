package format

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

// MentionFunc resolves an IRC nick seen in a message to the Matrix user to
// pill. It returns ok=false for words that are not a nick present in the
// conversation. Casemapping is the caller's business. displayname may be ""
// (the nick is shown then).
type MentionFunc func(nick string) (userID id.UserID, displayname string, ok bool)

// PillFunc resolves the Matrix user of a pill (a matrix.to user link) to the
// IRC nick to write instead. ok=false makes ToIRC use the link text.
type PillFunc func(userID id.UserID) (nick string, ok bool)

// maxNickBytes bounds the words offered to a MentionFunc; no IRC network
// allows nicks this long, and it keeps hostile input from making us call the
// resolver with huge strings.
const maxNickBytes = 64

// mentionSpan is a nick found at text[start:end].
type mentionSpan struct {
	start, end  int
	userID      id.UserID
	displayname string
}

// isNickRune reports whether r may appear in a nick: letters, digits and
// RFC 2812's specials []\`_^{|} plus '-'. Non-ASCII letters are allowed
// because some networks (ergo with UTF-8 nicks) allow them.
func isNickRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
			strings.ContainsRune("[]\\`_^{|}-", r)
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// nickLookup is one answer of a MentionFunc.
type nickLookup struct {
	userID      id.UserID
	displayname string
	ok          bool
}

// mentionFinder calls a MentionFunc at most once per distinct word.
type mentionFinder struct {
	mention MentionFunc
	cache   map[string]nickLookup
}

func (f *mentionFinder) lookup(nick string) nickLookup {
	if len(nick) == 0 || len(nick) > maxNickBytes {
		return nickLookup{}
	}
	if r, seen := f.cache[nick]; seen {
		return r
	}
	uid, name, ok := f.mention(nick)
	r := nickLookup{uid, name, ok && uid != ""}
	if f.cache == nil {
		f.cache = map[string]nickLookup{}
	}
	f.cache[nick] = r
	return r
}

// find finds whole-word nicks in text (a run of IRC text with one style). A
// word is a maximal run of nick characters, so "bob:", "bob," "@bob" and
// "(bob)" mention bob while "bobby" and "bob_" do not. If the whole run is not
// a nick, the run without surrounding brackets is tried ("[bob]" for bob).
// Words inside URLs (a whitespace-separated token containing "://") and
// e-mail local parts (followed by '@') are never mentions.
func (f *mentionFinder) find(text string) []mentionSpan {
	if f == nil || f.mention == nil {
		return nil
	}
	var spans []mentionSpan
	tokStart := -1
	for i := 0; i <= len(text); {
		var r rune
		w := 1
		if i < len(text) {
			r, w = utf8.DecodeRuneInString(text[i:])
		}
		if i == len(text) || unicode.IsSpace(r) {
			if tokStart >= 0 {
				spans = f.findInToken(spans, text, tokStart, i)
				tokStart = -1
			}
		} else if tokStart < 0 {
			tokStart = i
		}
		i += w
	}
	return spans
}

// findInToken appends the mentions within text[start:end], a token without
// whitespace.
func (f *mentionFinder) findInToken(spans []mentionSpan, text string, start, end int) []mentionSpan {
	if strings.Contains(text[start:end], "://") {
		return spans
	}
	runStart := -1
	for i := start; i <= end; {
		var r rune
		w := 1
		if i < end {
			r, w = utf8.DecodeRuneInString(text[i:end])
		}
		if i < end && isNickRune(r) {
			if runStart < 0 {
				runStart = i
			}
		} else if runStart >= 0 {
			if i == end || text[i] != '@' {
				if s, ok := f.match(text, runStart, i); ok {
					spans = append(spans, s)
				}
			}
			runStart = -1
		}
		i += w
	}
	return spans
}

// match tries text[start:end] as a nick, then the same without leading '['
// or '{' and trailing ']' or '}'.
func (f *mentionFinder) match(text string, start, end int) (mentionSpan, bool) {
	if r := f.lookup(text[start:end]); r.ok {
		return mentionSpan{start, end, r.userID, r.displayname}, true
	}
	s, e := start, end
	for s < e && (text[s] == '[' || text[s] == '{') {
		s++
	}
	for e > s && (text[e-1] == ']' || text[e-1] == '}') {
		e--
	}
	if (s != start || e != end) && s < e {
		if r := f.lookup(text[s:e]); r.ok {
			return mentionSpan{s, e, r.userID, r.displayname}, true
		}
	}
	return mentionSpan{}, false
}
