package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// handleMode applies a channel MODE line: prefix modes (o, v, ...) become Matrix power levels of the
// nick each parameter names, and +k/-k keeps the login's stored key in step so that reconnects
// rejoin. The line is parsed against the server's PREFIX and CHANMODES (irc.ParseChannelModes), so
// in "+bo-v mask alice bob" alice gets op and bob loses voice: never the other way round.
func (cl *IRCClient) handleMode(msg *ircmsg.Message, at time.Time) {
	if len(msg.Params) < 2 || !cl.ircConn.IsChannel(msg.Params[0]) {
		return // user modes are not bridged
	}
	channel, by := msg.Params[0], msg.Nick()
	is := cl.ircConn.ISupport()
	changed := map[string]string{} // casefolded nick -> nick, whose prefix modes changed
	var keyChanged bool
	cl.mu.Lock()
	ch := cl.channels[cl.fold(channel)]
	for _, c := range irc.ParseChannelModes(is, msg.Params[1:]) {
		switch {
		case c.Prefix && ch != nil:
			m := ch.Members[cl.fold(c.Param)]
			if m == nil {
				continue // not a member we know of: nothing to map
			}
			m.Modes = applyPrefixMode(m.Modes, c.Mode, c.Set, is.PrefixModes)
			changed[cl.fold(m.Nick)] = m.Nick
		case c.Mode == 'k':
			keyChanged = cl.setStoredKey(channel, c.Set, c.Param) || keyChanged
		}
	}
	modes := make(map[string]string, len(changed))
	for folded := range changed {
		if ch != nil && ch.Members[folded] != nil {
			modes[folded] = ch.Members[folded].Modes
		}
	}
	cl.mu.Unlock()
	if keyChanged {
		cl.saveLogin()
	}
	if len(modes) == 0 || !cl.bridgesChannelChange(channel, by) {
		return
	}
	members := make(bridgev2.ChatMemberMap, len(modes))
	for folded, nick := range changed {
		pl := powerLevel(modes[folded])
		members.Set(bridgev2.ChatMember{
			EventSender: cl.sender(nick),
			Membership:  event.MembershipJoin,
			PowerLevel:  &pl,
		})
	}
	cl.queue(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:       bridgev2.RemoteEventChatInfoChange,
			PortalKey:  cl.channelKey(channel),
			Sender:     cl.sender(by),
			Timestamp:  at,
			LogContext: cl.logContext("mode"),
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{MemberMap: members}},
	})
}

// setStoredKey records a +k/-k on a channel this login keeps, sealed. Call it with cl.mu held; it
// reports whether the login's metadata changed.
func (cl *IRCClient) setStoredKey(channel string, set bool, key string) bool {
	entry := cl.meta.Channels[cl.fold(channel)]
	if entry == nil {
		return false
	}
	if !set {
		changed := entry.Key != ""
		entry.Key = ""
		return changed
	}
	if key == "" || key == "*" {
		return false // some servers hide the key from non-ops
	}
	sealed, err := cl.connector.sealSecret(key, string(cl.loginID), cl.meta)
	if err != nil {
		cl.log.Err(err).Msg("Failed to seal a channel key")
		return false
	}
	entry.Key = sealed
	return true
}

// applyPrefixMode adds or removes one prefix mode letter, keeping the letters in PREFIX order
// (highest first).
func applyPrefixMode(modes string, mode byte, set bool, order string) string {
	has := strings.IndexByte(modes, mode) >= 0
	if has == set {
		return modes
	}
	if !set {
		return strings.Replace(modes, string(mode), "", 1)
	}
	var b strings.Builder
	for i := 0; i < len(order); i++ {
		if order[i] == mode || strings.IndexByte(modes, order[i]) >= 0 {
			b.WriteByte(order[i])
		}
	}
	return b.String()
}

// handleInvite tells the user when someone invites their nick to a channel (to a +i channel, say);
// joining stays the user's choice. Invites of other nicks (invite-notify) are not shown.
func (cl *IRCClient) handleInvite(msg *ircmsg.Message) {
	if len(msg.Params) < 2 || !cl.isMe(msg.Params[0]) {
		return
	}
	channel := msg.Params[1]
	if !cl.ircConn.IsChannel(channel) || safeArg(channel) != nil {
		return
	}
	cl.notifyUser(cl.log.WithContext(context.Background()),
		"%s: %s invited you to %s. Send `join %s %s` to join it.",
		cl.network.DisplayName(), msg.Nick(), channel, cl.network.ID, channel)
}

// handleRefused handles the server refusing a moderation action sent from Matrix
// (ERR_CHANOPRIVSNEEDED 482 "me #chan :...", ERR_USERNOTINCHANNEL 441 and ERR_USERONCHANNEL 443
// "me nick #chan :..."): the user is told why, and the portal is resynced from IRC so that the
// room shows what IRC has, not the change that did not happen.
func (cl *IRCClient) handleRefused(msg *ircmsg.Message) {
	if len(msg.Params) < 3 {
		return
	}
	channel := msg.Params[1]
	subject := channel
	if msg.Command != ircevent.ERR_CHANOPRIVSNEEDED && len(msg.Params) >= 4 {
		channel = msg.Params[2]
		subject = msg.Params[1] + " in " + channel
	}
	cl.notifyUser(cl.log.WithContext(context.Background()), "%s: %s: %s",
		cl.network.DisplayName(), subject, msg.Params[len(msg.Params)-1])
	if cl.ircConn.IsChannel(channel) {
		cl.resyncChannel(channel)
	}
}
