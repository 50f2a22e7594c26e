package format

import "strings"

// mIRC formatting control bytes.
const (
	codeBold      = '\x02'
	codeColor     = '\x03'
	codeHexColor  = '\x04'
	codeReset     = '\x0f'
	codeMonospace = '\x11'
	codeReverse   = '\x16'
	codeItalic    = '\x1d'
	codeStrike    = '\x1e'
	codeUnderline = '\x1f'
)

// style is the formatting state in effect at some point of an IRC message.
type style struct {
	bold, italic, underline, strike, mono, reverse bool
	fg, bg                                         color
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func isHex(b byte) bool {
	return isDigit(b) || ('a' <= b && b <= 'f') || ('A' <= b && b <= 'F')
}

func isCodeByte(b byte) bool {
	switch b {
	case codeBold, codeColor, codeHexColor, codeReset, codeMonospace,
		codeReverse, codeItalic, codeStrike, codeUnderline:
		return true
	}
	return false
}

// codeLen returns the length of the formatting code that starts at s[i], or 0
// when s[i] does not start one.
//
// Colour codes follow https://modern.ircdocs.horse/formatting.html#color:
// \x03 then one or two digits (foreground), then optionally a comma and one or
// two digits (background); the digits are read greedily. A comma that is not
// followed by a digit is text ("\x031,," is colour 1 then ",,"). \x03 with no
// digit after it ("\x03" or "\x03,5") resets the colours and the comma is
// text. \x04 works the same way with exactly six hex digits per colour.
func codeLen(s string, i int) int {
	if i >= len(s) || !isCodeByte(s[i]) {
		return 0
	}
	switch s[i] {
	case codeColor:
		j := i + 1
		n := digitsAt(s, j, 2)
		if n == 0 {
			return 1
		}
		j += n
		if j+1 < len(s) && s[j] == ',' && isDigit(s[j+1]) {
			j += 1 + digitsAt(s, j+1, 2)
		}
		return j - i
	case codeHexColor:
		j := i + 1
		if !hexAt(s, j) {
			return 1
		}
		j += 6
		if j < len(s) && s[j] == ',' && hexAt(s, j+1) {
			j += 7
		}
		return j - i
	}
	return 1
}

// digitsAt counts up to limit ASCII digits starting at s[i].
func digitsAt(s string, i, limit int) int {
	n := 0
	for n < limit && i+n < len(s) && isDigit(s[i+n]) {
		n++
	}
	return n
}

// hexAt reports whether s[i:i+6] is six hex digits.
func hexAt(s string, i int) bool {
	if i+6 > len(s) {
		return false
	}
	for k := i; k < i+6; k++ {
		if !isHex(s[k]) {
			return false
		}
	}
	return true
}

// apply updates st with the code s[i:i+n] (n from codeLen).
func (st *style) apply(code string) {
	switch code[0] {
	case codeBold:
		st.bold = !st.bold
	case codeItalic:
		st.italic = !st.italic
	case codeUnderline:
		st.underline = !st.underline
	case codeStrike:
		st.strike = !st.strike
	case codeMonospace:
		st.mono = !st.mono
	case codeReverse:
		st.reverse = !st.reverse
	case codeReset:
		*st = style{}
	case codeColor:
		if len(code) == 1 {
			st.fg, st.bg = color{}, color{}
			return
		}
		fg, bg, hasBG := strings.Cut(code[1:], ",")
		st.fg = paletteColor(fg)
		if hasBG {
			st.bg = paletteColor(bg)
		}
	case codeHexColor:
		if len(code) == 1 {
			st.fg, st.bg = color{}, color{}
			return
		}
		st.fg = hexColor(code[1:7])
		if len(code) > 7 {
			st.bg = hexColor(code[8:14])
		}
	}
}

// scan calls fn for every maximal run of text in s that has one style, in
// order. Formatting codes are not passed to fn. Runs are never empty.
func scan(s string, fn func(text string, st style)) {
	var st style
	start := 0
	for i := 0; i < len(s); {
		n := codeLen(s, i)
		if n == 0 {
			i++
			continue
		}
		if i > start {
			fn(s[start:i], st)
		}
		st.apply(s[i : i+n])
		i += n
		start = i
	}
	if start < len(s) {
		fn(s[start:], st)
	}
}

// StripCodes removes every mIRC formatting code (bold, italic, underline,
// strikethrough, monospace, reverse, reset and \x03/\x04 colours with their
// digits) from text and returns the plain text. Other bytes are kept as they
// are.
func StripCodes(text string) string {
	if strings.IndexFunc(text, func(r rune) bool { return r < 0x20 && isCodeByte(byte(r)) }) < 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	scan(text, func(t string, _ style) { b.WriteString(t) })
	return b.String()
}
