package bridge

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
)

// The reader must never wait for the homeserver: push returns at once while delivery is stuck, and
// once delivery resumes every event arrives, in order.
func TestRemoteQueueNeverBlocksAndKeepsOrder(t *testing.T) {
	q := newRemoteQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	stuck := make(chan struct{}, 1)
	got := make(chan int, 10000)
	go q.run(ctx, func(evt bridgev2.RemoteEvent) {
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
		got <- int(evt.(*simplevent.Message[int]).Data)
	})
	// The first event gets delivery stuck (a homeserver that does not answer).
	q.push(&simplevent.Message[int]{Data: 0})
	<-stuck
	start := time.Now()
	const n = 5000
	for i := 1; i < n; i++ {
		q.push(&simplevent.Message[int]{Data: i})
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("pushing %d events with delivery stuck took %s", n, elapsed)
	}
	// Everything after the stuck event waits in the queue.
	if q.Len() != n-1 {
		t.Fatalf("queue holds %d of %d events while delivery is stuck", q.Len(), n-1)
	}
	close(release)
	for i := 0; i < n; i++ {
		select {
		case v := <-got:
			if v != i {
				t.Fatalf("event %d delivered as #%d", v, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d events delivered", i, n)
		}
	}
}
