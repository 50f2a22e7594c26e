package bridge

import (
	"strconv"
	"strings"
	"unicode"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/format"
)

// Relay mode: a room admin runs bridgev2's `set-relay` in a portal, and Matrix users there without
// a login speak through that login's connection. sealbridge tells bridgev2 it formats relayed
// messages itself (RoomFeatures.PerMessageProfileRelay), so that they read the way IRC relays
// always have:
//
//   - where the server offers draft/relaymsg (https://ircv3.net/specs/extensions/relaymsg) and the
//     relay is a channel operator (servers restrict RELAYMSG to them), as their own spoofed nick:
//     RELAYMSG #chan erin/m :text;
//   - otherwise from the relay's nick with a prefix: "<erin> text", "* erin waves".

const (
	// relayNameBytes bounds the name shown for a relayed user.
	relayNameBytes = 32
	// relayNickSuffix marks a RELAYMSG nick as coming from Matrix (after the server's separator).
	relayNickSuffix = "m"
)

// relayName is how a relayed Matrix user is shown on IRC: their display name in the room (or user
// ID), as bridgev2 disambiguates it, on one line.
func relayName(o *bridgev2.OrigSender) string {
	name := o.DisambiguatedName
	if name == "" {
		name = o.UserID.String()
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '<' || r == '>' {
			return -1
		}
		return r
	}, name)
	if name = format.OneLine(name, relayNameBytes); name == "" {
		name = format.OneLine(o.UserID.String(), relayNameBytes)
	}
	return name
}

// relayNick turns a relay name into a RELAYMSG nick: only characters valid in nicks, then the
// server's first nickname separator and the Matrix marker; "" when nothing usable is left.
func relayNick(name, separators string, maxLen int) string {
	if separators == "" {
		separators = "/"
	}
	var b strings.Builder
	for _, r := range name {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_[]\\`^{}|", r)) {
			b.WriteRune(r)
		}
	}
	nick := b.String()
	if maxLen <= 0 || maxLen > 30 {
		maxLen = 30
	}
	if room := maxLen - 1 - len(relayNickSuffix); len(nick) > room {
		nick = nick[:max(room, 0)]
	}
	if nick == "" {
		return ""
	}
	return nick + separators[:1] + relayNickSuffix
}

// relayVia is how a relayed message goes out: spoof is the RELAYMSG nick ("" for a prefixed line).
func (cl *IRCClient) relayVia(target string, o *bridgev2.OrigSender) (spoof string) {
	if !cl.ircConn.HasCap("draft/relaymsg") || !cl.ircConn.IsChannel(target) {
		return ""
	}
	cl.mu.Lock()
	ch := cl.channels[cl.fold(target)]
	var modes string
	if ch != nil {
		if m := ch.Members[cl.fold(cl.ircConn.Nick())]; m != nil {
			modes = m.Modes
		}
	}
	cl.mu.Unlock()
	if powerLevel(modes) < 50 {
		return "" // not a channel operator: the server would refuse RELAYMSG
	}
	nicklenValue, _ := cl.ircConn.ISupportValue("NICKLEN")
	nicklen, _ := strconv.Atoi(nicklenValue)
	separators, _ := cl.ircConn.CapValue("draft/relaymsg")
	return relayNick(relayName(o), separators, nicklen)
}

// relayPrefix puts the relayed user's name in front of the text; an emote becomes "* name text"
// in a plain message, since a CTCP ACTION would show the relay's nick instead.
func relayPrefix(o *bridgev2.OrigSender, msgType event.MessageType, text string) string {
	name := relayName(o)
	if msgType == event.MsgEmote {
		return "* " + name + " " + text
	}
	return "<" + name + "> " + text
}
