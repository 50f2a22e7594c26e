package format

import (
	"html"
	"strings"
)

// ToMatrix turns the text of one IRC message (with mIRC formatting codes)
// into a Matrix body and HTML formatted_body.
//
// body is the text with all formatting codes removed. formatted is "" when
// nothing in the message is formatted and nothing is a mention; otherwise it
// is HTML in which every character from IRC is escaped (&, <, >, ", ') before
// any tag is added, and tags are always balanced. Bold becomes <strong>,
// italic <em>, underline <u>, strikethrough <del>, monospace <code>, colours
// <font color data-mx-color data-mx-bg-color> and '\n' (from a draft/multiline
// batch) <br>. Reverse video swaps foreground and background (white on black
// when both are default). URLs stay text; clients linkify them.
//
// A whole word for which mention returns ok becomes a pill,
// <a href="https://matrix.to/#/@user:server">displayname</a>, in formatted;
// body keeps the nick. Words in monospace text, inside URLs or spanning a
// formatting change are not mentions. mention may be nil.
//
// Invalid UTF-8 is replaced with U+FFFD, NUL bytes are dropped and "\r\n"
// and lone '\r' become '\n', in body and formatted alike (an HTML parser
// would turn '\r' into '\n' anyway).
func ToMatrix(text string, mention MentionFunc) (body, formatted string) {
	text = strings.ToValidUTF8(strings.ReplaceAll(text, "\x00", ""), "\uFFFD")
	if strings.Contains(text, "\r") {
		text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	}

	type run struct {
		start, end int // in body
		st         style
	}
	var runs []run
	var bb strings.Builder
	bb.Grow(len(text))
	scan(text, func(t string, st style) {
		runs = append(runs, run{bb.Len(), bb.Len() + len(t), st})
		bb.WriteString(t)
	})
	body = bb.String()

	finder := &mentionFinder{mention: mention}
	spans := finder.find(body)

	var w htmlWriter
	for _, r := range runs {
		pos := r.start
		for len(spans) > 0 && spans[0].start < r.end {
			sp := spans[0]
			spans = spans[1:]
			if sp.start < r.start || sp.end > r.end || r.st.mono {
				continue // spans a formatting change, or in code
			}
			w.text(body[pos:sp.start], r.st)
			w.mention(sp, body[sp.start:sp.end], r.st)
			pos = sp.end
		}
		w.text(body[pos:r.end], r.st)
	}
	if !w.tagged {
		return body, ""
	}
	w.sync(style{})
	return body, w.b.String()
}

// htmlTag is one open element in htmlWriter's stack.
type htmlTag struct {
	name  string
	attrs string // already escaped, with a leading space
}

// htmlWriter renders styled text runs as HTML, keeping a stack of open tags
// in a fixed nesting order so that tags are always balanced.
type htmlWriter struct {
	b      strings.Builder
	stack  []htmlTag
	tagged bool // a formatting tag or a pill was written
}

// wantedTags lists the elements that render st, outermost first.
func wantedTags(st style) []htmlTag {
	var tags []htmlTag
	fg, bg := st.fg, st.bg
	if st.reverse {
		fg, bg = bg, fg
		if !fg.set {
			fg = reverseDefaultFG
		}
		if !bg.set {
			bg = reverseDefaultBG
		}
	}
	if fg.set || bg.set {
		var a strings.Builder
		if fg.set {
			a.WriteString(` color="` + fg.html() + `" data-mx-color="` + fg.html() + `"`)
		}
		if bg.set {
			a.WriteString(` data-mx-bg-color="` + bg.html() + `"`)
		}
		tags = append(tags, htmlTag{"font", a.String()})
	}
	if st.bold {
		tags = append(tags, htmlTag{name: "strong"})
	}
	if st.italic {
		tags = append(tags, htmlTag{name: "em"})
	}
	if st.underline {
		tags = append(tags, htmlTag{name: "u"})
	}
	if st.strike {
		tags = append(tags, htmlTag{name: "del"})
	}
	if st.mono {
		tags = append(tags, htmlTag{name: "code"})
	}
	return tags
}

// sync closes and opens tags so that the open ones render st.
func (w *htmlWriter) sync(st style) {
	want := wantedTags(st)
	k := 0
	for k < len(w.stack) && k < len(want) && w.stack[k] == want[k] {
		k++
	}
	for i := len(w.stack) - 1; i >= k; i-- {
		w.b.WriteString("</" + w.stack[i].name + ">")
	}
	w.stack = w.stack[:k]
	for _, t := range want[k:] {
		w.b.WriteString("<" + t.name + t.attrs + ">")
		w.stack = append(w.stack, t)
		w.tagged = true
	}
}

// text writes escaped text in style st; '\n' becomes <br>.
func (w *htmlWriter) text(t string, st style) {
	if t == "" {
		return
	}
	w.sync(st)
	for {
		line, rest, more := strings.Cut(t, "\n")
		w.b.WriteString(html.EscapeString(line))
		if !more {
			return
		}
		w.b.WriteString("<br>")
		t = rest
	}
}

// mention writes a pill for sp, whose text in the body is nick.
func (w *htmlWriter) mention(sp mentionSpan, nick string, st style) {
	w.sync(st)
	name := sp.displayname
	if name == "" {
		name = nick
	}
	w.b.WriteString(`<a href="` + html.EscapeString(sp.userID.URI().MatrixToURL()) + `">` +
		html.EscapeString(name) + `</a>`)
	w.tagged = true
}
