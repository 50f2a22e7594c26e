package bridge

import (
	"context"
	"sync"

	"maunium.net/go/mautrix/bridgev2"
)

// remoteQueue decouples a login's IRC reader from the homeserver. bridgev2 blocks QueueRemoteEvent
// once a portal's event buffer is full (a slow or absent homeserver), and an IRC reader that stops
// reading is disconnected by the server ("SendQ exceeded") and loses what was said meanwhile. So the
// reader only appends here, and one goroutine per login hands the events to bridgev2 in order.
//
// The queue is in memory: events still queued when the bridge process dies are lost. A durable spool
// is the next step (see docs/architecture.md).
type remoteQueue struct {
	mu    sync.Mutex
	items []bridgev2.RemoteEvent
	wake  chan struct{}
}

func newRemoteQueue() *remoteQueue {
	return &remoteQueue{wake: make(chan struct{}, 1)}
}

func (q *remoteQueue) push(evt bridgev2.RemoteEvent) {
	q.mu.Lock()
	q.items = append(q.items, evt)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len is the number of events waiting for bridgev2.
func (q *remoteQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// run delivers events to deliver, in order, until ctx ends.
func (q *remoteQueue) run(ctx context.Context, deliver func(bridgev2.RemoteEvent)) {
	for {
		q.mu.Lock()
		batch := q.items
		q.items = nil
		q.mu.Unlock()
		for _, evt := range batch {
			deliver(evt)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}
