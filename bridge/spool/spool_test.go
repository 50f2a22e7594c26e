package spool

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"

	"github.com/sealbridge/sealbridge/sbdb"
)

// testDB is a fresh SQLite database, closed after the test.
func testDB(t *testing.T) *dbutil.Database {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "spool.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	must(t, err)
	return db
}

// testSpool is a started spool on a fresh SQLite file, with its delivery loop running.
func testSpool(t *testing.T) *Spool {
	t.Helper()
	db := testDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	sp := New(db, zerolog.Nop())
	sealer, err := sbdb.NewSealer(make([]byte, 32))
	must(t, err)
	must(t, sp.Start(ctx, sealer))
	t.Cleanup(func() { cancel(); sp.Wait(); _ = db.Close() })
	return sp
}

// spooledIDs lists the IDs of the items of a kind (and owner, unless "") waiting in the spool.
func spooledIDs(t *testing.T, sp *Spool, kind, owner string) []string {
	t.Helper()
	items, err := sp.store.Pending(context.Background(), kind, owner)
	must(t, err)
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A stopping bridge finishes the spool's last writes before the database closes: deliveries
// marked just before the stop are deleted, so a clean restart does not send them again.
func TestStopFinishesTheSpoolsLastWrites(t *testing.T) {
	db := testDB(t)
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sp := New(db, zerolog.Nop())
	sealer, err := sbdb.NewSealer(make([]byte, 32))
	must(t, err)
	must(t, sp.Start(ctx, sealer))
	var items []sbdb.SpoolItem
	for i := 0; i < 500; i++ {
		items = append(items, sbdb.SpoolItem{Kind: sbdb.SpoolIRC, Owner: "o", ID: fmt.Sprintf("m%d", i), Seq: int64(i + 1), Data: []byte("x")})
	}
	must(t, sp.Put(context.Background(), items))
	for _, it := range items {
		sp.Done(sbdb.SpoolIRC, it.ID)
	}
	cancel() // the bridge stops: the background context ends, then Stop waits for the spool
	sp.Wait()
	left, err := sp.store.Items(context.Background(), sbdb.SpoolIRC, "o")
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("%d delivered items still spooled after a clean stop", len(left))
	}
}

// What the spool gives up on (a day old, or failed at several starts) is told to whom it concerns
// before it is deleted; an item the key cannot open is kept, and counted.
func TestGivenUpItemsAreToldAndUnopenableOnesKept(t *testing.T) {
	sp := testSpool(t)
	var told []string
	sp.Tell = func(kind string, items []sbdb.SpoolItem, cutoff time.Time) {
		for _, it := range items {
			told = append(told, kind+"/"+it.ID)
		}
	}
	old := time.Now().Add(-2 * MaxAge)
	must(t, sp.Put(context.Background(), []sbdb.SpoolItem{
		{Kind: sbdb.SpoolIRC, Owner: "login", ID: "old-irc", Seq: sbdb.SpoolSeq(old, 0), Data: []byte(`{}`)},
		{Kind: sbdb.SpoolMatrix, Owner: "!r:x", ID: "$old", Seq: sbdb.SpoolSeq(old, 1), Data: []byte(`{"room_id":"!r:x","sender":"@u:x"}`)},
		{Kind: sbdb.SpoolIRC, Owner: "login", ID: "fresh", Seq: sbdb.SpoolSeq(time.Now(), 0), Data: []byte(`{}`)},
		{Kind: sbdb.SpoolRequest, Owner: "login", ID: "req", Seq: sbdb.SpoolSeq(old, 2), Data: []byte(`{}`)},
	}))
	// Sealed under another key: cannot be opened, so it is kept.
	key := make([]byte, 32)
	for i := range key {
		key[i] = 7
	}
	other, _ := sbdb.NewSealer(key)
	sealed, _ := other.Seal("x", sbdb.SpoolIRC+"/foreign")
	must(t, sp.store.Put(context.Background(), []sbdb.SpoolItem{{Kind: sbdb.SpoolIRC, Owner: "login", ID: "foreign", Seq: sbdb.SpoolSeq(old, 3), Data: []byte(sealed)}}))
	sp.giveUp(context.Background(), MaxAttempts)
	if strings.Join(told, " ") != "irc/old-irc matrix/$old" {
		t.Fatalf("told of %q", told)
	}
	left := map[string]bool{}
	for _, kind := range []string{sbdb.SpoolIRC, sbdb.SpoolMatrix, sbdb.SpoolRequest} {
		for _, id := range spooledIDs(t, sp, kind, "") {
			left[id] = true
		}
	}
	if !left["fresh"] || !left["req"] || !left["foreign"] || left["old-irc"] || left["$old"] {
		t.Fatalf("left in the spool: %v", left)
	}
	if n := testutil.ToFloat64(sp.Unopenable); n < 1 {
		t.Errorf("the item sealed under another key was not counted (%v)", n)
	}
}
