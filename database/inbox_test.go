package database

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"

	"go.mau.fi/util/dbutil"
)

func testInbox(t *testing.T) *Inbox {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "inbox.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	in := NewInbox(db)
	if err := in.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInboxKeepsEventsUntilDone(t *testing.T) {
	ctx := context.Background()
	in := testInbox(t)
	now := time.Now()
	events := []InboxEvent{
		{EventID: "$b", RoomID: "!r", Seq: InboxSeq(now, 1), Raw: []byte(`{"event_id":"$b"}`)},
		{EventID: "$a", RoomID: "!r", Seq: InboxSeq(now, 0), Raw: []byte(`{"event_id":"$a"}`)},
	}
	if err := in.Put(ctx, events); err != nil {
		t.Fatal(err)
	}
	// A resent transaction stores nothing twice and keeps the first copy.
	if err := in.Put(ctx, []InboxEvent{{EventID: "$a", RoomID: "!r", Seq: InboxSeq(now, 5), Raw: []byte(`{"changed":true}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := in.Done(ctx, "$b"); err != nil {
		t.Fatal(err)
	}
	got, err := in.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].EventID != "$a" || string(got[0].Raw) != `{"event_id":"$a"}` || got[0].Attempts != 0 {
		t.Fatalf("pending after done: %+v", got)
	}
	// Pending counts attempts; Prune drops events tried too often or too old.
	for i := 0; i < 2; i++ {
		if _, err = in.Pending(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 4); err != nil || n != 0 {
		t.Fatalf("prune with room for attempts: %d, %v", n, err)
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 3); err != nil || n != 1 {
		t.Fatalf("prune after 3 attempts: %d, %v", n, err)
	}
	if err := in.Put(ctx, []InboxEvent{{EventID: "$old", RoomID: "!r", Seq: InboxSeq(now.Add(-2*time.Hour), 0), Raw: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 3); err != nil || n != 1 {
		t.Fatalf("prune of an old event: %d, %v", n, err)
	}
}

func TestInboxPendingInArrivalOrder(t *testing.T) {
	ctx := context.Background()
	in := testInbox(t)
	base := time.Now()
	var events []InboxEvent
	for i, id := range []string{"$3", "$1", "$2"} {
		events = append(events, InboxEvent{EventID: id, RoomID: "!r", Seq: InboxSeq(base.Add(time.Duration(2-i)*time.Microsecond), i), Raw: []byte(`{}`)})
	}
	if err := in.Put(ctx, events); err != nil {
		t.Fatal(err)
	}
	got, err := in.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range got {
		order = append(order, e.EventID)
	}
	if len(order) != 3 || order[0] != "$2" || order[1] != "$1" || order[2] != "$3" {
		t.Fatalf("order %v", order)
	}
}
