package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// ctcpActionOverhead is what "\x01ACTION " and the closing "\x01" add to each line of an emote.
const ctcpActionOverhead = len("\x01ACTION \x01")

// HandleMatrixMessage sends a Matrix message over the user's own IRC connection: formatting as mIRC
// codes, pills as nicks, emotes as CTCP ACTION, notices as NOTICE, split into safe lines.
func (cl *IRCClient) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	resp, err := cl.sendToIRC(ctx, msg)
	if err != nil {
		reason := metrics.UndeliveredOther
		if errors.Is(err, errNotConnected) {
			reason = metrics.UndeliveredNotConnected
		}
		cl.connector.Metrics.Undeliverable(metrics.MatrixToIRC, reason)
		cl.noticeFailure(ctx, msg.Portal, err)
		// The sender was told; sending it again after a restart would surprise them.
		cl.connector.inbox.DoneEvent(msg.Event)
	}
	return resp, err
}

// reconnectGrace is how long a message from Matrix waits for a connection that is coming back (an
// IRC server restart, a network blip) before it fails with "not connected". The portal's other
// events wait meanwhile, so it stays short.
const reconnectGrace = 20 * time.Second

// waitReady reports whether the connection is up and has rejoined its channels, waiting up to
// reconnectGrace while the engine is reconnecting.
func (cl *IRCClient) waitReady(ctx context.Context) bool {
	ready := func() bool {
		cl.mu.Lock()
		joined := cl.ready
		cl.mu.Unlock()
		return joined && cl.ircConn.Connected()
	}
	if ready() {
		return true
	}
	if !cl.comingUp() {
		return false // logged out, or stopped for good (bad credentials, a ban)
	}
	deadline := time.NewTimer(reconnectGrace)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return ready()
		case <-tick.C:
			if ready() {
				return true
			}
		}
	}
}

// sendToIRC does the work of HandleMatrixMessage.
func (cl *IRCClient) sendToIRC(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	start := time.Now()
	if !cl.waitReady(ctx) {
		return nil, errNotConnected
	}
	target, err := cl.portalTarget(msg.Portal)
	if err != nil {
		return nil, err
	}
	content := msg.Content
	command := "PRIVMSG"
	var text string
	switch content.MsgType {
	case event.MsgText, event.MsgEmote:
	case event.MsgNotice:
		command = "NOTICE"
	case event.MsgImage, event.MsgFile, event.MsgAudio, event.MsgVideo:
		if text, err = cl.mediaText(ctx, msg); err != nil {
			return nil, err
		}
	default:
		return nil, failure(fmt.Sprintf("%s messages are not bridged to IRC yet", content.MsgType))
	}
	if text == "" {
		formatted := ""
		if content.Format == event.FormatHTML {
			formatted = content.FormattedBody
		}
		text = format.ToIRC(content.Body, formatted, cl.pillToNick)
	}
	text, tags := cl.replyContext(msg, text)
	action := content.MsgType == event.MsgEmote
	var spoof string // the RELAYMSG nick of a relayed Matrix user (relay.go)
	if msg.OrigSender != nil {
		if spoof = cl.relayVia(target, msg.OrigSender); spoof == "" {
			text, action = relayPrefix(msg.OrigSender, content.MsgType, text), false
		} else {
			command = "RELAYMSG"
		}
	}
	budget := cl.ircConn.MaxTextBytes(command, target)
	if spoof != "" {
		// delivered as ":spoof!ident@host PRIVMSG": allow for the server's ident and host too
		budget = cl.ircConn.MaxTextBytes("PRIVMSG", target) - len(spoof) - 1 - 20
	}
	if action {
		budget -= ctcpActionOverhead
	}
	chunks := format.SplitChunks(text, budget)
	if len(chunks) == 0 {
		return nil, failure("the message is empty on IRC")
	}
	// With echo-message the server tells the msgid of what we sent: the message is saved under it
	// once the echo is back. Edits (no event ID) are not.
	pending := cl.ircConn.HasCap("echo-message") && msg.Event.ID != "" && cl.connector.db.savesPending()
	out := outgoing{command: command, target: target, spoof: spoof, action: action, tags: tags}
	out.opts.Reply = cl.newSendReport(ctx, msg, pending).replyFunc()
	if pending {
		out.echoOf = msg.Event.ID
	}
	if msg.Event.ID != "" {
		// The event leaves the crash inbox once its last line is on the socket.
		evtID := msg.Event.ID
		out.opts.Written = func() { cl.connector.inbox.Done(evtID) }
	}
	if err = cl.sendOutgoing(out, chunks); err != nil {
		return nil, err
	}
	cl.connector.Metrics.Observe(metrics.MatrixToIRC, cl.metricsNetwork(), start)
	dbMsg := &database.Message{
		ID:        MakeMatrixMessageID(cl.network.ID, msg.Event.ID),
		SenderID:  cl.ownUserID(),
		Timestamp: time.Now(),
	}
	if pending {
		// Saved when the echo of the first line arrives, under its msgid (queueEchoOf).
		msg.AddPendingToSave(dbMsg, networkid.TransactionID(msg.Event.ID), nil)
		return &bridgev2.MatrixMessageResponse{DB: dbMsg, Pending: true}, nil
	}
	return &bridgev2.MatrixMessageResponse{DB: dbMsg}, nil
}

// outgoing is how the lines of one Matrix message go out.
type outgoing struct {
	command, target string
	spoof           string // RELAYMSG nick, or ""
	action          bool   // wrap each line in CTCP ACTION
	tags            map[string]string
	echoOf          id.EventID      // the event whose first line's echo saves the message, if any
	opts            irc.SendOptions // Written for the last line, Reply for every line
}

// sendOutgoing sends the chunks of a message: as one draft/multiline batch where the server takes
// it (multiline.go), otherwise line by line.
func (cl *IRCClient) sendOutgoing(o outgoing, chunks []format.Chunk) error {
	if maxBytes, maxLines, ok := cl.multilineLimits(); ok && !o.action && o.spoof == "" && fitsMultiline(chunks, maxBytes, maxLines) {
		if err := cl.sendUnit(sendUnit{command: o.command, target: o.target, chunks: chunks, tags: o.tags, opts: o.opts, echoOf: o.echoOf}); err != nil {
			if errors.Is(err, irc.ErrNotConnected) {
				return errNotConnected
			}
			return fmt.Errorf("failed to send to IRC: %w", err)
		}
		return nil
	}
	for i, c := range chunks {
		line := c.Text
		if o.action {
			line = "\x01ACTION " + line + "\x01"
		}
		u := sendUnit{command: o.command, target: o.target, line: line, spoof: o.spoof}
		u.opts.Reply = o.opts.Reply
		if i == 0 {
			u.echoOf, u.opts.Tags = o.echoOf, o.tags
		}
		if i == len(chunks)-1 {
			u.opts.Written = o.opts.Written
		}
		if err := cl.sendUnit(u); err != nil {
			if i == 0 {
				if errors.Is(err, irc.ErrNotConnected) {
					return errNotConnected
				}
				return fmt.Errorf("failed to send to IRC: %w", err)
			}
			return fmt.Errorf("only %d of %d lines reached IRC: %w", i, len(chunks), err)
		}
	}
	return nil
}

// replyContext turns a Matrix reply into what IRC users understand: the replied-to nick as a
// "nick: " prefix, and the +draft/reply tag naming the IRC message when the server passes client
// tags (https://ircv3.net/specs/client-tags/reply). Without message-tags the prefix carries a short
// quote of the replied line instead, when quotes.go allows it. A reply target outside this portal
// is ignored (bridgev2 looks targets up by event ID alone).
func (cl *IRCClient) replyContext(msg *bridgev2.MatrixMessage, text string) (string, map[string]string) {
	r := msg.ReplyTo
	if r == nil || r.Room != msg.Portal.PortalKey {
		return text, nil
	}
	var tags map[string]string
	if msgid := ircMsgID(cl.network.ID, r.ID); usableMsgID(msgid) && cl.ircConn.HasCap("message-tags") {
		tags = map[string]string{"+draft/reply": msgid}
	}
	network, folded, ok := ParseUserID(r.SenderID)
	if !ok || network != cl.network.ID || r.SenderID == cl.ownUserID() {
		return text, tags
	}
	cl.mu.Lock()
	nick := cl.nicks[folded]
	cl.mu.Unlock()
	if nick == "" {
		nick = folded
	}
	if tags == nil && !cl.ircConn.HasCap("message-tags") {
		if quote := cl.quoteFor(r.Room, r.ID); quote != "" {
			return nick + `: "` + quote + `" <- ` + text, nil
		}
	}
	if !strings.HasPrefix(cl.fold(text), cl.fold(nick)) {
		text = nick + ": " + text
	}
	return text, tags
}

// maxMsgIDBytes bounds a msgid the bridge repeats in a tag: real ones are short, and a long one
// (escaped, a space takes two bytes) could push the tags past their limit and fail the message.
const maxMsgIDBytes = 256

// usableMsgID reports whether msgid can go in a reply tag: non-empty, short, valid UTF-8, no NUL.
func usableMsgID(msgid string) bool {
	return msgid != "" && len(msgid) <= maxMsgIDBytes && utf8.ValidString(msgid) && strings.IndexByte(msgid, 0) < 0
}

// ircMsgID is the server's msgid inside a message ID, or "" for IDs the bridge made up (hashes and
// messages sent from Matrix).
func ircMsgID(network string, id networkid.MessageID) string {
	rest, ok := strings.CutPrefix(string(id), network+"/")
	if !ok || strings.HasPrefix(rest, "h:") || strings.HasPrefix(rest, "mx:") {
		return ""
	}
	return rest
}

// portalTarget is the channel or nick a portal sends to.
func (cl *IRCClient) portalTarget(portal *bridgev2.Portal) (string, error) {
	network, target, ok := ParsePortalID(portal.ID)
	if !ok || network != cl.network.ID {
		return "", fmt.Errorf("this room does not belong to %s", cl.network.DisplayName())
	}
	if !cl.ircConn.IsChannel(target) {
		cl.mu.Lock()
		if nick := cl.nicks[target]; nick != "" {
			target = nick
		}
		cl.mu.Unlock()
	} else {
		cl.withChannel(target, func(ch *channelState) { target = ch.Name })
	}
	return target, nil
}

// pillToNick resolves a Matrix mention to the IRC nick it stands for: a ghost's nick, or our own
// nick for the user's own Matrix ID.
func (cl *IRCClient) pillToNick(userID id.UserID) (string, bool) {
	if cl.login != nil && userID == cl.login.UserMXID {
		return cl.ircConn.Nick(), true
	}
	ghostID, ok := cl.connector.Bridge.Matrix.ParseGhostMXID(userID)
	if !ok {
		return "", false
	}
	network, folded, ok := ParseUserID(ghostID)
	if !ok || network != cl.network.ID {
		return "", false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if nick := cl.nicks[folded]; nick != "" {
		return nick, true
	}
	return folded, true
}
