package irc

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"
)

// maxLineLen is the limit for a line without tags, CRLF included.
const maxLineLen = 512

// maxTagSection is the limit for the tag section including '@' and the
// trailing space. Clients may send at most 4094 bytes of tag data
// (https://ircv3.net/specs/extensions/message-tags#size-limit); ircmsg
// enforces that in LineBytesStrict(true, ...), which stays well within the
// 8191-byte total.
const maxTagSection = ircmsg.MaxlenTags

// validCommand reports whether command is non-empty letters or digits.
func validCommand(command string) bool {
	if command == "" || len(command) > 32 {
		return false
	}
	for i := 0; i < len(command); i++ {
		c := command[i]
		if !(('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}

func hasForbiddenByte(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// validTagName mirrors the IRCv3 naming rules
// (https://ircv3.net/specs/extensions/message-tags#rules-for-naming-message-tags).
func validTagName(name string) bool {
	name = strings.TrimPrefix(name, "+")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(('-' <= c && c <= '/') || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')) {
			return false
		}
	}
	return true
}

// encodeLine validates and serialises one outgoing line, CRLF included.
// limit is the maximum length of the line without tags (0 means 512).
func encodeLine(tags map[string]string, command string, params []string, limit int) ([]byte, error) {
	if limit <= 0 || limit > maxLineLen {
		limit = maxLineLen
	}
	if !validCommand(command) {
		return nil, ErrUnsafeParam
	}
	for i, p := range params {
		if hasForbiddenByte(p) {
			return nil, ErrUnsafeParam
		}
		if i < len(params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			return nil, ErrUnsafeParam
		}
	}
	for name, value := range tags {
		// CR and LF in values are escaped by ircmsg; NUL cannot be escaped.
		if !validTagName(name) || strings.IndexByte(value, 0) >= 0 || !utf8.ValidString(value) {
			return nil, ErrUnsafeParam
		}
	}
	msg := ircmsg.MakeMessage(tags, "", command, params...)
	line, err := msg.LineBytesStrict(true, limit)
	switch {
	case err == nil:
	case errors.Is(err, ircmsg.ErrorBodyTooLong), errors.Is(err, ircmsg.ErrorTagsTooLong):
		return nil, ErrLineTooLong
	default:
		return nil, ErrUnsafeParam
	}
	if checkLine(line) != nil {
		return nil, ErrUnsafeParam
	}
	return line, nil
}

var errBadLine = errors.New("irc: refusing to write malformed line")

// checkLine is the writer's last check on a serialised line: it must end in
// the only CRLF, contain no other CR, LF or NUL, and the part after the tag
// section must be at most 512 bytes (the tag section at most 8191).
func checkLine(line []byte) error {
	if len(line) < 3 || !bytes.HasSuffix(line, []byte("\r\n")) {
		return errBadLine
	}
	body := line[:len(line)-2]
	if bytes.IndexByte(body, '\r') >= 0 || bytes.IndexByte(body, '\n') >= 0 || bytes.IndexByte(body, 0) >= 0 {
		return errBadLine
	}
	rest := line
	if rest[0] == '@' {
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 || sp+1 > maxTagSection {
			return errBadLine
		}
		rest = rest[sp+1:]
	}
	if len(rest) > maxLineLen || len(rest) < 3 {
		return errBadLine
	}
	return nil
}
