package spool

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sealbridge/sealbridge/sbdb"
)

// writer stores the messages every login's queue pushes (queue.go), in batches across logins: one
// goroutine for the whole bridge, one INSERT per batch. It reports each batch back to its queues,
// which hand a message to bridgev2 only once it is stored.
type writer struct {
	sp      *Spool
	mu      sync.Mutex
	pending []pendingSave
	wake    chan struct{}
	// stopped is closed once run has made its last write.
	stopped chan struct{}
}

type pendingSave struct {
	q     *Queue
	owner string
	m     Message
}

// writerBatch bounds one write; writerRetry is the pause after a failed one.
const (
	writerBatch = 1000
	writerRetry = time.Second
)

func newWriter(sp *Spool) *writer {
	return &writer{sp: sp, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// save queues msgs of owner's queue q for storing. It never blocks and never calls back into q
// (push holds q's lock).
func (w *writer) save(q *Queue, owner string, msgs []Message) {
	w.mu.Lock()
	for _, m := range msgs {
		w.pending = append(w.pending, pendingSave{q, owner, m})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run stores what is pending until ctx ends, then what is left, once.
func (w *writer) run(ctx context.Context) {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.flush(context.WithoutCancel(ctx), false)
			return
		}
		w.flush(ctx, true)
	}
}

// flush writes everything pending; with retry, a batch that fails and holds messages kept nowhere
// else (overflowed out of memory) is tried again until it is stored or ctx ends.
func (w *writer) flush(ctx context.Context, retry bool) {
	for {
		w.mu.Lock()
		n := min(len(w.pending), writerBatch)
		batch := w.pending[:n:n]
		w.pending = w.pending[n:]
		if len(w.pending) == 0 {
			w.pending = nil
		}
		w.mu.Unlock()
		if n == 0 {
			return
		}
		for !w.write(ctx, batch) {
			if !retry {
				return
			}
			select {
			case <-time.After(writerRetry):
			case <-ctx.Done():
				return
			}
		}
	}
}

// write stores one batch and reports it to its queues; false when it must be tried again.
func (w *writer) write(ctx context.Context, batch []pendingSave) bool {
	items := make([]sbdb.SpoolItem, 0, len(batch))
	for _, p := range batch {
		id, v := p.m.SpoolItem()
		data, err := json.Marshal(v)
		if err != nil {
			continue
		}
		items = append(items, sbdb.SpoolItem{Kind: sbdb.SpoolIRC, Owner: p.owner, ID: id, Seq: p.m.slot().seq, Data: data})
	}
	err := w.sp.Put(ctx, items)
	if err != nil {
		overflowed := false
		for _, p := range batch {
			overflowed = overflowed || p.m.slot().overflow
		}
		w.sp.log.Err(err).Int("messages", len(items)).Bool("retrying", overflowed).
			Msg("Failed to spool IRC messages; a crash now would lose them")
		if overflowed && ctx.Err() == nil {
			return false // these are in the database or nowhere: keep trying
		}
	}
	// Report per queue, in order (each queue's messages are in push order in the batch).
	var run []Message
	var q *Queue
	for _, p := range batch {
		if p.q != q && len(run) > 0 {
			q.stored(run)
			run = nil
		}
		q = p.q
		run = append(run, p.m)
	}
	if len(run) > 0 {
		q.stored(run)
	}
	return true
}

// LoginStore is where a login's queue keeps its messages across a crash: the spool, under
// sbdb.SpoolIRC with the login as owner. decode makes a message of a stored item again (a message
// read back from the spool counts as stored).
func (sp *Spool) LoginStore(owner string, decode func(sbdb.SpoolItem) (Message, error)) QueueStore {
	if sp == nil {
		return nil
	}
	return loginStore{sp: sp, owner: owner, decode: decode}
}

type loginStore struct {
	sp     *Spool
	owner  string
	decode func(sbdb.SpoolItem) (Message, error)
}

func (s loginStore) save(q *Queue, msgs []Message) {
	s.sp.writer.save(q, s.owner, msgs)
}

func (s loginStore) after(ctx context.Context, seq int64, n int) ([]Message, int64, error) {
	items, through, err := s.sp.After(ctx, sbdb.SpoolIRC, s.owner, seq, n)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Message, 0, len(items))
	for _, it := range items {
		m, err := s.decode(it)
		if err != nil {
			s.sp.log.Warn().Err(err).Str("owner", s.owner).Str("message_id", it.ID).Msg("Skipping an unreadable spooled message")
			continue
		}
		m.slot().restore(it.Seq)
		out = append(out, m)
	}
	return out, through, nil
}

func (s loginStore) undelivered(ctx context.Context) (int64, int, error) {
	return s.sp.undelivered(ctx, sbdb.SpoolIRC, s.owner)
}
