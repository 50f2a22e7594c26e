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

// OnMessage dispatches one line from the server. It runs on the connection's reader goroutine, in
// order; it only updates state and queues remote events, which bridgev2 handles per portal.
func (cl *IRCClient) OnMessage(c *irc.Client, msg *ircmsg.Message, at time.Time) {
	if cl.holdEarly(msg, at) {
		return // still inside the login flow: handled once the login is saved (attach)
	}
	cl.handleLine(msg, at)
}

// handleLine dispatches one IRC line to its handler.
func (cl *IRCClient) handleLine(msg *ircmsg.Message, at time.Time) {
	taken := cl.feedCollectors(msg) // answers to commands a user ran (collect.go)
	if msg.Command == "BATCH" {
		if cl.openMultiline(msg, at) {
			return
		}
		if len(msg.Params) > 0 && strings.HasPrefix(msg.Params[0], "-") && cl.closeMultiline(msg.Params[0][1:]) {
			return
		}
		cl.trackBatch(msg)
		return
	}
	if cl.addMultiline(msg) {
		return // one line of a multiline message: it goes on with the batch's end
	}
	if cl.fromHistory(msg) && msg.Command != "PRIVMSG" && msg.Command != "NOTICE" {
		return // history replays messages only, never joins, parts, modes or typing
	}
	switch msg.Command {
	case "PRIVMSG", "NOTICE":
		cl.handleMessage(msg, at)
	case "JOIN":
		cl.handleJoin(msg, at)
	case "PART":
		if len(msg.Params) >= 1 {
			cl.handleLeave(msg.Nick(), msg.Params[0], "", param(msg, 1), at)
		}
	case "KICK":
		if len(msg.Params) >= 2 {
			cl.handleLeave(msg.Params[1], msg.Params[0], msg.Nick(), param(msg, 2), at)
		}
	case "QUIT":
		cl.handleQuit(msg.Nick(), param(msg, 0), at)
	case "NICK":
		if len(msg.Params) >= 1 {
			cl.handleNick(msg.Nick(), msg.Params[0], at)
		}
	case "TAGMSG":
		cl.handleTagMsg(msg, at)
	case "REDACT":
		cl.handleRedact(msg, at)
	case "MARKREAD":
		cl.handleMarkRead(msg)
	case "CHATHISTORY":
		cl.handleHistoryTarget(msg)
	case "MODE":
		cl.handleMode(msg, at)
	case "INVITE":
		cl.handleInvite(msg)
	case "TOPIC":
		if len(msg.Params) >= 2 {
			cl.handleTopic(msg.Nick(), msg.Params[0], msg.Params[1], at)
		}
	case ircevent.RPL_AWAY: // me nick :message
		if !taken {
			cl.handleAwayReply(msg)
		}
	case "AWAY":
		cl.handleAwayNotify(msg)
	case ircevent.RPL_TOPIC: // me channel :topic
		if len(msg.Params) >= 3 {
			cl.withChannel(msg.Params[1], func(ch *channelState) { ch.Topic = msg.Params[2] })
		}
	case ircevent.RPL_NAMREPLY: // me symbol channel :names
		if len(msg.Params) >= 4 {
			cl.handleNames(msg.Params[2], msg.Params[3])
		}
	case ircevent.RPL_ENDOFNAMES: // me channel :End of /NAMES list
		if len(msg.Params) >= 2 {
			cl.handleEndOfNames(msg.Params[1])
		}
	case ircevent.ERR_NOSUCHCHANNEL, ircevent.ERR_TOOMANYCHANNELS, ircevent.ERR_CHANNELISFULL, ircevent.ERR_INVITEONLYCHAN, ircevent.ERR_BANNEDFROMCHAN, ircevent.ERR_BADCHANNELKEY, ircevent.ERR_BADCHANMASK, ircevent.ERR_NEEDREGGEDNICK, ircevent.ERR_CANNOTSENDTOCHAN:
		if labeled, _ := msg.GetTag("label"); labeled {
			return // the answer to one of our labeled lines: its sender is told (sendreport.go)
		}
		cl.handleChannelError(msg)
	case ircevent.ERR_CHANOPRIVSNEEDED, ircevent.ERR_USERNOTINCHANNEL, ircevent.ERR_USERONCHANNEL: // a moderation action from Matrix that the server refused
		cl.handleRefused(msg)
	case ircevent.ERR_UNAVAILRESOURCE: // me #channel :Retry topic change later
		if len(msg.Params) >= 3 && cl.ircConn.IsChannel(msg.Params[1]) {
			cl.retryTopic(msg.Params[1], msg.Params[2])
		}
	}
}

func (cl *IRCClient) handleJoin(msg *ircmsg.Message, at time.Time) {
	if len(msg.Params) < 1 {
		return
	}
	nick, channel := msg.Nick(), msg.Params[0]
	folded := cl.fold(channel)
	if cl.isMe(nick) {
		if !cl.admitChannel(channel, folded) {
			return
		}
		cl.mu.Lock()
		ch := newChannelState(channel)
		ch.Joined = at
		cl.channels[folded] = ch
		var changed []leadChange
		ch.others, changed = cl.connector.shared.join(cl, folded)
		_, known := cl.meta.Channels[folded]
		cl.channelEntry(folded, channel)
		cl.mu.Unlock()
		tellLeadChanges(changed)
		if !known {
			cl.saveLogin()
		}
		return // the portal is synced once NAMES has ended
	}
	cl.withChannel(channel, func(ch *channelState) {
		cl.addMember(ch, &member{Nick: nick})
	})
	if cl.bridgesMembershipOf(channel, nick) {
		cl.queueMembership(channel, nick, "", event.MembershipJoin, "", at)
	}
}

// handleLeave covers PART (by == "") and KICK (by = the kicker).
func (cl *IRCClient) handleLeave(nick, channel, by, reason string, at time.Time) {
	folded := cl.fold(channel)
	// Queued while the channel is still ours: the queue only takes events of channels we are in.
	if cl.bridgesMembershipOf(channel, nick, by) {
		cl.queueMembership(channel, nick, by, event.MembershipLeave, reason, at)
	}
	if cl.isMe(nick) {
		cl.mu.Lock()
		delete(cl.channels, folded)
		changed := cl.connector.shared.leave(cl, folded)
		_, known := cl.meta.Channels[folded]
		delete(cl.meta.Channels, folded)
		cl.mu.Unlock()
		tellLeadChanges(changed)
		if known {
			cl.saveLogin()
		}
	} else {
		cl.withChannel(channel, func(ch *channelState) { delete(ch.Members, cl.fold(nick)) })
	}
}

func (cl *IRCClient) handleQuit(nick, reason string, at time.Time) {
	if cl.isMe(nick) {
		return
	}
	for _, channel := range cl.channelsOf(nick, true) {
		if cl.bridgesMembershipOf(channel, nick) {
			cl.queueMembership(channel, nick, "", event.MembershipLeave, reason, at)
		}
	}
}

// channelsOf lists the channels nick is in, removing it from them when remove is set.
func (cl *IRCClient) channelsOf(nick string, remove bool) []string {
	folded := cl.fold(nick)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []string
	for _, ch := range cl.channels {
		if _, ok := ch.Members[folded]; ok {
			out = append(out, ch.Name)
			if remove {
				delete(ch.Members, folded)
			}
		}
	}
	return out
}

// handleNick shows a nick change as the old ghost leaving and the new one joining each channel the
// nick shares with us, with the change as the reason.
func (cl *IRCClient) handleNick(oldNick, newNick string, at time.Time) {
	if cl.isMe(oldNick) || cl.isMe(newNick) {
		// our own change (the engine tracks the live nick): keep it for reconnects
		cl.mu.Lock()
		cl.meta.Nick = newNick
		cl.mu.Unlock()
		cl.connector.shared.renamed(cl, cl.fold(newNick))
		cl.saveLogin()
	}
	var channels []string
	cl.mu.Lock()
	for _, ch := range cl.channels {
		if m := ch.Members[cl.fold(oldNick)]; m != nil {
			channels = append(channels, ch.Name)
			delete(ch.Members, cl.fold(oldNick))
			cl.addMember(ch, &member{Nick: newNick, Modes: m.Modes}) // modes follow the nick
		}
	}
	cl.mu.Unlock()
	if cl.fold(oldNick) == cl.fold(newNick) {
		return // only the case changed: same ghost
	}
	reason := "changed nick to " + newNick
	for _, channel := range channels {
		if !cl.bridgesChannelChange(channel, oldNick, newNick) {
			continue
		}
		cl.queueMembership(channel, oldNick, "", event.MembershipLeave, reason, at)
		cl.queueMembership(channel, newNick, "", event.MembershipJoin, "was "+oldNick, at)
	}
}

func (cl *IRCClient) handleTopic(nick, channel, topic string, at time.Time) {
	if cl.isMe(nick) {
		cl.topicShown(channel)
	}
	cl.withChannel(channel, func(ch *channelState) { ch.Topic = topic })
	if !cl.bridgesChannelChange(channel, nick) {
		return
	}
	cl.queue(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:       bridgev2.RemoteEventChatInfoChange,
			PortalKey:  cl.channelKey(channel),
			Sender:     cl.sender(nick),
			Timestamp:  at,
			LogContext: cl.logContext("topic"),
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Topic: &topic}},
	})
}

func (cl *IRCClient) queueMembership(channel, nick, by string, membership event.Membership, reason string, at time.Time) {
	cl.queue(cl.membershipEvent(channel, nick, by, membership, reason, at))
}

// membershipEvent is nick's membership change in channel, by someone (a kick) or by nick itself.
func (cl *IRCClient) membershipEvent(channel, nick, by string, membership event.Membership, reason string, at time.Time) bridgev2.RemoteEvent {
	// Power follows the prefix modes of whoever holds the nick now; a ghost that leaves drops to 0
	// so that the next holder of its nick does not inherit its op.
	pl := 0
	if membership == event.MembershipJoin {
		cl.withChannel(channel, func(ch *channelState) {
			if m := ch.Members[cl.fold(nick)]; m != nil {
				pl = powerLevel(m.Modes)
			}
		})
	}
	m := bridgev2.ChatMember{
		EventSender: cl.sender(nick),
		Membership:  membership,
		UserInfo:    &bridgev2.UserInfo{Name: &nick},
		PowerLevel:  &pl,
	}
	if by != "" {
		m.MemberSender = cl.sender(by)
	}
	if reason != "" {
		m.MemberEventExtra = map[string]any{"reason": reason}
	}
	return &simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:       bridgev2.RemoteEventChatInfoChange,
			PortalKey:  cl.channelKey(channel),
			Sender:     m.EventSender,
			Timestamp:  at,
			LogContext: cl.logContext("membership"),
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{
			MemberMap: bridgev2.ChatMemberMap{}.Set(m),
		}},
	}
}

// handleChannelError tells the user why a JOIN or a message to a channel failed.
func (cl *IRCClient) handleChannelError(msg *ircmsg.Message) {
	if len(msg.Params) < 2 {
		return
	}
	text := msg.Params[len(msg.Params)-1]
	cl.notifyUser(context.Background(), "%s: %s: %s", cl.network.DisplayName(), msg.Params[1], text)
	if msg.Command != ircevent.ERR_CANNOTSENDTOCHAN {
		// a channel we could not join is not rejoined on every reconnect
		folded := cl.fold(msg.Params[1])
		cl.mu.Lock()
		_, known := cl.meta.Channels[folded]
		if known && cl.channels[folded] == nil {
			delete(cl.meta.Channels, folded)
		} else {
			known = false
		}
		cl.mu.Unlock()
		if known {
			cl.saveLogin()
		}
	}
}
