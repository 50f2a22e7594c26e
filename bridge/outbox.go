package bridge

import (
	"context"
	"encoding/json"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	sbdb "github.com/sealbridge/sealbridge/database"
)

// The outbox is the IRC side of the spool (spool.go). An IRC message read from the socket is
// written to the database by the login's remote queue before bridgev2 sees it (one transaction per
// batch), and deleted once bridgev2 has handled it. After a kill -9 the messages still in the
// spool are queued again when the login is loaded, ahead of anything new; bridgev2 drops those it
// had already sent by their message ID, as it does for history.

// spooledMessage is an IRC message on its way to Matrix, as the spool stores it.
type spooledMessage struct {
	Key     networkid.PortalKey `json:"key"`
	Command string              `json:"command"` // privmsg or notice, for the logs
	At      time.Time           `json:"at"`
	ID      networkid.MessageID `json:"id"`
	Data    ircMessage          `json:"data"`
}

// outboxMessage is the remote event of a spooled message.
type outboxMessage struct {
	*simplevent.Message[*ircMessage]
	spooled *spooledMessage
	// stored is set once the message is in the spool (or came from it).
	stored bool
}

var (
	_ bridgev2.RemoteMessage     = (*outboxMessage)(nil)
	_ bridgev2.RemotePostHandler = (*outboxMessage)(nil)
)

// queueMessage hands an IRC message to the remote queue, which spools it before bridgev2 sees it.
func (cl *IRCClient) queueMessage(m *spooledMessage) {
	cl.queue(cl.outboxEvent(m, time.Now(), false))
}

// outboxEvent makes the remote event of m; arrived (zero for a replay) feeds the latency metric.
func (cl *IRCClient) outboxEvent(m *spooledMessage, arrived time.Time, stored bool) *outboxMessage {
	data := m.Data
	return &outboxMessage{
		spooled: m,
		stored:  stored,
		Message: &simplevent.Message[*ircMessage]{
			EventMeta: simplevent.EventMeta{
				Type:         bridgev2.RemoteEventMessage,
				PortalKey:    m.Key,
				Sender:       cl.sender(data.Nick),
				Timestamp:    m.At,
				CreatePortal: !data.Channel, // channel portals are made once NAMES has ended
				LogContext:   cl.logContext(m.Command),
				PostHandleFunc: func(ctx context.Context, portal *bridgev2.Portal) {
					if !arrived.IsZero() {
						cl.conn.Metrics.Observe(metrics.IRCToMatrix, arrived)
					}
					cl.conn.spool.done(sbdb.SpoolIRC, string(m.ID))
				},
			},
			Data:               &data,
			ID:                 m.ID,
			ConvertMessageFunc: cl.convertIRCMessage,
		},
	}
}

// spoolBatch writes the messages of a remote-queue batch that are not in the spool yet, in one
// transaction. A database error is logged and the batch still goes to Matrix: the spool guards
// against a crash, it must never stop the stream.
func (cl *IRCClient) spoolBatch(batch []bridgev2.RemoteEvent) {
	sp := cl.conn.spool
	if sp == nil {
		return
	}
	now := time.Now()
	var items []sbdb.SpoolItem
	var marks []*outboxMessage
	for i, evt := range batch {
		m, ok := evt.(*outboxMessage)
		if !ok || m.stored {
			continue
		}
		data, err := json.Marshal(m.spooled)
		if err != nil {
			continue
		}
		items = append(items, sbdb.SpoolItem{Kind: sbdb.SpoolIRC, Owner: string(cl.loginID), ID: string(m.spooled.ID), Seq: sbdb.SpoolSeq(now, i), Data: data})
		marks = append(marks, m)
	}
	if len(items) == 0 {
		return
	}
	if err := sp.put(context.Background(), items); err != nil {
		cl.log.Err(err).Int("messages", len(items)).Msg("Failed to spool IRC messages; a crash now would lose them")
		return
	}
	for _, m := range marks {
		m.stored = true
	}
}

// replaySpool queues the messages an earlier run read from IRC but had not delivered to Matrix,
// ahead of anything this run reads.
func (cl *IRCClient) replaySpool(ctx context.Context) {
	sp := cl.conn.spool
	if sp == nil {
		return
	}
	select {
	case <-sp.ready:
	case <-ctx.Done():
		return
	case <-time.After(inboxReadyWait):
		cl.log.Error().Msg("The spool table is not ready; undelivered IRC messages of an earlier run stay spooled")
		return
	}
	items, err := sp.pending(ctx, sbdb.SpoolIRC, string(cl.loginID))
	if err != nil {
		cl.log.Err(err).Msg("Failed to read the login's undelivered IRC messages")
		return
	}
	events := make([]bridgev2.RemoteEvent, 0, len(items))
	for _, it := range items {
		var m spooledMessage
		if err := json.Unmarshal(it.Data, &m); err != nil {
			cl.log.Warn().Err(err).Str("message_id", it.ID).Msg("Dropping an unreadable spooled IRC message")
			sp.done(sbdb.SpoolIRC, it.ID)
			continue
		}
		events = append(events, cl.outboxEvent(&m, time.Time{}, true))
	}
	if len(events) > 0 {
		cl.log.Info().Int("messages", len(events)).Msg("Delivering IRC messages an earlier run read but had not sent to Matrix")
		cl.remote.pushFront(events)
	}
}
