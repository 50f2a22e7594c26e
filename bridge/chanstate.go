package bridge

import (
	"strings"
	"time"
	"unique"
)

// channelState is what one connection knows of a channel it is in: its name as the server spells
// it, its topic, and its members with their prefix modes (only its own entry unless it leads the
// channel: members.go). It is rebuilt on every connection (JOIN, NAMES, TOPIC) and guarded by
// IRCClient.mu.
type channelState struct {
	Name    string
	Topic   string
	Members map[string]*member // by casefolded nick
	// synced is set after the first RPL_ENDOFNAMES.
	synced bool
	// others: this login leads the channel and keeps its other members. listing: a NAMES reply is
	// being read, and fullReply whether it began while others was set. complete: the last NAMES
	// reply was read whole with others set, so Members lists everyone. asked: a NAMES was sent on
	// taking the lead, and its end resyncs the portal.
	others, listing, fullReply, complete, asked bool
	// Joined is when this connection's JOIN was seen: what was said before, it did not see.
	Joined time.Time
}

type member struct {
	Nick  string
	Modes string // prefix mode letters, highest first (e.g. "ov")
}

// intern returns the one copy of s that the whole bridge keeps while anything uses it: the logins
// sharing a channel each keep its member list, and would otherwise each hold their own copies of
// the same nicks (a copy is dropped once nothing refers to it).
func intern(s string) string { return unique.Make(s).Value() }

func newChannelState(name string) *channelState {
	return &channelState{Name: name, Members: make(map[string]*member)}
}

// parseNamesEntry splits a RPL_NAMREPLY entry ("@+nick" or "@nick!user@host" with
// userhost-in-names) into the nick and its prefix mode letters, using ISUPPORT PREFIX.
func parseNamesEntry(entry, prefixModes, prefixSymbols string) (nick, modes string) {
	i := 0
	var b strings.Builder
	for i < len(entry) {
		idx := strings.IndexByte(prefixSymbols, entry[i])
		if idx < 0 || idx >= len(prefixModes) {
			break
		}
		b.WriteByte(prefixModes[idx])
		i++
	}
	nick = entry[i:]
	if bang := strings.IndexByte(nick, '!'); bang >= 0 {
		nick = nick[:bang]
	}
	return nick, b.String()
}

// powerLevel maps prefix modes to Matrix power levels: owner (q) and admin (a) 95, so that the bridge
// bot (100) keeps control of the room; op 50, halfop 25, voice 10.
func powerLevel(modes string) int {
	switch {
	case strings.ContainsAny(modes, "qa"):
		return 95
	case strings.ContainsRune(modes, 'o'):
		return 50
	case strings.ContainsRune(modes, 'h'):
		return 25
	case strings.ContainsRune(modes, 'v'):
		return 10
	}
	return 0
}
