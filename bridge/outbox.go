package bridge

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/sbdb"
)

// The outbox is the IRC side of the spool (package spool). An IRC message read from the socket is
// written to the database by the login's remote queue before bridgev2 sees it (one transaction per
// batch), and deleted once bridgev2 has sent it to Matrix. After a kill -9 the messages still in the
// spool are queued again when the login is loaded, ahead of anything new; bridgev2 drops those it
// had already sent by their message ID, as it does for history.
//
// bridgev2 gives up on a message whose send fails after its HTTP client's retries (about a minute:
// a homeserver down a little longer) and only logs it. So once it has handled a message, the
// outbox checks that bridgev2 stored it as sent; if not, it hands the message to bridgev2 again
// from within the portal's event loop (deliveryRetries times, further apart each time), so that
// the portal's later messages wait behind it and the room keeps IRC's order. One that still fails
// stays spooled and is sent again at the next start.

// spooledMessage is an IRC message on its way to Matrix, as the spool stores it.
type spooledMessage struct {
	Key     networkid.PortalKey `json:"key"`
	Command string              `json:"command"` // privmsg or notice, for the logs
	At      time.Time           `json:"at"`
	ID      networkid.MessageID `json:"id"`
	Data    ircMessage          `json:"data"`
}

// outboxMessage is the remote event of a spooled message; the Slot is its place in the spool,
// kept by the login's remote queue.
type outboxMessage struct {
	*simplevent.Message[*ircMessage]
	spool.Slot
	spooled *spooledMessage
}

// SpoolItem is what the spool stores of the message.
func (m *outboxMessage) SpoolItem() (string, any) { return string(m.spooled.ID), m.spooled }

// deliveryRetries bounds how often a message bridgev2 failed to send is handed to it again; the
// first retry waits deliveryRetryFirst (waits.deliveryRetry), each next one twice as long.
const (
	deliveryRetries    = 5
	deliveryRetryFirst = 5 * time.Second
)

// portalLoop hands a message to bridgev2 again, within the portal's event loop: bridgev2's own
// (portalInternals) in the bridge; tests that have no portal loop give theirs.
type portalLoop interface {
	redeliver(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, evt bridgev2.RemoteMessage)
}

// portalInternals is bridgev2's portal event loop.
type portalInternals struct{}

func (portalInternals) redeliver(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, evt bridgev2.RemoteMessage) {
	// Deliberate: only the portal's own loop keeps the room in IRC's order (see the top of this
	// file), and bridgev2 offers no other way into it.
	//lint:ignore SA1019 the portal's internals are the one way to handle an event within its loop
	portal.Internal().HandleRemoteMessage(ctx, login, evt)
}

var (
	_ bridgev2.RemoteMessage     = (*outboxMessage)(nil)
	_ bridgev2.RemotePostHandler = (*outboxMessage)(nil)
	_ spool.Message              = (*outboxMessage)(nil)
)

// queueMessage hands an IRC message to the remote queue, which spools it before bridgev2 sees it.
func (cl *IRCClient) queueMessage(m *spooledMessage) {
	cl.queue(cl.outboxEvent(m, time.Now()))
}

// outboxEvent makes the remote event of m; arrived (zero for a replay) feeds the latency metric.
func (cl *IRCClient) outboxEvent(m *spooledMessage, arrived time.Time) *outboxMessage {
	data := m.Data
	var evt *outboxMessage
	evt = &outboxMessage{
		spooled: m,
		Message: &simplevent.Message[*ircMessage]{
			EventMeta: simplevent.EventMeta{
				Type:         bridgev2.RemoteEventMessage,
				PortalKey:    m.Key,
				Sender:       cl.sender(data.Nick),
				Timestamp:    m.At,
				CreatePortal: !data.Channel, // channel portals are made once NAMES has ended
				LogContext:   cl.logContext(m.Command),
				PostHandleFunc: func(ctx context.Context, portal *bridgev2.Portal) {
					if !cl.sentToMatrix(ctx, portal, m.ID) && !cl.retryDelivery(ctx, portal, evt) {
						if ctx.Err() == nil {
							cl.retryLater(evt) // still spooled: handed over again later
						}
						return
					}
					if !arrived.IsZero() {
						cl.connector.Metrics.Observe(metrics.IRCToMatrix, cl.metricsNetwork(), arrived)
					}
					cl.connector.spool.Done(sbdb.SpoolIRC, string(m.ID))
				},
			},
			Data:               &data,
			ID:                 m.ID,
			ConvertMessageFunc: cl.convertIRCMessage,
		},
	}
	return evt
}

// sentToMatrix tells whether bridgev2 has the message as sent (in its message table). A database
// error counts as sent: the outbox must not retry on a guess.
func (cl *IRCClient) sentToMatrix(ctx context.Context, portal *bridgev2.Portal, id networkid.MessageID) bool {
	sent, err := cl.connector.db.sentMessage(context.WithoutCancel(ctx), portal.Receiver, id)
	if err != nil {
		cl.log.Err(err).Str("message_id", string(id)).Msg("Failed to check whether an IRC message reached Matrix")
		return true
	}
	return sent
}

// retryDelivery hands evt to bridgev2 again until it is stored as sent, waiting longer each time;
// false means it never was (or the bridge is stopping), and it stays spooled.
func (cl *IRCClient) retryDelivery(ctx context.Context, portal *bridgev2.Portal, evt *outboxMessage) bool {
	id := evt.spooled.ID
	for attempt := 0; attempt < deliveryRetries; attempt++ {
		delay := cl.connector.waits.deliveryRetry << attempt
		cl.log.Warn().Str("message_id", string(id)).Dur("retry_in", delay).
			Msg("An IRC message did not reach Matrix; sending it again (the portal's later messages wait)")
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
		cl.connector.loop.redeliver(ctx, portal, cl.login, evt)
		if cl.sentToMatrix(ctx, portal, id) {
			return true
		}
	}
	cl.log.Error().Str("message_id", string(id)).Int("attempts", deliveryRetries+1).
		Msg("An IRC message could not be sent to Matrix; it stays spooled and is tried again later")
	return false
}

// Messages bridgev2 failed to send even after retryDelivery (a homeserver down for longer) are
// handed to it again while the bridge runs, retryLaterFirst (waits.retryLater) later, then twice
// as long each time up to retryLaterMax. At most limits.queue_in_memory of them wait so per login;
// more wait in the spool for the next start. A day after a message arrived the spool gives up on
// it and tells the user (undelivered.go).
const (
	retryLaterFirst = time.Minute
	retryLaterMax   = 30 * time.Minute
)

// laterRetries are a login's messages waiting to be handed over again.
type laterRetries struct {
	mu      sync.Mutex
	msgs    []spool.Message // each an *outboxMessage
	running bool
}

// retryLater schedules a message that failed all its retries for another try.
func (cl *IRCClient) retryLater(m *outboxMessage) {
	if time.Since(m.spooled.At) > spool.MaxAge {
		return // the spool gives up on it and tells the user
	}
	lr := &cl.later
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if len(lr.msgs) >= cl.connector.limits().QueueInMemory {
		cl.log.Warn().Str("message_id", string(m.ID)).Msg("Too many IRC messages wait for another try; this one waits in the spool for the next start")
		return
	}
	lr.msgs = append(lr.msgs, m)
	if !lr.running && cl.remoteCtx != nil {
		lr.running = true
		go cl.retryLaterLoop(cl.remoteCtx)
	}
}

// retryLaterLoop hands the waiting messages over again, further apart each time, until none wait.
func (cl *IRCClient) retryLaterLoop(ctx context.Context) {
	delay := cl.connector.waits.retryLater
	for {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		lr := &cl.later
		lr.mu.Lock()
		batch := lr.msgs
		lr.msgs = nil
		if len(batch) == 0 {
			lr.running = false
			lr.mu.Unlock()
			return
		}
		lr.mu.Unlock()
		cl.log.Info().Int("messages", len(batch)).Msg("Handing IRC messages that did not reach Matrix to bridgev2 again")
		cl.remote.PushRetry(batch)
		delay = min(delay*2, retryLaterMax)
	}
}

// resumeSpool makes the remote queue deliver, before anything this run reads, the messages an
// earlier run read from IRC but had not sent to Matrix (spool.Queue.Resume).
func (cl *IRCClient) resumeSpool(ctx context.Context) {
	n, err := cl.remote.Resume(ctx)
	if err != nil {
		cl.log.Err(err).Msg("Failed to read the login's undelivered IRC messages; they stay spooled")
		return
	}
	if n > 0 {
		cl.log.Info().Int("messages", n).Msg("Delivering IRC messages an earlier run read but had not sent to Matrix")
	}
}

// setupQueue connects a login's remote queue to the spool and the limits, once the login exists.
func (cl *IRCClient) setupQueue() {
	cl.remote.Configure(spool.QueueConfig{
		Limit:   cl.connector.limits().QueueInMemory,
		Log:     cl.log,
		Store:   cl.connector.spool.LoginStore(string(cl.loginID), cl.decodeSpooled),
		Resync:  cl.foldedResync,
		Limited: func() { cl.limited(metrics.LimitQueue) },
	})
}

// decodeSpooled makes the remote event of a message read back from the spool.
func (cl *IRCClient) decodeSpooled(it sbdb.SpoolItem) (spool.Message, error) {
	var m spooledMessage
	if err := json.Unmarshal(it.Data, &m); err != nil {
		return nil, err
	}
	return cl.outboxEvent(&m, time.Time{}), nil
}

// foldedResync brings a channel portal up to date after its events were folded during an overflow:
// its room is made if this login is in the channel now; if it left meanwhile, the user leaves it.
func (cl *IRCClient) foldedResync(key networkid.PortalKey) bridgev2.RemoteEvent {
	_, channel, ok := ParsePortalID(key.ID)
	if !ok {
		return nil
	}
	cl.mu.Lock()
	_, in := cl.channels[channel]
	cl.mu.Unlock()
	if !in {
		return cl.membershipEvent(channel, cl.ircConn.Nick(), "", event.MembershipLeave, "", time.Now())
	}
	return &simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventChatResync,
			PortalKey:    key,
			CreatePortal: in,
			LogContext:   cl.logContext("resync"),
		},
		GetChatInfoFunc: cl.GetChatInfo,
	}
}
