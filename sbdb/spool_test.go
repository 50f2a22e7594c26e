package sbdb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/database"
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
	// Pending counts attempts; Expired names the events tried too often or too old.
	for i := 0; i < 2; i++ {
		if _, err = in.Pending(ctx, SpoolMatrix, ""); err != nil {
			t.Fatal(err)
		}
	}
	expired := func(maxAttempts int) []string {
		t.Helper()
		items, err := in.Expired(ctx, SpoolMatrix, now.Add(-time.Hour), maxAttempts, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	if got := expired(4); len(got) != 0 {
		t.Fatalf("expired with room for attempts: %v", got)
	}
	if got := expired(3); len(got) != 1 || got[0] != "$a" {
		t.Fatalf("expired after 3 attempts: %v", got)
	}
	if err := in.Put(ctx, []SpoolItem{{Kind: SpoolMatrix, ID: "$old", Owner: "!r", Seq: SpoolSeq(now.Add(-2*time.Hour), 0), Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if got := expired(100); len(got) != 1 || got[0] != "$old" {
		t.Fatalf("expired by age: %v", got)
	}
	if at := SpoolSeqTime(SpoolSeq(now, 7)); !at.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("SpoolSeqTime = %v, want %v", at, now)
	}
}

func TestSpoolPutNothingTakesNoWriteLock(t *testing.T) {
	in := testSpool(t)
	// Another writer holds the write lock (_txlock=immediate takes it at BEGIN).
	tx, err := in.db.RawDB.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := in.Put(ctx, nil); err != nil {
		t.Fatalf("Put of no items waited for the write lock: %v after %v", err, time.Since(start))
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

// Next to bridgev2's tables, the upgrade indexes user_login by user, so that bridgev2's lookup of a
// user's logins at start is not a scan of every login.
func TestUpgradeIndexesLoginsByUser(t *testing.T) {
	ctx := context.Background()
	raw, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := database.New("sealbridge", MetaTypes(), raw).Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err := NewSpool(raw).Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := raw.Query(ctx, `EXPLAIN QUERY PLAN SELECT id FROM user_login WHERE bridge_id=$1 AND user_mxid=$2`, "sealbridge", "@u:example.org")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "sealbridge_user_login_user_idx") {
		t.Fatalf("a user's logins are looked up by %q, not by the index", got)
	}
}
