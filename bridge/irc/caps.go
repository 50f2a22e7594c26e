package irc

import "strings"

// wantedCaps are the capabilities we request when the server offers them.
// "sasl" is requested only when SASL credentials are configured.
var wantedCaps = []string{
	// https://ircv3.net/specs/extensions/sasl-3.1
	"sasl",
	// https://ircv3.net/specs/extensions/server-time
	"server-time",
	// https://ircv3.net/specs/extensions/message-tags
	"message-tags",
	// https://ircv3.net/specs/extensions/echo-message
	"echo-message",
	// https://ircv3.net/specs/extensions/multi-prefix
	"multi-prefix",
	// https://ircv3.net/specs/extensions/batch
	"batch",
	// https://ircv3.net/specs/extensions/account-tag
	"account-tag",
	// https://ircv3.net/specs/extensions/extended-join
	"extended-join",
	// https://ircv3.net/specs/extensions/chghost
	"chghost",
	// https://ircv3.net/specs/extensions/capability-negotiation#cap-notify
	"cap-notify",
	// https://ircv3.net/specs/extensions/userhost-in-names
	"userhost-in-names",
	// https://ircv3.net/specs/extensions/invite-notify
	"invite-notify",
	// https://ircv3.net/specs/extensions/away-notify
	"away-notify",
	// https://ircv3.net/specs/extensions/account-notify
	"account-notify",
	// https://ircv3.net/specs/extensions/setname
	"setname",
	// https://ircv3.net/specs/extensions/labeled-response
	"labeled-response",
	// https://ircv3.net/specs/extensions/message-redaction
	"draft/message-redaction",
	// https://ircv3.net/specs/extensions/read-marker
	"draft/read-marker",
	// https://ircv3.net/specs/extensions/multiline
	"draft/multiline",
	// https://ircv3.net/specs/extensions/relaymsg (relay mode: relayed Matrix users as spoofed nicks)
	"draft/relaymsg",
	// https://ircv3.net/specs/extensions/chathistory
	"draft/chathistory",
	// https://ircv3.net/specs/extensions/chathistory (companion draft
	// capability from ergo: CHATHISTORY also returns non-PRIVMSG events)
	"draft/event-playback",
}

// parseCapList parses "a b=c -d" into names and values. Names keep a
// leading '-' (used by ACK to disable a capability).
func parseCapList(s string) map[string]string {
	caps := map[string]string{}
	for _, tok := range strings.Fields(s) {
		name, value, _ := strings.Cut(tok, "=")
		caps[name] = value
	}
	return caps
}

// capsToRequest returns the wanted capabilities among offered, in
// wantedCaps order, skipping those already enabled or refused.
func capsToRequest(offered map[string]string, enabled map[string]string, refused map[string]bool, sasl bool) []string {
	var req []string
	for _, name := range wantedCaps {
		if name == "sasl" && !sasl {
			continue
		}
		if _, ok := offered[name]; !ok {
			continue
		}
		if _, ok := enabled[name]; ok || refused[name] {
			continue
		}
		req = append(req, name)
	}
	return req
}

// chunkCaps splits caps into space-joined groups short enough for one
// "CAP REQ :..." line.
func chunkCaps(caps []string) []string {
	const maxLen = 400
	var out []string
	var cur strings.Builder
	for _, c := range caps {
		if cur.Len() > 0 && cur.Len()+1+len(c) > maxLen {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(c)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// saslMechanismOffered reports whether the value of the sasl capability
// ("PLAIN,EXTERNAL", or empty when the server does not list mechanisms)
// allows mech.
func saslMechanismOffered(value, mech string) bool {
	if value == "" {
		return true
	}
	for _, m := range strings.Split(value, ",") {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}
