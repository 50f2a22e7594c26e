package spool

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/sbdb"
)

// Queue decouples a login's IRC reader from the homeserver. bridgev2 blocks QueueRemoteEvent
// once a portal's event buffer is full (a slow or absent homeserver, or a burst of lines), and an
// IRC reader that stops reading is disconnected by the server ("SendQ exceeded") and loses what
// was said meanwhile. So the reader only pushes here and never waits; one goroutine per login
// (while it has any) hands the events to bridgev2 in order, at bridgev2's pace.
//
// Messages are spooled as they are pushed (the spool's writer, writer.go, stores them in batches,
// typically within milliseconds), and the delivery hands a message to bridgev2 only once it is
// stored, so a kill -9 at any moment loses none that was read.
//
// Memory is bounded by limits.queue_in_memory. Beyond it the queue overflows: messages are kept
// in the database only (the writer drops them from memory once stored), and the delivery reads
// them back in order, a page at a time, once the events in memory are delivered. Other events that arrive
// meanwhile are folded: a channel's joins, parts, topics and modes become one resync of its room,
// delivered after the overflowed messages; typing, receipts, reactions, redactions and echoes are
// dropped (and counted). The queue leaves overflow once the database holds nothing newer than
// what was delivered. A start of the bridge begins in overflow when the spool holds messages of an
// earlier run, so those are delivered first, in order, without loading them all at once.
type Queue struct {
	mu    sync.Mutex
	items []bridgev2.RemoteEvent // in memory, in order
	limit int                    // limits.queue_in_memory
	// wake tells the running delivery that there may be more to do; running is set while a
	// goroutine delivers (run), until ctx ends or there is nothing to do. Start sets ctx and
	// deliver.
	wake    chan struct{}
	running bool
	ctx     context.Context
	deliver func(bridgev2.RemoteEvent)
	// store keeps messages across a crash and reads overflowed ones back; nil keeps everything in
	// memory (no database: unit tests).
	store QueueStore
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

// QueueStore is where a queue's messages wait across a crash (Spool.LoginStore).
type QueueStore interface {
	// save hands messages to be stored, in push order; the store calls q.stored once they are.
	save(q *Queue, msgs []Message)
	// after reads stored messages of the login that came after seq, at most n rows, in order, and
	// the order of the last row it read (0 when there was none); rows it cannot read are skipped.
	after(ctx context.Context, seq int64, n int) ([]Message, int64, error)
	// undelivered is the order of the newest stored message and how many are stored, counting a
	// start's attempt for each.
	undelivered(ctx context.Context) (seq int64, n int, err error)
}

// Message is a queued event that is spooled before it is delivered. Its type embeds a Slot.
type Message interface {
	bridgev2.RemoteEvent
	// SpoolItem is what the spool stores of it: its ID and a value encoded as JSON.
	SpoolItem() (id string, v any)
	slot() *Slot
}

// Slot is a message's place in the spool, kept by the queue (under its lock): embed it in a type
// to make it a Message.
type Slot struct {
	// seq is its order in the spool; stored is set once it is in the spool (or came from it),
	// overflow once it waits there only.
	seq      int64
	stored   bool
	overflow bool
}

func (s *Slot) slot() *Slot { return s }

// restore marks a message read back from the spool at order seq.
func (s *Slot) restore(seq int64) { s.seq, s.stored = seq, true }

// maxUnsavedFactor times the memory limit is how far the store may fall behind before push waits
// for it (a database much slower than the IRC connection, or failing).
const maxUnsavedFactor = 10

// overflowPage is how many overflowed messages the delivery reads back at once.
const overflowPage = 200

// NewQueue is a queue that keeps everything in memory until Configure gives it a store and limit.
func NewQueue() *Queue {
	q := &Queue{wake: make(chan struct{}, 1), limit: 1 << 30, log: zerolog.Nop()}
	q.saved = sync.NewCond(&q.mu)
	return q
}

// QueueConfig connects a queue to its login.
type QueueConfig struct {
	// Limit is limits.queue_in_memory.
	Limit int
	Log   zerolog.Logger
	// Store keeps messages across a crash; nil keeps everything in memory.
	Store QueueStore
	// Resync makes the event that brings a channel portal up to date after its events were
	// folded (nil when there is nothing to do); Limited counts what was folded or dropped.
	Resync  func(networkid.PortalKey) bridgev2.RemoteEvent
	Limited func()
}

// Configure sets the queue up for its login, before Start.
func (q *Queue) Configure(c QueueConfig) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.limit, q.log, q.store, q.resync, q.limited = c.Limit, c.Log, c.Store, c.Resync, c.Limited
}

// NextSeq is a new spool order: increasing, and close to the time in microseconds (SpoolSeq), so
// that the spool's age-based pruning applies.
func (q *Queue) NextSeq() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextSeqLocked()
}

func (q *Queue) nextSeqLocked() int64 {
	q.lastSeq = max(q.lastSeq+1, sbdb.SpoolSeq(time.Now(), 0))
	return q.lastSeq
}

func (q *Queue) wakeUp() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	q.mu.Lock()
	start := q.deliver != nil && !q.running && q.ctx.Err() == nil
	q.running = q.running || start
	q.mu.Unlock()
	if start {
		go q.run()
	}
}

// Push queues an event; it never waits for bridgev2 (only, at worst, for the database).
func (q *Queue) Push(evt bridgev2.RemoteEvent) {
	q.mu.Lock()
	m, isMessage := evt.(Message)
	if isMessage && q.store != nil && !m.slot().stored {
		for q.unsaved >= q.limit*maxUnsavedFactor {
			q.saved.Wait()
		}
		m.slot().seq = q.nextSeqLocked()
		q.unsaved++
		q.store.save(q, []Message{m})
	}
	if q.store != nil && (q.overflow || len(q.items) >= q.limit) {
		if !q.overflow {
			q.overflow = true
			q.log.Warn().Int("in_memory", len(q.items)).Msg("IRC events arrive faster than the homeserver takes them; further messages wait in the database")
		}
		if isMessage {
			m.slot().overflow = true
			q.overflowSeq = m.slot().seq
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

// PushRetry queues messages again that are stored already and were delivered once (their send
// failed). They go in memory whatever the overflow: the caller bounds how many.
func (q *Queue) PushRetry(msgs []Message) {
	q.mu.Lock()
	for _, m := range msgs {
		q.items = append(q.items, m)
	}
	q.mu.Unlock()
	q.wakeUp()
}

// stored is the store's report that msgs (a prefix of what was saved, in order) are in the
// database; a nil error with ok false means they could not be stored and stay in memory only.
func (q *Queue) stored(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	q.mu.Lock()
	for _, m := range msgs {
		m.slot().stored = true
	}
	q.storedSeq = max(q.storedSeq, msgs[len(msgs)-1].slot().seq)
	q.unsaved -= len(msgs)
	q.saved.Broadcast()
	q.mu.Unlock()
	q.wakeUp()
}

// Resume makes the queue deliver, before anything this run pushes, the messages an earlier run
// stored but had not delivered: they stay in the database and are read back in order a page at a
// time. Each start that hands them over counts an attempt (the spool gives up on an item after a
// few). It returns how many there are.
func (q *Queue) Resume(ctx context.Context) (int, error) {
	q.mu.Lock()
	store := q.store
	q.mu.Unlock()
	if store == nil {
		return 0, nil
	}
	seq, n, err := store.undelivered(ctx)
	if err != nil {
		return 0, err
	}
	q.resume(seq, n)
	return n, nil
}

// resume starts the queue in overflow when the database holds undelivered messages of an earlier
// run (up to seq, n of them), so that they are delivered them first, in order.
func (q *Queue) resume(seq int64, n int) {
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
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.overflowed
}

// Start has the queue deliver its events to deliver, in order, until ctx ends. A goroutine runs
// only while there is something to deliver: an idle login (most of them, most of the time) costs
// none.
func (q *Queue) Start(ctx context.Context, deliver func(bridgev2.RemoteEvent)) {
	q.mu.Lock()
	q.ctx, q.deliver = ctx, deliver
	q.mu.Unlock()
	q.wakeUp()
}

// run delivers until there is nothing to do, then ends; wakeUp starts it again.
func (q *Queue) run() {
	for {
		// Where events go is read each time: a login attached again (Start) gives a new one.
		q.mu.Lock()
		ctx, deliver := q.ctx, q.deliver
		if ctx.Err() != nil {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		evt, page, through, wait := q.next(ctx)
		switch {
		case evt != nil:
			deliver(evt)
		case through != 0:
			for _, m := range page {
				q.mu.Lock()
				q.deliveredSeq = max(q.deliveredSeq, m.slot().seq)
				q.overflowed = max(q.overflowed-1, 0)
				q.mu.Unlock()
				deliver(m)
			}
			q.mu.Lock()
			q.deliveredSeq = max(q.deliveredSeq, through)
			q.mu.Unlock()
		case wait:
			// Idle: end, unless a wake-up came meanwhile (wakeUp then saw this run going and
			// started none).
			q.mu.Lock()
			select {
			case <-q.wake:
				q.mu.Unlock()
				continue
			default:
			}
			q.running = false
			q.mu.Unlock()
			return
		}
	}
}

// next is what run does next: deliver evt, deliver a page of overflowed messages (read up to the
// spool order through), or wait.
func (q *Queue) next(ctx context.Context) (evt bridgev2.RemoteEvent, page []Message, through int64, wait bool) {
	q.mu.Lock()
	if len(q.items) > 0 {
		head := q.items[0]
		if m, ok := head.(Message); ok && q.store != nil && !m.slot().stored && m.slot().seq > q.storedSeq {
			q.mu.Unlock()
			return nil, nil, 0, true // not in the database yet: a crash now must not lose it
		}
		q.items[0] = nil
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil // let the backing array go
		}
		if m, ok := head.(Message); ok {
			q.deliveredSeq = max(q.deliveredSeq, m.slot().seq)
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
			if q.resync == nil {
				break
			}
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
		q.log.Err(err).Msg("Failed to read queued messages back from the database; trying again")
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

// InMemory is the number of events waiting in memory.
func (q *Queue) InMemory() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Drain takes the events waiting in memory, in order, as if delivered: for a caller that delivers
// them itself instead of Start.
func (q *Queue) Drain() []bridgev2.RemoteEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}
