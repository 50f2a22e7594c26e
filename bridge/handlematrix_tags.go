package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/config"
)

var (
	_ bridgev2.TypingHandlingNetworkAPI      = (*IRCClient)(nil)
	_ bridgev2.ReactionHandlingNetworkAPI    = (*IRCClient)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*IRCClient)(nil)
	_ bridgev2.EditHandlingNetworkAPI        = (*IRCClient)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*IRCClient)(nil)
)

// maxReactionBytes bounds a reaction key sent as a tag value.
const maxReactionBytes = 64

// typingInterval is how often "active" may be repeated
// (https://ircv3.net/specs/client-tags/typing: at most once every 3 seconds).
const typingInterval = 3 * time.Second

var (
	errNoTags      = failure("this IRC server does not carry message tags, so reactions cannot reach IRC")
	errNoMsgID     = failure("IRC has no ID for that message, so it cannot be referred to there")
	errNoRedaction = failure("this IRC server cannot delete messages (no draft/message-redaction)")
	errNoUnreact   = failure("IRC has no way to take back a reaction")
	errEditsOff    = failure("edits are not bridged to IRC on this bridge")
)

// typingState throttles typing notifications per target.
type typingState struct {
	mu   sync.Mutex
	last map[string]time.Time // casefolded target -> when "active" was last sent
}

// HandleMatrixTyping sends +typing=active (at most every 3 s) or +typing=done as a TAGMSG, when
// the server carries client tags (https://ircv3.net/specs/client-tags/typing).
func (cl *IRCClient) HandleMatrixTyping(ctx context.Context, msg *bridgev2.MatrixTyping) error {
	if !cl.ircConn.Connected() || !cl.ircConn.HasCap("message-tags") {
		return nil
	}
	target, err := cl.portalTarget(msg.Portal)
	if err != nil {
		return err
	}
	folded := cl.fold(target)
	cl.typing.mu.Lock()
	if cl.typing.last == nil {
		cl.typing.last = make(map[string]time.Time)
	}
	value := "done"
	if msg.IsTyping {
		if time.Since(cl.typing.last[folded]) < typingInterval {
			cl.typing.mu.Unlock()
			return nil
		}
		value = "active"
		cl.typing.last[folded] = time.Now()
	} else {
		delete(cl.typing.last, folded)
	}
	cl.typing.mu.Unlock()
	return cl.ircConn.SendTagged(map[string]string{"+typing": value}, "TAGMSG", target)
}

// PreHandleMatrixReaction names the reaction for bridgev2's de-duplication: one per key and user.
func (cl *IRCClient) PreHandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (bridgev2.MatrixReactionPreResponse, error) {
	key := format.OneLine(msg.Content.RelatesTo.Key, maxReactionBytes)
	if key == "" {
		cl.connector.inbox.DoneEvent(msg.Event)
		return bridgev2.MatrixReactionPreResponse{}, failure("empty reaction")
	}
	return bridgev2.MatrixReactionPreResponse{SenderID: cl.ownUserID(), EmojiID: networkid.EmojiID(key), Emoji: key}, nil
}

// HandleMatrixReaction sends a reaction as TAGMSG with +draft/react and +draft/reply naming the IRC
// message (https://ircv3.net/specs/client-tags/react). Without client tags, or for a message IRC
// has no ID for, the sender sees the reaction fail: a text fallback would be noise in the channel.
func (cl *IRCClient) HandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (*database.Reaction, error) {
	defer cl.connector.inbox.DoneEvent(msg.Event)
	target, msgid, err := cl.tagTarget(msg.Portal, msg.TargetMessage)
	if err != nil {
		return nil, err
	}
	if !cl.ircConn.HasCap("message-tags") {
		return nil, errNoTags
	}
	tags := map[string]string{"+draft/react": string(msg.PreHandleResp.EmojiID), "+draft/reply": msgid}
	if err = cl.ircConn.SendTagged(tags, "TAGMSG", target); err != nil {
		return nil, fmt.Errorf("failed to send to IRC: %w", err)
	}
	return &database.Reaction{}, nil
}

// HandleMatrixReactionRemove cannot undo anything: IRC has no unreact.
func (cl *IRCClient) HandleMatrixReactionRemove(ctx context.Context, msg *bridgev2.MatrixReactionRemove) error {
	defer cl.connector.inbox.DoneEvent(msg.Event)
	return errNoUnreact
}

// HandleMatrixMessageRemove deletes a message on IRC with REDACT where the server offers
// draft/message-redaction (https://ircv3.net/specs/extensions/message-redaction).
func (cl *IRCClient) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	defer cl.connector.inbox.DoneEvent(msg.Event)
	target, msgid, err := cl.tagTarget(msg.Portal, msg.TargetMessage)
	if err != nil {
		return err
	}
	if !cl.ircConn.HasCap("draft/message-redaction") {
		return errNoRedaction
	}
	params := []string{target, msgid}
	if reason := format.OneLine(msg.Content.Reason, maxReasonBytes); reason != "" {
		params = append(params, reason)
	}
	if err = cl.ircConn.Send("REDACT", params...); err != nil {
		return fmt.Errorf("failed to send to IRC: %w", err)
	}
	return nil
}

// HandleMatrixEdit sends the edited text again, marked as a correction the way IRC users write
// them: "* new text" (edit_style: prefix). With edit_style: off the sender sees the edit fail.
func (cl *IRCClient) HandleMatrixEdit(ctx context.Context, msg *bridgev2.MatrixEdit) error {
	defer cl.connector.inbox.DoneEvent(msg.Event)
	if cl.connector.Config.EditStyle == config.EditOff {
		return errEditsOff
	}
	content := msg.Content
	if content.NewContent != nil {
		content = content.NewContent
	}
	edited := *content
	edited.Body = "* " + edited.Body
	if edited.Format == event.FormatHTML {
		edited.FormattedBody = "* " + edited.FormattedBody
	}
	// No event ID: the correction is a new IRC line whose msgid names no Matrix message.
	fake := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event: &event.Event{}, Content: &edited, Portal: msg.Portal, OrigSender: msg.OrigSender,
	}}
	_, err := cl.sendToIRC(ctx, fake)
	return err
}

// tagTarget is where a tag referring to a bridged message goes, and that message's IRC msgid.
func (cl *IRCClient) tagTarget(portal *bridgev2.Portal, msg *database.Message) (target, msgid string, err error) {
	if !cl.ircConn.Connected() {
		return "", "", errNotConnected
	}
	if msg == nil || msg.Room != portal.PortalKey {
		return "", "", errNoMsgID
	}
	if msgid = ircMsgID(cl.network.ID, msg.ID); !usableMsgID(msgid) {
		return "", "", errNoMsgID
	}
	target, err = cl.portalTarget(portal)
	return target, msgid, err
}

// HandleMatrixReadReceipt keeps the server's read marker in step with the user's Matrix read
// receipts, where the server offers draft/read-marker (https://ircv3.net/specs/extensions/read-marker);
// the server never moves a marker backwards.
func (cl *IRCClient) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	if !cl.ircConn.Connected() || !cl.ircConn.HasCap("draft/read-marker") || msg.ReadUpTo.IsZero() {
		return nil
	}
	target, err := cl.portalTarget(msg.Portal)
	if err != nil {
		return err
	}
	return cl.ircConn.Send("MARKREAD", target, "timestamp="+ircTime(msg.ReadUpTo))
}
