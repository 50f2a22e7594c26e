package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/format"
)

// ircMessage is one PRIVMSG or NOTICE on its way to Matrix.
type ircMessage struct {
	Nick    string `json:"nick"`
	Text    string `json:"text"`
	Notice  bool   `json:"notice,omitempty"`
	Action  bool   `json:"action,omitempty"`
	Channel bool   `json:"channel,omitempty"`
	// ReplyTo is the msgid of the IRC message this one replies to (+draft/reply), if any.
	ReplyTo string `json:"reply_to,omitempty"`
}

// handleMessage bridges PRIVMSG and NOTICE: channel messages to the shared channel portal, private
// ones to the login's DM portal with the other nick. Our own lines echoed back (echo-message) for a
// message sent from Matrix are dropped; anything else we said (from another client on a bouncer)
// is bridged as ours.
func (cl *IRCClient) handleMessage(msg *ircmsg.Message, at time.Time) {
	if len(msg.Params) < 2 {
		return
	}
	nick, target, text := msg.Nick(), msg.Params[0], msg.Params[1]
	target = cl.stripStatusPrefix(target)
	notice := msg.Command == "NOTICE"
	if nick == "" || !strings.ContainsAny(msg.Source, "!@") && strings.Contains(nick, ".") {
		return // server notices are not bridged
	}
	var action bool
	if ctcp, arg, ok := parseCTCP(text); ok {
		if ctcp != "ACTION" {
			if !notice {
				cl.replyCTCP(nick, ctcp, arg)
			}
			return // other CTCP (and DCC above all) is never bridged
		}
		action, text = true, arg
	}
	fromMe := cl.isMe(nick)
	channel := cl.ircConn.IsChannel(target)
	if !fromMe && cl.ignores(nick) {
		return // the user ignores this nick (`ignore`)
	}
	if _, by := msg.GetTag("relaymsg"); by != "" {
		// A line some client relayed under a spoofed nick (RELAYMSG). Ours is the echo of a Matrix
		// user's message this login relayed (relay.go); another login's is bridged by that login.
		if cl.isMe(by) {
			if !cl.fromHistory(msg) {
				if echoed, eventID := cl.takeEcho(target, msg); echoed && eventID != "" {
					own := *msg // saved as the relay login's message, like its other lines
					own.Source = by
					cl.queueEchoOf(eventID, cl.channelKey(target), &own, at)
				}
			}
			return
		}
		if cl.connector.isOtherLoginsNick(cl, by) {
			return
		}
	}
	var key networkid.PortalKey
	switch {
	case channel:
		key = cl.channelKey(target)
	case fromMe:
		key = cl.dmKey(target)
	default:
		key = cl.dmKey(nick)
	}
	if fromMe && !cl.fromHistory(msg) {
		if echoed, eventID := cl.takeEcho(target, msg); echoed {
			if eventID != "" {
				cl.queueEchoOf(eventID, key, msg, at)
			}
			return
		}
	}
	if fromMe && !channel && servicesSecret(target, text) {
		return // our own IDENTIFY (or the like) to services, from history or another client: never bridged
	}
	if channel && !fromMe && cl.connector.isOtherLoginsNick(cl, nick) {
		return // another Matrix user's own line in a shared channel: their login bridges it
	}
	_, msgid := msg.GetTag("msgid")
	if channel && msgid == "" && !fromMe && !cl.connector.bridgesWithoutMsgID(cl, cl.fold(target)) {
		return // another login in this channel bridges its lines (no msgid to tell copies apart)
	}
	id := MakeMessageID(cl.connector.idKey, cl.network.ID, string(key.ID), cl.fold(nick), msgid, at, text)
	if channel && msgid != "" && !cl.connector.shared.take(key.ID, id) {
		return // another login in this channel has taken this line (shared.go)
	}
	if !cl.ircConn.HasCap("message-tags") {
		cl.connector.quotes.put(key, id, nick, text, at) // for reply quotes (quotes.go)
	}
	cl.queueMessage(&spooledMessage{
		Key:     key,
		Command: strings.ToLower(msg.Command),
		At:      at,
		ID:      id,
		Data:    ircMessage{Nick: nick, Text: text, Notice: notice, Action: action, Channel: channel, ReplyTo: replyTag(msg)},
	})
}

// convertIRCMessage turns the IRC text into a Matrix message: mIRC formatting as HTML, nick mentions
// as pills, /me as m.emote, NOTICE as m.notice.
func (cl *IRCClient) convertIRCMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, data *ircMessage) (*bridgev2.ConvertedMessage, error) {
	var mentions []id.UserID
	body, formatted := format.ToMatrix(data.Text, func(nick string) (id.UserID, string, bool) {
		if !data.Channel {
			return "", "", false
		}
		var mxid id.UserID
		if cl.isMe(nick) {
			mxid = cl.login.UserMXID
		} else if cl.inChannel(portal, nick) {
			mxid = cl.connector.Bridge.Matrix.FormatGhostMXID(MakeUserID(cl.network.ID, cl.fold(nick)))
		} else {
			return "", "", false
		}
		mentions = append(mentions, mxid)
		return mxid, nick, true
	})
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: body}
	switch {
	case data.Action:
		content.MsgType = event.MsgEmote
	case data.Notice:
		content.MsgType = event.MsgNotice
	}
	if formatted != "" {
		content.Format = event.FormatHTML
		content.FormattedBody = formatted
	}
	content.Mentions = &event.Mentions{UserIDs: mentions}
	converted := &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
		Type:    event.EventMessage,
		Content: content,
	}}}
	if data.ReplyTo != "" {
		// bridgev2 resolves this within the portal only; an unknown target is dropped.
		converted.ReplyTo = &networkid.MessageOptionalPartID{MessageID: cl.msgIDFromTag(data.ReplyTo)}
	}
	return converted, nil
}

// replyTag reads the reply client tag (https://ircv3.net/specs/client-tags/reply), draft or final.
func replyTag(msg *ircmsg.Message) string {
	for _, name := range []string{"+draft/reply", "+reply"} {
		if ok, v := msg.GetTag(name); ok && v != "" {
			return v
		}
	}
	return ""
}

func (cl *IRCClient) inChannel(portal *bridgev2.Portal, nick string) bool {
	_, name, ok := ParsePortalID(portal.ID)
	if !ok {
		return false
	}
	_, found := cl.memberOf(name, nick)
	return found
}

// stripStatusPrefix turns a STATUSMSG target ("@#chan": to the channel's ops) into the channel, so
// that such a line goes to the channel's portal and never opens a private chat.
func (cl *IRCClient) stripStatusPrefix(target string) string {
	symbols := cl.ircConn.PrefixSymbols()
	for len(target) > 1 && strings.IndexByte(symbols, target[0]) >= 0 {
		target = target[1:]
	}
	return target
}

// parseCTCP recognises "\x01COMMAND arg\x01" (the closing \x01 is optional in the wild).
func parseCTCP(text string) (command, arg string, ok bool) {
	if len(text) < 2 || text[0] != '\x01' {
		return "", "", false
	}
	inner := strings.TrimSuffix(text[1:], "\x01")
	command, arg, _ = strings.Cut(inner, " ")
	return strings.ToUpper(command), arg, command != ""
}

// replyCTCP answers the harmless CTCP queries, only when the admin turned ctcp_replies on.
func (cl *IRCClient) replyCTCP(nick, command, arg string) {
	if !cl.connector.Config.CTCPReplies {
		return
	}
	var reply string
	switch command {
	case "VERSION":
		reply = "sealbridge"
	case "PING":
		reply = arg
	case "TIME":
		reply = time.Now().UTC().Format(time.RFC1123)
	case "CLIENTINFO":
		reply = "ACTION CLIENTINFO PING TIME VERSION"
	default:
		return
	}
	line := fmt.Sprintf("\x01%s %s\x01", command, reply)
	if err := cl.ircConn.Send("NOTICE", nick, line); err != nil {
		cl.log.Debug().Err(err).Str("ctcp", command).Msg("Failed to send CTCP reply")
	}
}

// servicesSecret tells whether text, said to target, is a services command that carries a password
// (NickServ IDENTIFY, REGISTER, GHOST, ...): such a line of the user's own, played back from
// history or by a bouncer, is never bridged.
func servicesSecret(target, text string) bool {
	if !strings.HasSuffix(strings.ToLower(target), "serv") {
		return false
	}
	word, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	switch strings.ToUpper(word) {
	case "IDENTIFY", "ID", "LOGIN", "REGISTER", "GHOST", "RECOVER", "REGAIN", "RELEASE", "DROP", "GROUP":
		return true
	case "SET", "SASET":
		next, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		return strings.HasPrefix(strings.ToUpper(next), "PASS")
	}
	return false
}
