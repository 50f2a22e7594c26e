package irc

import "strings"

// Casefold folds s according to an ISUPPORT CASEMAPPING value, to lower case
// like servers do (https://modern.ircdocs.horse/#casemapping-parameter):
//
//   - "ascii": A-Z -> a-z;
//   - "rfc1459": also [ \ ] ^ -> { | } ~ (so "#Foo[" and "#foo{" are one);
//   - "rfc1459-strict": also [ \ ] -> { | } but not ^ and ~.
//
// Unknown or empty mappings are treated as rfc1459.
func Casefold(mapping, s string) string {
	// last is the highest byte in '[' .. '^' that folds by +32.
	var last byte
	switch strings.ToLower(mapping) {
	case "ascii":
		last = 0
	case "rfc1459-strict", "strict-rfc1459":
		last = ']'
	default:
		last = '^'
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('[' <= c && c <= last) {
			if b == nil {
				b = []byte(s)
			}
			b[i] = c + ('a' - 'A')
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}
