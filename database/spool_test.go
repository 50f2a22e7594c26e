package database

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"

	"go.mau.fi/util/dbutil"
)

func testSpool(t *testing.T) *Spool {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "spool.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	in := NewSpool(db)
	if err := in.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSpoolKeepsItemsUntilDone(t *testing.T) {
	ctx := context.Background()
	in := testSpool(t)
	now := time.Now()
	events := []SpoolItem{
		{Kind: SpoolMatrix, ID: "$b", Owner: "!r", Seq: SpoolSeq(now, 1), Data: []byte(`{"event_id":"$b"}`)},
		{Kind: SpoolMatrix, ID: "$a", Owner: "!r", Seq: SpoolSeq(now, 0), Data: []byte(`{"event_id":"$a"}`)},
	}
	if err := in.Put(ctx, events); err != nil {
		t.Fatal(err)
	}
	// A resent transaction stores nothing twice and keeps the first copy.
	if err := in.Put(ctx, []SpoolItem{{Kind: SpoolMatrix, ID: "$a", Owner: "!r", Seq: SpoolSeq(now, 5), Data: []byte(`{"changed":true}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := in.Done(ctx, SpoolMatrix, "$b"); err != nil {
		t.Fatal(err)
	}
	got, err := in.Pending(ctx, SpoolMatrix, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "$a" || string(got[0].Data) != `{"event_id":"$a"}` || got[0].Attempts != 0 {
		t.Fatalf("pending after done: %+v", got)
	}
	// Pending counts attempts; Prune drops events tried too often or too old.
	for i := 0; i < 2; i++ {
		if _, err = in.Pending(ctx, SpoolMatrix, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 4); err != nil || n != 0 {
		t.Fatalf("prune with room for attempts: %d, %v", n, err)
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 3); err != nil || n != 1 {
		t.Fatalf("prune after 3 attempts: %d, %v", n, err)
	}
	if err := in.Put(ctx, []SpoolItem{{Kind: SpoolMatrix, ID: "$old", Owner: "!r", Seq: SpoolSeq(now.Add(-2*time.Hour), 0), Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Prune(ctx, now.Add(-time.Hour), 3); err != nil || n != 1 {
		t.Fatalf("prune of an old event: %d, %v", n, err)
	}
}

func TestSpoolPendingInArrivalOrder(t *testing.T) {
	ctx := context.Background()
	in := testSpool(t)
	base := time.Now()
	var events []SpoolItem
	for i, id := range []string{"$3", "$1", "$2"} {
		events = append(events, SpoolItem{Kind: SpoolMatrix, ID: id, Owner: "!r", Seq: SpoolSeq(base.Add(time.Duration(2-i)*time.Microsecond), i), Data: []byte(`{}`)})
	}
	if err := in.Put(ctx, events); err != nil {
		t.Fatal(err)
	}
	got, err := in.Pending(ctx, SpoolMatrix, "")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range got {
		order = append(order, e.ID)
	}
	if len(order) != 3 || order[0] != "$2" || order[1] != "$1" || order[2] != "$3" {
		t.Fatalf("order %v", order)
	}
}
