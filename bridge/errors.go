package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// What the Matrix side is told when something cannot be bridged: errors bridgev2 shows as the
// reason an event failed, and notices to a room or to the user's management room.

// failure is an error the Matrix sender sees as the reason their event was not bridged.
func failure(msg string) error {
	return bridgev2.WrapErrorInStatus(errors.New(msg)).WithErrorAsMessage().WithIsCertain(true)
}

// errNotConnected is shown to the Matrix sender as the message's failure reason.
var errNotConnected = failure("not connected to IRC right now; the message was not sent")

// noticeFailure tells the room why a message did not reach IRC, with an encrypted notice (mautrix's
// own error notices are plaintext, so sealbridge's example config turns them off).
func (cl *IRCClient) noticeFailure(ctx context.Context, portal *bridgev2.Portal, err error) {
	if portal == nil || portal.MXID == "" {
		return
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: "\u26a0\ufe0f Your message was not sent to IRC: " + err.Error()}
	if _, sendErr := cl.connector.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); sendErr != nil {
		zerolog.Ctx(ctx).Err(sendErr).Msg("Failed to post a failure notice")
	}
}

// errChannelOnly is returned for moderation in a private chat, which IRC has no notion of.
var errChannelOnly = failure("only IRC channels have kicks, bans, invites, power levels and topics")

// notifyUser sends a notice to the user's management room (the DM with the bridge bot).
func (cl *IRCClient) notifyUser(ctx context.Context, msg string, args ...any) {
	if cl.login == nil {
		return
	}
	roomID, err := cl.login.User.GetManagementRoom(ctx)
	if err != nil {
		cl.log.Err(err).Msg("Failed to get management room for a notice")
		return
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: fmt.Sprintf(msg, args...)}
	_, err = cl.connector.Bridge.Bot.SendMessage(ctx, roomID, event.EventMessage, &event.Content{Parsed: content}, nil)
	if err != nil {
		cl.log.Err(err).Msg("Failed to send a notice to the user")
	}
}
