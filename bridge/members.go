package bridge

import (
	"strings"

	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// A channel's member list is kept by one login only: the channel's lead (shared.go), which passes
// on every member's change and syncs the whole list. Every other login in the channel keeps only
// its own entry (its prefix modes decide what it may do). Otherwise thirty logins in a channel
// would keep thirty copies of its list. What another login needs of a list it does not keep (is a
// nick on the channel, with which modes) it reads from the lead's (memberOf).
//
// The lead changes when a login with a lower ID joins, or the lead leaves or disconnects. A login
// that stops leading drops the others; one that starts leading asks the server for NAMES, unless
// its own first reply is still to come, and resyncs the portal at the reply's end.

// addMember records a member of a channel, within limits.max_nicks members per channel (a
// member beyond it is not tracked: it still speaks, as a ghost, but is not listed). Another
// login's member list is not kept (see above). Call it with cl.mu held.
func (cl *IRCClient) addMember(ch *channelState, m *member) {
	if !ch.others && !cl.isMe(m.Nick) {
		return
	}
	folded := cl.fold(m.Nick)
	if _, known := ch.Members[folded]; !known && len(ch.Members) >= cl.connector.limits().MaxNicks {
		cl.limited(metrics.LimitNicks)
		return
	}
	m.Nick = intern(m.Nick)
	ch.Members[intern(folded)] = m
}

// keepOwnEntryOnly drops every member but the login itself. Call it with cl.mu held.
func (cl *IRCClient) keepOwnEntryOnly(ch *channelState) {
	me := cl.fold(cl.ircConn.Nick())
	own := ch.Members[me]
	ch.Members = make(map[string]*member, 1) // a map never shrinks: a new one gives the memory back
	if own != nil {
		ch.Members[me] = own
	}
	ch.complete = false
}

func (cl *IRCClient) handleNames(channel, names string) {
	prefixModes, prefixSymbols := cl.ircConn.Prefix()
	cl.withChannel(channel, func(ch *channelState) {
		if !ch.listing {
			ch.listing, ch.fullReply = true, ch.others
		}
		for _, entry := range strings.Fields(names) {
			nick, modes := parseNamesEntry(entry, prefixModes, prefixSymbols)
			if nick != "" {
				cl.addMember(ch, &member{Nick: nick, Modes: modes})
			}
		}
	})
}

func (cl *IRCClient) handleEndOfNames(channel string) {
	var firstSync, resync bool
	ok := cl.withChannel(channel, func(ch *channelState) {
		firstSync = !ch.synced
		ch.synced = true
		ch.complete = ch.others && (ch.fullReply || !ch.listing)
		ch.listing, ch.fullReply = false, false
		if ch.asked && ch.complete {
			ch.asked, resync = false, true
		}
	})
	if !ok || !firstSync && !resync {
		return
	}
	if firstSync {
		defer cl.requestHistory(channel) // after the resync below is queued: the portal exists first
	}
	cl.queue(cl.newNamesResync(channel)) // resync.go
}

// tellLeadChanges tells each login whose lead of a channel may have changed. Call it with no lock
// held: each takes its own.
func tellLeadChanges(changed []leadChange) {
	for _, c := range changed {
		c.cl.leadChanged(c.channel)
	}
}

// leadChanged follows a change of the channel's (folded) lead: a login that stops leading drops
// the other members, one that starts leading asks for NAMES unless its first reply, which it will
// now read whole, is still to come.
func (cl *IRCClient) leadChanged(folded string) {
	cl.mu.Lock()
	ch := cl.channels[folded]
	if ch == nil {
		cl.mu.Unlock()
		return
	}
	lead := cl.connector.shared.leads(cl, folded)
	if lead == ch.others {
		cl.mu.Unlock()
		return
	}
	ch.others = lead
	ask := false
	switch {
	case !lead:
		ch.fullReply = false
		cl.keepOwnEntryOnly(ch)
	case ch.listing || ch.synced:
		ch.asked, ask = true, true
	}
	name := ch.Name
	cl.mu.Unlock()
	if ask {
		if err := cl.ircConn.Send("NAMES", name); err != nil {
			cl.log.Debug().Err(err).Str("channel", name).Msg("Failed to ask for the members of a channel this login now leads")
		}
	}
}

// memberOf is nick's entry in a channel (a copy), as this login knows it or, for a member of a
// channel another login leads, as the lead knows it.
func (cl *IRCClient) memberOf(channel, nick string) (member, bool) {
	var m member
	found, own := false, false
	cl.withChannel(channel, func(ch *channelState) {
		own = ch.others
		if p := ch.Members[cl.fold(nick)]; p != nil {
			m, found = *p, true
		}
	})
	if found || own {
		return m, found
	}
	lead := cl.connector.shared.leadOf(cl, cl.fold(channel))
	if lead == nil {
		return m, false
	}
	// The lead's state, under its own lock (no lock of ours is held: see tellLeadChanges).
	lead.withChannel(channel, func(ch *channelState) {
		if p := ch.Members[lead.fold(nick)]; p != nil {
			m, found = *p, true
		}
	})
	return m, found
}
