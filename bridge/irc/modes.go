package irc

import "strings"

// ModeChange is one mode letter set or unset by a MODE line, with its parameter when the mode
// takes one.
type ModeChange struct {
	Set   bool
	Mode  byte
	Param string
	// Prefix is set for a membership prefix mode (o, v, ...): Param is then a nick.
	Prefix bool
}

// ChanModes is the CHANMODES token split into its four types
// (https://modern.ircdocs.horse/#chanmodes-parameter): A list modes (always a parameter), B
// (always a parameter), C (a parameter when set only), D (never a parameter).
type ChanModes struct{ A, B, C, D string }

// ChanModes returns the server's CHANMODES, or the RFC 2811 modes when it sent none.
func (is ISupport) ChanModes() ChanModes {
	v, ok := is.Raw["CHANMODES"]
	if !ok {
		return ChanModes{A: "beI", B: "k", C: "l", D: "imnpst"}
	}
	parts := strings.SplitN(v, ",", 5)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	return ChanModes{A: parts[0], B: parts[1], C: parts[2], D: parts[3]}
}

// ParseChannelModes parses the mode string and parameters of a channel MODE line (the
// parameters after the channel, e.g. ["+ov-v", "alice", "bob", "carol"]) against the server's
// PREFIX and CHANMODES, so that each parameter goes to the mode that takes it. A mode the server
// did not announce is taken as parameterless (type D), which is what ircdocs recommends; a mode
// that needs a parameter which is missing is dropped, never given another mode's parameter.
func ParseChannelModes(is ISupport, params []string) []ModeChange {
	if len(params) == 0 {
		return nil
	}
	cm := is.ChanModes()
	args := params[1:]
	var out []ModeChange
	set := true
	for i := 0; i < len(params[0]); i++ {
		c := params[0][i]
		switch c {
		case '+':
			set = true
			continue
		case '-':
			set = false
			continue
		}
		change := ModeChange{Set: set, Mode: c}
		prefix := strings.IndexByte(is.PrefixModes, c) >= 0
		needsParam := prefix ||
			strings.IndexByte(cm.A, c) >= 0 ||
			strings.IndexByte(cm.B, c) >= 0 ||
			(set && strings.IndexByte(cm.C, c) >= 0)
		if needsParam {
			if len(args) == 0 {
				// A list mode with no parameter is a query (MODE #c b); anything else is malformed.
				continue
			}
			change.Param, args = args[0], args[1:]
			change.Prefix = prefix
		}
		out = append(out, change)
	}
	return out
}
