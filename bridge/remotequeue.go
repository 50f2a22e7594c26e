package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/sbdb"
)

// remoteQueue decouples a login's IRC reader from the homeserver. bridgev2 blocks QueueRemoteEvent
// once a portal's event buffer is full (a slow or absent homeserver, or a burst of lines), and an
// IRC reader that stops reading is disconnected by the server ("SendQ exceeded") and loses what
// was said meanwhile. So the reader only pushes here and never waits; one goroutine per login
// (run) hands the events to bridgev2 in order, at bridgev2's pace.
//
// Messages are spooled as they are pushed (the spool's writer, spoolwriter.go, stores them in
// batches, typically within milliseconds), and run hands a message to bridgev2 only once it is
// stored, so a kill -9 at any moment loses none that was read.
//
// Memory is bounded by limits.queue_in_memory. Beyond it the queue overflows: messages are kept
// in the database only (the writer drops them from memory once stored), and run reads them back
// in order, a page at a time, once the events in memory are delivered. Other events that arrive
// meanwhile are folded: a channel's joins, parts, topics and modes become one resync of its room,
// delivered after the overflowed messages; typing, receipts, reactions, redactions and echoes are
// dropped (and counted). The queue leaves overflow once the database holds nothing newer than
// what run delivered. A start of the bridge begins in overflow when the spool holds messages of an
// earlier run, so those are delivered first, in order, without loading them all at once.
type remoteQueue struct {
	mu    sync.Mutex
	items []bridgev2.RemoteEvent // in memory, in order
	limit int                    // limits.queue_in_memory
	wake  chan struct{}
	// store keeps messages across a crash and reads overflowed ones back; nil keeps everything in
	// memory (no database: unit tests).
	store queueStore
	// lastSeq is the spool order of the newest message pushed; storedSeq of the newest one the
	// store has (the store writes in push order); deliveredSeq of the last one handed to bridgev2.
	lastSeq, storedSeq, deliveredSeq int64
	// unsaved counts the messages handed to the store and not stored yet; saved signals that it
	// went down (push waits on it when the store falls far behind).
	unsaved int
	saved   *sync.Cond
	// overflow is set while messages wait in the database only: up to overflowSeq, overflowed of
	// them; folded are the channel portals to resync when the overflow ends.
	overflow    bool
	overflowSeq int64
	overflowed  int
	folded      map[networkid.PortalKey]bool
	// resync makes the event that brings a folded portal up to date; limited counts what was
	// folded or dropped.
	resync  func(networkid.PortalKey) bridgev2.RemoteEvent
	limited func()
	log     zerolog.Logger
}

// queueStore is where a queue's messages wait across a crash (the spool, spoolwriter.go).
type queueStore interface {
	// save hands messages to be stored, in push order; the store calls q.stored once they are.
	save(q *remoteQueue, msgs []*outboxMessage)
	// after reads stored messages of the login that came after seq, at most n rows, in order, and
	// the order of the last row it read (0 when there was none); rows it cannot read are skipped.
	after(ctx context.Context, seq int64, n int) ([]*outboxMessage, int64, error)
}

// maxUnsavedFactor times the memory limit is how far the store may fall behind before push waits
// for it (a database much slower than the IRC connection, or failing).
const maxUnsavedFactor = 10

// overflowPage is how many overflowed messages run reads back at once.
const overflowPage = 200

// spoolSeqNow is the spool order of an item arriving now.
func spoolSeqNow() int64 { return sbdb.SpoolSeq(time.Now(), 0) }

func newRemoteQueue() *remoteQueue {
	q := &remoteQueue{wake: make(chan struct{}, 1), limit: 1 << 30, log: zerolog.Nop()}
	q.saved = sync.NewCond(&q.mu)
	return q
}

// nextSeq is a new spool order: increasing, and close to the time in microseconds (SpoolSeq), so
// that the spool's age-based pruning applies.
func (q *remoteQueue) nextSeq() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextSeqLocked()
}

func (q *remoteQueue) nextSeqLocked() int64 {
	q.lastSeq = max(q.lastSeq+1, spoolSeqNow())
	return q.lastSeq
}

func (q *remoteQueue) wakeUp() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues an event; it never waits for bridgev2 (only, at worst, for the database).
func (q *remoteQueue) push(evt bridgev2.RemoteEvent) {
	q.mu.Lock()
	m, isMessage := evt.(*outboxMessage)
	if isMessage && q.store != nil && !m.stored {
		for q.unsaved >= q.limit*maxUnsavedFactor {
			q.saved.Wait()
		}
		m.seq = q.nextSeqLocked()
		q.unsaved++
		q.store.save(q, []*outboxMessage{m})
	}
	if q.store != nil && (q.overflow || len(q.items) >= q.limit) {
		if !q.overflow {
			q.overflow = true
			q.log.Warn().Int("in_memory", len(q.items)).Msg("IRC events arrive faster than the homeserver takes them; further messages wait in the database")
		}
		if isMessage {
			m.overflow = true
			q.overflowSeq = m.seq
			q.overflowed++
		} else if key := evt.GetPortalKey(); key.Receiver == "" {
			if q.folded == nil {
				q.folded = make(map[networkid.PortalKey]bool)
			}
			q.folded[key] = true
		}
		q.mu.Unlock()
		if q.limited != nil {
			q.limited()
		}
		q.wakeUp()
		return
	}
	q.items = append(q.items, evt)
	q.mu.Unlock()
	q.wakeUp()
}

// pushRetry queues messages again that are stored already and were delivered once (their send
// failed). They go in memory whatever the overflow: the caller bounds how many.
func (q *remoteQueue) pushRetry(msgs []*outboxMessage) {
	q.mu.Lock()
	for _, m := range msgs {
		q.items = append(q.items, m)
	}
	q.mu.Unlock()
	q.wakeUp()
}

// stored is the store's report that msgs (a prefix of what was saved, in order) are in the
// database; a nil error with ok false means they could not be stored and stay in memory only.
func (q *remoteQueue) stored(msgs []*outboxMessage) {
	if len(msgs) == 0 {
		return
	}
	q.mu.Lock()
	for _, m := range msgs {
		m.stored = true
	}
	q.storedSeq = max(q.storedSeq, msgs[len(msgs)-1].seq)
	q.unsaved -= len(msgs)
	q.saved.Broadcast()
	q.mu.Unlock()
	q.wakeUp()
}

// resume starts the queue in overflow when the database holds undelivered messages of an earlier
// run (up to seq, n of them), so that run delivers them first, in order.
func (q *remoteQueue) resume(seq int64, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n == 0 || q.store == nil {
		return
	}
	q.overflow = true
	q.overflowSeq = max(q.overflowSeq, seq)
	q.overflowed += n
	q.lastSeq = max(q.lastSeq, seq)
	q.storedSeq = max(q.storedSeq, seq)
}

// Len is the number of events waiting for bridgev2, in memory or in the database.
func (q *remoteQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.overflowed
}

// run delivers events to deliver, in order, until ctx ends.
func (q *remoteQueue) run(ctx context.Context, deliver func(bridgev2.RemoteEvent)) {
	for ctx.Err() == nil {
		evt, page, through, wait := q.next(ctx)
		switch {
		case evt != nil:
			deliver(evt)
		case through != 0:
			for _, m := range page {
				q.mu.Lock()
				q.deliveredSeq = max(q.deliveredSeq, m.seq)
				q.overflowed = max(q.overflowed-1, 0)
				q.mu.Unlock()
				deliver(m)
			}
			q.mu.Lock()
			q.deliveredSeq = max(q.deliveredSeq, through)
			q.mu.Unlock()
		case wait:
			select {
			case <-q.wake:
			case <-ctx.Done():
			}
		}
	}
}

// next is what run does next: deliver evt, deliver a page of overflowed messages (read up to the
// spool order through), or wait.
func (q *remoteQueue) next(ctx context.Context) (evt bridgev2.RemoteEvent, page []*outboxMessage, through int64, wait bool) {
	q.mu.Lock()
	if len(q.items) > 0 {
		head := q.items[0]
		if m, ok := head.(*outboxMessage); ok && q.store != nil && !m.stored && m.seq > q.storedSeq {
			q.mu.Unlock()
			return nil, nil, 0, true // not in the database yet: a crash now must not lose it
		}
		q.items[0] = nil
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil // let the backing array go
		}
		if m, ok := head.(*outboxMessage); ok {
			q.deliveredSeq = max(q.deliveredSeq, m.seq)
		}
		q.mu.Unlock()
		return head, nil, 0, false
	}
	if !q.overflow {
		q.mu.Unlock()
		return nil, nil, 0, true
	}
	after, until, storedUpTo := q.deliveredSeq, q.overflowSeq, q.storedSeq
	if after >= until {
		// Caught up: leave overflow, then bring the folded rooms up to date.
		q.overflow, q.overflowed = false, 0
		folded := q.folded
		q.folded = nil
		q.mu.Unlock()
		for key := range folded {
			if evt := q.resync(key); evt != nil {
				q.mu.Lock()
				q.items = append(q.items, evt)
				q.mu.Unlock()
			}
		}
		return nil, nil, 0, false
	}
	q.mu.Unlock()
	if storedUpTo <= after {
		return nil, nil, 0, true // the next overflowed message is not stored yet
	}
	msgs, through, err := q.store.after(ctx, after, overflowPage)
	if err != nil {
		q.log.Err(err).Msg("Failed to read queued IRC messages back from the database; trying again")
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		return nil, nil, 0, false
	}
	if through == 0 {
		// Nothing newer in the database (a line whose ID was spooled already is stored once):
		// the overflow is over.
		q.mu.Lock()
		q.deliveredSeq = max(q.deliveredSeq, until)
		q.mu.Unlock()
		return nil, nil, 0, false
	}
	return nil, msgs, through, false
}

// setupQueue connects a login's remote queue to the spool and the limits, once the login exists.
func (cl *IRCClient) setupQueue() {
	q := cl.remote
	q.mu.Lock()
	defer q.mu.Unlock()
	q.limit = cl.connector.limits().QueueInMemory
	q.log = cl.log
	q.limited = func() { cl.limited(metrics.LimitQueue) }
	q.resync = cl.foldedResync
	if cl.connector.spool != nil {
		q.store = loginStore{cl: cl, w: cl.connector.spool.writer}
	}
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
