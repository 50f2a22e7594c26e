package bridge

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sealbridge/sealbridge/sbdb"
)

// spoolWriter stores the IRC messages every login's remote queue pushes (remotequeue.go), in
// batches across logins: one goroutine for the whole bridge, one INSERT per batch. It reports each
// batch back to its queues, which hand a message to bridgev2 only once it is stored.
type spoolWriter struct {
	sp      *spool
	mu      sync.Mutex
	pending []pendingSave
	wake    chan struct{}
	// stopped is closed once run has made its last write.
	stopped chan struct{}
}

type pendingSave struct {
	q     *remoteQueue
	owner string
	m     *outboxMessage
}

// writerBatch bounds one write; writerRetry is the pause after a failed one.
const (
	writerBatch = 1000
	writerRetry = time.Second
)

func newSpoolWriter(sp *spool) *spoolWriter {
	return &spoolWriter{sp: sp, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// save queues msgs of owner's queue q for storing. It never blocks and never calls back into q
// (push holds q's lock).
func (w *spoolWriter) save(q *remoteQueue, owner string, msgs []*outboxMessage) {
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
func (w *spoolWriter) run(ctx context.Context) {
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
func (w *spoolWriter) flush(ctx context.Context, retry bool) {
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
func (w *spoolWriter) write(ctx context.Context, batch []pendingSave) bool {
	items := make([]sbdb.SpoolItem, 0, len(batch))
	for _, p := range batch {
		data, err := json.Marshal(p.m.spooled)
		if err != nil {
			continue
		}
		items = append(items, sbdb.SpoolItem{Kind: sbdb.SpoolIRC, Owner: p.owner, ID: string(p.m.spooled.ID), Seq: p.m.seq, Data: data})
	}
	err := w.sp.put(ctx, items)
	if err != nil {
		overflowed := false
		for _, p := range batch {
			overflowed = overflowed || p.m.overflow
		}
		w.sp.log.Err(err).Int("messages", len(items)).Bool("retrying", overflowed).
			Msg("Failed to spool IRC messages; a crash now would lose them")
		if overflowed && ctx.Err() == nil {
			return false // these are in the database or nowhere: keep trying
		}
	}
	// Report per queue, in order (each queue's messages are in push order in the batch).
	var run []*outboxMessage
	var q *remoteQueue
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

// loginStore is a login's view of the spool for its remote queue.
type loginStore struct {
	cl *IRCClient
	w  *spoolWriter
}

func (s loginStore) save(q *remoteQueue, msgs []*outboxMessage) {
	s.w.save(q, string(s.cl.loginID), msgs)
}

func (s loginStore) after(ctx context.Context, seq int64, n int) ([]*outboxMessage, int64, error) {
	items, through, err := s.cl.connector.spool.after(ctx, sbdb.SpoolIRC, string(s.cl.loginID), seq, n)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*outboxMessage, 0, len(items))
	for _, it := range items {
		var m spooledMessage
		if err := json.Unmarshal(it.Data, &m); err != nil {
			s.cl.log.Warn().Err(err).Str("message_id", it.ID).Msg("Skipping an unreadable spooled IRC message")
			continue
		}
		evt := s.cl.outboxEvent(&m, time.Time{}, true)
		evt.seq = it.Seq
		out = append(out, evt)
	}
	return out, through, nil
}
