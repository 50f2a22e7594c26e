package bridge

import (
	"context"
	"errors"
	"sync"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// sendReport follows the server's answers to the lines of one Matrix message, where the server
// offers labeled-response (https://ircv3.net/specs/extensions/labeled-response): a line the server
// refuses (an error numeric such as 404 "Cannot send to channel", or FAIL), or one it never
// confirms before the connection drops, makes the message fail for its sender, once, with the
// server's reason: an encrypted notice in the room and a failed message status.
type sendReport struct {
	cl      *IRCClient
	ctx     context.Context
	msg     *bridgev2.MatrixMessage
	pending bool
	once    sync.Once
}

// newSendReport is nil when the server cannot answer per line or the message has no event.
func (cl *IRCClient) newSendReport(ctx context.Context, msg *bridgev2.MatrixMessage, pending bool) *sendReport {
	if msg.Event == nil || msg.Event.ID == "" || !cl.ircConn.HasCap("labeled-response") || !cl.ircConn.HasCap("batch") {
		return nil
	}
	return &sendReport{cl: cl, ctx: context.WithoutCancel(ctx), msg: msg, pending: pending}
}

// replyFunc is the engine callback for one line; nil without a report.
func (r *sendReport) replyFunc() irc.ReplyFunc {
	if r == nil {
		return nil
	}
	return func(lines []*ircmsg.Message, err error) {
		if err == nil {
			err = irc.ReplyError(lines)
		}
		if err != nil {
			r.once.Do(func() { go r.fail(err) })
		}
	}
}

// fail tells the sender (off the reader goroutine).
func (r *sendReport) fail(err error) {
	var refusal *irc.ServerRefusal
	reason := metrics.UndeliveredOther
	switch {
	case errors.As(err, &refusal):
		err, reason = failure("the IRC server refused it: "+refusal.Text), metrics.UndeliveredRefused
	case errors.Is(err, irc.ErrUnconfirmed):
		err, reason = failure("the IRC server did not confirm it before the connection dropped; it may not have arrived"), metrics.UndeliveredUnconfirmed
	}
	r.cl.connector.Metrics.Undeliverable(metrics.MatrixToIRC, reason)
	zerolog.Ctx(r.ctx).Warn().Err(err).Stringer("event_id", r.msg.Event.ID).Msg("IRC server did not take a message from Matrix")
	r.cl.noticeFailure(r.ctx, r.msg.Portal, err)
	if br := r.cl.connector.Bridge; br != nil && br.Matrix != nil {
		st := bridgev2.MessageStatus{
			Step:        status.MsgStepRemote,
			Status:      event.MessageStatusFail,
			ErrorReason: event.MessageStatusNetworkError,
			Message:     err.Error(),
			IsCertain:   true,
		}
		br.Matrix.SendMessageStatus(r.ctx, &st, bridgev2.StatusEventInfoFromEvent(r.msg.Event))
	}
	if r.pending {
		r.msg.RemovePending(networkid.TransactionID(r.msg.Event.ID)) // no echo is coming
	}
}
