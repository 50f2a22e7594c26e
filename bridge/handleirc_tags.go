package bridge

import (
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
)

// typingTimeout is how long an IRC "active" typing notification lasts without a repeat
// (https://ircv3.net/specs/client-tags/typing).
const typingTimeout = 6 * time.Second

// handleTagMsg bridges the client tags of a TAGMSG: +typing as Matrix typing, +draft/react (with
// +draft/reply naming the message) as a Matrix reaction.
func (cl *IRCClient) handleTagMsg(msg *ircmsg.Message, at time.Time) {
	if len(msg.Params) < 1 {
		return
	}
	nick := msg.Nick()
	key, ok := cl.tagPortal(nick, msg.Params[0])
	if !ok || (!cl.isMe(nick) && cl.ignores(nick)) || !cl.bridgesTagsOf(nick, msg.Params[0]) {
		return
	}
	if ok, typing := msg.GetTag("+typing"); ok && !cl.isMe(nick) {
		timeout := time.Duration(0)
		if typing == "active" {
			timeout = typingTimeout
		}
		cl.queue(&simplevent.Typing{
			EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventTyping, PortalKey: key, Sender: cl.sender(nick), Timestamp: at},
			Timeout:   timeout,
		})
	}
	if ok, emoji := msg.GetTag("+draft/react"); ok && emoji != "" {
		target := replyTag(msg)
		if target == "" {
			return // a reaction to nothing in particular
		}
		cl.queue(&simplevent.Reaction{
			EventMeta: simplevent.EventMeta{
				Type: bridgev2.RemoteEventReaction, PortalKey: key, Sender: cl.sender(nick), Timestamp: at,
				LogContext: cl.logContext("react"),
			},
			TargetMessage: cl.msgIDFromTag(target),
			EmojiID:       networkid.EmojiID(emoji),
			Emoji:         emoji,
		})
	}
}

// handleRedact bridges REDACT <target> <msgid> [:reason] (draft/message-redaction) as the removal
// of that message in Matrix. bridgev2 finds the message within the portal only.
func (cl *IRCClient) handleRedact(msg *ircmsg.Message, at time.Time) {
	if len(msg.Params) < 2 || msg.Params[1] == "" {
		return
	}
	nick := msg.Nick()
	key, ok := cl.tagPortal(nick, msg.Params[0])
	if !ok || !cl.bridgesTagsOf(nick, msg.Params[0]) {
		return
	}
	cl.queue(&simplevent.MessageRemove{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventMessageRemove, PortalKey: key, Sender: cl.sender(nick), Timestamp: at,
			LogContext: cl.logContext("redact"),
		},
		TargetMessage: cl.msgIDFromTag(msg.Params[1]),
	})
}

// tagPortal is the portal a TAGMSG or REDACT from nick to target belongs to: the channel, or the
// private chat with the other nick. Lines from servers and to unknown channels are dropped.
func (cl *IRCClient) tagPortal(nick, target string) (networkid.PortalKey, bool) {
	if nick == "" {
		return networkid.PortalKey{}, false
	}
	target = cl.stripStatusPrefix(target)
	switch {
	case cl.ircConn.IsChannel(target):
		known := cl.withChannel(target, func(*channelState) {})
		return cl.channelKey(target), known
	case cl.isMe(nick):
		return cl.dmKey(target), true
	default:
		return cl.dmKey(nick), true
	}
}

// bridgesTagsOf tells whether this login passes on a TAGMSG or REDACT from nick to target: always
// in a private chat, in a channel only as its lead or for its own nick (bridgesChannelChange).
func (cl *IRCClient) bridgesTagsOf(nick, target string) bool {
	target = cl.stripStatusPrefix(target)
	return !cl.ircConn.IsChannel(target) || cl.bridgesChannelChange(target, nick)
}

func (cl *IRCClient) msgIDFromTag(msgid string) networkid.MessageID {
	return MakeMessageID(nil, cl.network.ID, "", "", msgid, time.Time{}, "")
}

// handleMarkRead bridges the server's read marker (MARKREAD <target> timestamp=..., sent when the
// user read up to there on another client) as the user's own read receipt: with double puppeting
// bridgev2 sets it as the user; without, as the ghost of the user's nick, like their lines.
func (cl *IRCClient) handleMarkRead(msg *ircmsg.Message) {
	if len(msg.Params) < 2 {
		return
	}
	ts, ok := strings.CutPrefix(msg.Params[1], "timestamp=")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil {
		return // "*": no marker yet
	}
	key, known := cl.tagPortal(cl.ircConn.Nick(), msg.Params[0])
	if !known {
		return
	}
	cl.queue(&simplevent.Receipt{
		EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventReadReceipt, PortalKey: key, Sender: cl.sender(cl.ircConn.Nick()), Timestamp: at},
		ReadUpTo:  at,
	})
}
