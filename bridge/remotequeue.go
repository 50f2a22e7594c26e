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
// The queue itself is in memory; persist (the spool, outbox.go) writes each batch's messages to the
// database before they are delivered, so a crash loses none of them.
type remoteQueue struct {
	mu    sync.Mutex
	items []bridgev2.RemoteEvent
	wake  chan struct{}
	// persist, if set, runs on each batch before its events are delivered.
	persist func([]bridgev2.RemoteEvent)
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

// pushFront queues events ahead of everything waiting (messages an earlier run did not deliver).
func (q *remoteQueue) pushFront(evts []bridgev2.RemoteEvent) {
	q.mu.Lock()
	q.items = append(append([]bridgev2.RemoteEvent(nil), evts...), q.items...)
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
		if len(batch) > 0 && q.persist != nil {
			q.persist(batch)
		}
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
