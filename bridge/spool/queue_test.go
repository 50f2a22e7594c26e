package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/sbdb"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
)

// The reader must never wait for the homeserver: push returns at once while delivery is stuck, and
// once delivery resumes every event arrives, in order.
func TestQueueNeverBlocksAndKeepsOrder(t *testing.T) {
	q := NewQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	stuck := make(chan struct{}, 1)
	got := make(chan int, 10000)
	q.Start(ctx, func(evt bridgev2.RemoteEvent) {
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
		got <- int(evt.(*simplevent.Message[int]).Data)
	})
	// The first event gets delivery stuck (a homeserver that does not answer).
	q.Push(&simplevent.Message[int]{Data: 0})
	<-stuck
	start := time.Now()
	const n = 5000
	for i := 1; i < n; i++ {
		q.Push(&simplevent.Message[int]{Data: i})
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

// testMessage is a spooled message for the queue's tests.
type testMessage struct {
	simplevent.Message[string]
	Slot
}

func (m *testMessage) SpoolItem() (string, any) { return string(m.ID), m.Data }

func decodeTest(it sbdb.SpoolItem) (Message, error) {
	m := &testMessage{}
	m.ID = networkid.MessageID(it.ID)
	return m, json.Unmarshal(it.Data, &m.Data)
}

// Messages are sealed in the spool before Run hands them over; past the memory limit they wait in
// the database only and are read back in order; a new run of the login delivers what the last one
// had not, first.
func TestQueueSpoolsSealedAndOverflowsInOrder(t *testing.T) {
	sp := testSpool(t)
	q := NewQueue()
	q.Configure(QueueConfig{Limit: 2, Log: zerolog.Nop(), Store: sp.LoginStore("login", decodeTest)})
	const n = 20
	for i := 0; i < n; i++ {
		m := &testMessage{}
		m.ID, m.Data = networkid.MessageID(fmt.Sprintf("m%02d", i)), fmt.Sprintf("secret %d", i)
		q.Push(m)
	}
	if q.InMemory() != 2 || q.Len() != n {
		t.Fatalf("%d in memory, %d queued; want 2 and %d", q.InMemory(), q.Len(), n)
	}
	waitFor(t, func() bool { return len(spooledIDs(t, sp, sbdb.SpoolIRC, "login")) == n })
	raw, err := sp.store.Items(context.Background(), sbdb.SpoolIRC, "login")
	must(t, err)
	for _, it := range raw {
		if strings.Contains(string(it.Data), "secret") {
			t.Fatalf("spooled in the clear: %s", it.Data)
		}
	}
	got := runQueue(t, q, n)
	for i, m := range got {
		if want := fmt.Sprintf("secret %d", i); m.Data != want {
			t.Fatalf("delivery %d is %q, want %q", i, m.Data, want)
		}
	}
	// Nothing was marked delivered: a new run of the login gets all of them back, in order.
	q2 := NewQueue()
	q2.Configure(QueueConfig{Limit: 2, Log: zerolog.Nop(), Store: sp.LoginStore("login", decodeTest)})
	if left, err := q2.Resume(context.Background()); err != nil || left != n {
		t.Fatalf("resumed %d (%v), want %d", left, err, n)
	}
	if again := runQueue(t, q2, n); again[0].ID != "m00" || again[n-1].ID != "m19" {
		t.Fatalf("resumed %s..%s", again[0].ID, again[n-1].ID)
	}
}

// runQueue runs q until n events were delivered and returns them.
func runQueue(t *testing.T, q *Queue, n int) []*testMessage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *testMessage, n+100)
	q.Start(ctx, func(evt bridgev2.RemoteEvent) { got <- evt.(*testMessage) })
	var out []*testMessage
	for len(out) < n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("delivered %d of %d", len(out), n)
		}
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// An idle queue holds no goroutine; the next event starts one again.
func TestQueueDeliversWithoutAnIdleGoroutine(t *testing.T) {
	q := NewQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 10)
	q.Start(ctx, func(evt bridgev2.RemoteEvent) { got <- evt.(*simplevent.Message[int]).Data })
	idle := func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return !q.running
	}
	for i := 0; i < 3; i++ {
		q.Push(&simplevent.Message[int]{Data: i})
		select {
		case v := <-got:
			if v != i {
				t.Fatalf("delivered %d, want %d", v, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered", i)
		}
		waitFor(t, idle)
	}
	cancel()
	q.Push(&simplevent.Message[int]{Data: 9})
	time.Sleep(50 * time.Millisecond)
	if !idle() || len(got) != 0 {
		t.Fatal("delivered after the context ended")
	}
}

// A login attached again (Start with a new context after the old one ended) gets its events.
func TestQueueStartedAgainDelivers(t *testing.T) {
	q := NewQueue()
	old, stop := context.WithCancel(context.Background())
	q.Start(old, func(bridgev2.RemoteEvent) {})
	stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 1)
	q.Start(ctx, func(evt bridgev2.RemoteEvent) { got <- evt.(*simplevent.Message[int]).Data })
	q.Push(&simplevent.Message[int]{Data: 7})
	select {
	case v := <-got:
		if v != 7 {
			t.Fatalf("delivered %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered after Start with a new context")
	}
}
