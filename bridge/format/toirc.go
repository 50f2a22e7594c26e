package format

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"maunium.net/go/mautrix/id"
)

// ToIRC converts a Matrix message, its body and optional
// org.matrix.custom.html formatted_body, into IRC text with mIRC codes.
//
// When formatted is "" the body is used as it is. Otherwise <strong>/<b>
// become \x02, <em>/<i> \x1d, <u>/<ins> \x1f, <del>/<s>/<strike> \x1e,
// <code>/<pre> \x11, and colours (data-mx-color, data-mx-bg-color, <font
// color>) the nearest of the 16 basic mIRC colours (\x03NN[,NN]). Headings are
// bold, spoilers black on black. Links become "text (href)" unless the text is
// the href; pills (matrix.to or matrix: user links) become the nick from pill,
// or the link text when pill is nil or returns !ok. <mx-reply> is dropped.
// <br> and block elements (<p>, <div>, lists, <pre>, tables, ...) start new
// lines; list items get "* " or "N. ", blockquote lines "> ".
//
// Formatting is re-emitted at the start of every line, because each line will
// be its own IRC message. The result may contain '\n' but never \r, \x00 or
// any other C0 control character than '\t' and '\n' except the mIRC codes we
// add: control characters typed by Matrix users (CTCP's \x01, raw mIRC codes)
// are dropped, and \r\n and lone \r become '\n'. Leading and trailing blank
// lines are removed. If formatted cannot be parsed (x/net/html refuses
// nesting deeper than 512 elements), the body is used instead.
func ToIRC(body, formatted string, pill PillFunc) string {
	if formatted == "" {
		return strings.Trim(cleanPlain(body), "\n")
	}
	nodes, err := html.ParseFragment(strings.NewReader(formatted), &html.Node{
		Type: html.ElementNode, Data: "body", DataAtom: atom.Body,
	})
	if err != nil {
		return strings.Trim(cleanPlain(body), "\n")
	}
	w := &ircWriter{pill: pill, atLineStart: true, shown: ircStyle{fg: -1, bg: -1}}
	for _, n := range nodes {
		w.node(n, ircStyle{fg: -1, bg: -1})
	}
	return strings.Trim(string(w.buf), "\n")
}

// StripControls drops the control characters a Matrix user may type (CTCP's \x01, raw mIRC codes,
// every C0 byte but \t and \n) from text that goes to IRC without ToIRC: file names, captions.
func StripControls(s string) string { return cleanPlain(s) }

// cleanPlain turns \r\n and \r into \n and drops C0 control characters other
// than \t and \n.
func cleanPlain(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\t' || r == '\n':
			return r
		case r < 0x20:
			return -1
		}
		return r
	}, s)
}

// ircStyle is the formatting of a point in the Matrix HTML, in IRC terms.
// fg and bg are mIRC colour numbers, -1 for the default.
type ircStyle struct {
	bold, italic, underline, strike, mono bool
	fg, bg                                int
	spoiler                               bool // colours fixed to black on black
	pre                                   bool // keep whitespace
}

// linePrefix is written at the start of every line inside a blockquote or a
// list item: first on the first line, rest on the others.
type linePrefix struct {
	first, rest string
	used        bool
}

// ircWriter accumulates IRC text. Codes are emitted lazily, just before text,
// by comparing the wanted style with what the reader's client has seen on the
// current line.
type ircWriter struct {
	pill        PillFunc
	buf         []byte
	shown       ircStyle // style in effect on the current IRC line
	atLineStart bool
	lastSpace   bool // the last byte written was a collapsible space
	prefixes    []*linePrefix
}

func (w *ircWriter) newline() {
	for len(w.buf) > 0 && w.buf[len(w.buf)-1] == ' ' {
		w.buf = w.buf[:len(w.buf)-1]
	}
	w.buf = append(w.buf, '\n')
	w.shown = ircStyle{fg: -1, bg: -1}
	w.atLineStart = true
	w.lastSpace = false
}

// ensureLine starts a new line unless we are at the start of one.
func (w *ircWriter) ensureLine() {
	if !w.atLineStart {
		w.newline()
	}
}

func (w *ircWriter) writePrefixes() {
	for _, p := range w.prefixes {
		if !p.used {
			w.buf = append(w.buf, p.first...)
			p.used = true
		} else {
			w.buf = append(w.buf, p.rest...)
		}
	}
	w.atLineStart = false
}

// sync emits the codes that turn w.shown into st. next is the first byte of
// the text that follows, so a colour code cannot swallow its digits.
func (w *ircWriter) sync(st ircStyle, next byte) {
	colorCode := ""
	if st.fg != w.shown.fg || st.bg != w.shown.bg {
		switch {
		case st.fg < 0 && st.bg < 0:
			colorCode = "\x03"
		case st.bg < 0:
			colorCode = "\x03" + twoDigits(st.fg)
		default:
			fg := st.fg
			if fg < 0 {
				fg = 99
			}
			colorCode = "\x03" + twoDigits(fg) + "," + twoDigits(st.bg)
		}
		w.buf = append(w.buf, colorCode...)
	}
	toggles := len(w.buf)
	toggle := func(want, have bool, code byte) {
		if want != have {
			w.buf = append(w.buf, code)
		}
	}
	toggle(st.bold, w.shown.bold, codeBold)
	toggle(st.italic, w.shown.italic, codeItalic)
	toggle(st.underline, w.shown.underline, codeUnderline)
	toggle(st.strike, w.shown.strike, codeStrike)
	toggle(st.mono, w.shown.mono, codeMonospace)
	if colorCode != "" && len(w.buf) == toggles {
		// "\x03" before a digit or comma, or "\x03NN" before a comma,
		// would read the text as part of the code: separate them with
		// a no-op pair of bold toggles.
		bare := colorCode == "\x03"
		if (bare && (isDigit(next) || next == ',')) || (len(colorCode) == 3 && next == ',') {
			w.buf = append(w.buf, codeBold, codeBold)
		}
	}
	w.shown = st
	w.shown.spoiler, w.shown.pre = false, false
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// text writes s (already cleaned) in style st, collapsing whitespace unless
// st.pre.
func (w *ircWriter) text(s string, st ircStyle) {
	if st.pre {
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.newline()
			}
			w.raw(line, st)
		}
		return
	}
	if w.atLineStart || w.lastSpace {
		s = strings.TrimLeft(s, " ")
	}
	w.raw(s, st)
	w.lastSpace = s != "" && s[len(s)-1] == ' ' || (s == "" && w.lastSpace)
}

// raw writes s at the current position without whitespace handling.
func (w *ircWriter) raw(s string, st ircStyle) {
	if s == "" {
		return
	}
	if w.atLineStart {
		w.writePrefixes()
	}
	w.sync(st, s[0])
	w.buf = append(w.buf, s...)
	w.lastSpace = false
}

// cleanText drops C0 controls (other than \t and \n) from an HTML text node
// and, unless pre, collapses all whitespace runs to one space.
func cleanText(s string, pre bool) string {
	s = cleanPlain(s)
	if pre {
		return strings.ReplaceAll(s, "\t", "    ")
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\f' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// isBlock reports whether the element starts and ends a line.
func isBlock(tag string) bool {
	switch tag {
	case "p", "div", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3",
		"h4", "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "hr",
		"details", "summary", "section", "article", "header", "footer",
		"figure", "figcaption", "dl", "dt", "dd", "center", "address":
		return true
	}
	return false
}

func (w *ircWriter) children(n *html.Node, st ircStyle) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.node(c, st)
	}
}

func (w *ircWriter) node(n *html.Node, st ircStyle) {
	switch n.Type {
	case html.TextNode:
		w.text(cleanText(n.Data, st.pre), st)
		return
	case html.ElementNode:
	case html.DocumentNode:
		w.children(n, st)
		return
	default:
		return
	}
	tag := n.Data
	switch tag {
	case "mx-reply", "script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math":
		return
	case "br":
		w.newline()
		return
	case "hr":
		w.ensureLine()
		w.raw("---", st)
		w.newline()
		return
	case "img":
		alt, _ := attr(n, "alt")
		if alt == "" {
			alt, _ = attr(n, "title")
		}
		w.text(cleanText(alt, false), st)
		return
	case "input":
		if typ, _ := attr(n, "type"); typ == "checkbox" {
			if _, checked := attr(n, "checked"); checked {
				w.text("[x] ", st)
			} else {
				w.text("[ ] ", st)
			}
		}
		return
	case "a":
		w.link(n, st)
		return
	}

	outer := st
	switch tag {
	case "b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th", "dt":
		st.bold = true
	case "i", "em", "cite", "dfn", "var":
		st.italic = true
	case "u", "ins":
		st.underline = true
	case "s", "del", "strike":
		st.strike = true
	case "code", "tt", "kbd", "samp":
		st.mono = true
	case "pre":
		st.mono, st.pre = true, true
	case "span", "font":
		w.color(n, &st)
	}

	block := isBlock(tag)
	if block {
		w.ensureLine()
	}
	switch tag {
	case "blockquote":
		w.prefixes = append(w.prefixes, &linePrefix{first: "> ", rest: "> "})
		w.children(n, st)
		w.prefixes = w.prefixes[:len(w.prefixes)-1]
	case "ul", "ol":
		w.list(n, st)
	case "td", "th":
		if prevElement(n) != nil {
			w.text(" | ", outer)
		}
		w.children(n, st)
	default:
		w.children(n, st)
	}
	if block {
		w.ensureLine()
	}
}

func prevElement(n *html.Node) *html.Node {
	for p := n.PrevSibling; p != nil; p = p.PrevSibling {
		if p.Type == html.ElementNode {
			return p
		}
	}
	return nil
}

// color applies the colour attributes of a <span> or <font>, and spoilers.
func (w *ircWriter) color(n *html.Node, st *ircStyle) {
	if _, ok := attr(n, "data-mx-spoiler"); ok && n.Data == "span" {
		st.spoiler = true
		st.fg, st.bg = 1, 1
		return
	}
	if st.spoiler {
		return
	}
	fg, ok := attr(n, "data-mx-color")
	if !ok && n.Data == "font" {
		fg, ok = attr(n, "color")
	}
	if ok {
		if c := parseCSSColor(fg); c.set {
			st.fg = nearestMIRC(c)
		}
	}
	if bg, ok := attr(n, "data-mx-bg-color"); ok {
		if c := parseCSSColor(bg); c.set {
			st.bg = nearestMIRC(c)
		}
	}
}

// list writes the <li> children of a <ul> or <ol>.
func (w *ircWriter) list(n *html.Node, st ircStyle) {
	ordered := n.Data == "ol"
	num := 1
	if s, ok := attr(n, "start"); ok && ordered {
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && v > -1e9 && v < 1e9 {
			num = v
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode || c.Data != "li" {
			w.node(c, st)
			continue
		}
		marker := "* "
		if ordered {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		w.ensureLine()
		p := &linePrefix{first: marker, rest: strings.Repeat(" ", len(marker))}
		w.prefixes = append(w.prefixes, p)
		w.children(c, st)
		if !p.used {
			// An empty item still shows its marker.
			w.raw(" ", st)
		}
		w.prefixes = w.prefixes[:len(w.prefixes)-1]
		w.ensureLine()
	}
}

// link writes an <a>: a pill as the IRC nick, another link as its text
// followed by " (href)" unless the text already is the href.
func (w *ircWriter) link(n *html.Node, st ircStyle) {
	href, _ := attr(n, "href")
	href = strings.TrimSpace(cleanText(href, false))
	if href == "" {
		w.children(n, st)
		return
	}
	if uri, err := id.ParseMatrixURIOrMatrixToURL(href); err == nil && uri != nil && uri.Sigil1 == '@' && uri.Sigil2 == 0 {
		if w.pill != nil {
			if nick, ok := w.pill(uri.UserID()); ok {
				if nick = strings.TrimSpace(cleanText(nick, false)); nick != "" {
					w.text(nick, st)
					return
				}
			}
		}
		w.children(n, st)
		return
	}
	text := strings.TrimSpace(cleanText(textContent(n), false))
	if text == "" {
		w.text(href, st)
		return
	}
	w.children(n, st)
	if text != href &&
		text != strings.TrimPrefix(href, "mailto:") &&
		text != strings.TrimPrefix(href, "http://") &&
		text != strings.TrimPrefix(href, "https://") {
		w.text(" ("+href+")", st)
	}
}

// textContent is the concatenated text of n's descendants.
func textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}
