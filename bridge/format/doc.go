// Package format converts message text between IRC and Matrix.
//
// IRC to Matrix: [ToMatrix] parses mIRC formatting codes (bold \x02, italic
// \x1d, underline \x1f, strikethrough \x1e, monospace \x11, colours \x03 and
// \x04, reverse \x16, reset \x0f) and produces a plain body plus, when there is
// anything to format, Matrix HTML (org.matrix.custom.html). Every character
// that came from IRC is HTML-escaped before any tag is added, so IRC users can
// never inject markup (docs/security.md). Nicks that the caller recognises
// become Matrix pills.
//
// Matrix to IRC: [ToIRC] walks the Matrix HTML with golang.org/x/net/html and
// emits mIRC codes. Pills become IRC nicks through the caller's [PillFunc].
// Control characters typed by Matrix users (including CTCP's \x01 and raw mIRC
// codes) are dropped, and the result never contains \r or \x00.
//
// Splitting: [Split] turns text into lines that are safe to put in one IRC
// PRIVMSG/NOTICE each: no CR, LF or NUL, at most maxBytes bytes, broken at
// spaces or UTF-8 rune boundaries, and without losing a byte.
//
// Why our own HTML walker rather than mautrix's format.HTMLParser: that parser
// trims whitespace at the edges of every inline element ("<b>a </b>b" loses
// the space), renders <mx-reply> content, and its converters see only tag
// names, so nested colours and nested bold cannot be restored correctly with
// toggle-style mIRC codes. We still use mautrix's id.ParseMatrixURIOrMatrixToURL
// for pills and id.UserID.URI().MatrixToURL() for mention links. irc-go's
// ircfmt does not know the \x04 hex colour code, so the mIRC parser is ours too.
package format
