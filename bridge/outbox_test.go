package bridge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"
	"maunium.net/go/mautrix/bridgev2"

	sbdb "github.com/sealbridge/sealbridge/database"
)

// testSpool is a spool on a fresh SQLite file, with its delivery loop running.
func testSpool(t *testing.T) *spool {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "spool.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp := &spool{store: sbdb.NewSpool(db), log: zerolog.Nop(), ready: make(chan struct{}), doneC: make(chan spoolKey, 16), stopped: make(chan struct{})}
	sealer, err := sbdb.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.start(ctx, sealer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-sp.stopped; _ = db.Close() })
	return sp
}

// An IRC message is in the spool before bridgev2 sees it and leaves it once handled; what a crashed
// run left is queued again, first, under the same message ID (so bridgev2 drops what it had sent).
func TestOutboxSpoolsUntilHandled(t *testing.T) {
	sp := testSpool(t)
	cl, _ := newWireClient(t, wireOpts{})
	cl.conn.spool = sp
	joinedChannel(cl, "#chan", "me", "bob")
	incoming(t, cl, "@msgid=one :bob!b@h PRIVMSG #chan :first")
	incoming(t, cl, "@msgid=two :bob!b@h PRIVMSG #chan :second")
	batch := queued(cl)
	if len(batch) != 2 {
		t.Fatalf("queued %d events", len(batch))
	}
	cl.spoolBatch(batch)
	pending := func() []string {
		items, err := sp.pending(context.Background(), sbdb.SpoolIRC, string(cl.loginID))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	if got := pending(); len(got) != 2 || got[0] != "net/one" || got[1] != "net/two" {
		t.Fatalf("spooled %q", got)
	}
	// Bodies wait in the database sealed, never in the clear.
	raw, err := sp.store.Pending(context.Background(), sbdb.SpoolIRC, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range raw {
		if strings.Contains(string(it.Data), "first") || strings.Contains(string(it.Data), "second") {
			t.Fatalf("spooled in the clear: %s", it.Data)
		}
	}
	// bridgev2 handled the first one.
	batch[0].(bridgev2.RemotePostHandler).PostHandle(context.Background(), nil)
	deadline := time.Now().Add(5 * time.Second)
	for len(pending()) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := pending(); len(got) != 1 || got[0] != "net/two" {
		t.Fatalf("after delivery of the first: %q", got)
	}

	// A new run of the same login gets the second one back, ahead of what it reads itself, and
	// does not spool it twice.
	cl2, _ := newWireClient(t, wireOpts{})
	cl2.conn.spool = sp
	cl2.loginID = cl.loginID
	joinedChannel(cl2, "#chan", "me", "bob")
	incoming(t, cl2, "@msgid=three :bob!b@h PRIVMSG #chan :third")
	cl2.replaySpool(context.Background())
	again := queued(cl2)
	if len(again) != 2 {
		t.Fatalf("second run queued %d events", len(again))
	}
	m, _ := asMessage(again[0])
	if m.ID != "net/two" || m.Data.Text != "second" || m.Data.Nick != "bob" || !m.Data.Channel {
		t.Fatalf("replayed %+v %+v", m.ID, m.Data)
	}
	if !again[0].(*outboxMessage).stored || again[1].(*outboxMessage).stored {
		t.Fatal("the replayed message must count as spooled, the new one not yet")
	}
}
