package bridge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/sbdb"
)

// testSpool is a started spool on a fresh SQLite file.
func testSpool(t *testing.T) *spool.Spool {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "spool.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sp := spool.New(db, zerolog.Nop())
	sealer, err := sbdb.NewSealer(make([]byte, 32))
	must(t, err)
	must(t, sp.Start(ctx, sealer))
	t.Cleanup(func() { cancel(); sp.Wait(); _ = db.Close() })
	return sp
}

// spooledIDs lists the IDs of the items of a kind and owner waiting in the spool.
func spooledIDs(t *testing.T, sp *spool.Spool, kind, owner string) []string {
	t.Helper()
	items, err := sp.Items(context.Background(), kind, owner)
	must(t, err)
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

// An IRC message is in the spool before bridgev2 sees it and leaves it once handled; what a crashed
// run left is delivered again, first, under the same message ID (so bridgev2 drops what it had sent).
func TestOutboxSpoolsUntilHandled(t *testing.T) {
	sp := testSpool(t)
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.spool = sp
	cl.setupQueue()
	joinedChannel(cl, "#chan", "me", "bob")
	incoming(t, cl, "@msgid=one :bob!b@h PRIVMSG #chan :first")
	incoming(t, cl, "@msgid=two :bob!b@h PRIVMSG #chan :second")
	pending := func() []string { return spooledIDs(t, sp, sbdb.SpoolIRC, string(cl.loginID)) }
	waitUntil(t, "both messages spooled", func() bool { return len(pending()) == 2 })
	if got := pending(); got[0] != "net/one" || got[1] != "net/two" {
		t.Fatalf("spooled %q", got)
	}
	batch := queued(cl)
	if len(batch) != 2 {
		t.Fatalf("queued %d events", len(batch))
	}
	// bridgev2 handled the first one.
	batch[0].(bridgev2.RemotePostHandler).PostHandle(context.Background(), portalFor(cl.channelKey("#chan")))
	waitUntil(t, "the first one to leave the spool", func() bool { return len(pending()) == 1 })
	if got := pending(); got[0] != "net/two" {
		t.Fatalf("after delivery of the first: %q", got)
	}

	// A new run of the same login gets the second one back, ahead of what it reads itself, and
	// does not spool it twice.
	cl2, _ := newWireClient(t, wireOpts{})
	cl2.connector.spool = sp
	cl2.loginID = cl.loginID
	cl2.setupQueue()
	cl2.resumeSpool(context.Background())
	joinedChannel(cl2, "#chan", "me", "bob")
	incoming(t, cl2, "@msgid=three :bob!b@h PRIVMSG #chan :third")
	again := drainQueue(t, cl2, 2)
	m, _ := asMessage(again[0])
	if m.ID != "net/two" || m.Data.Text != "second" || m.Data.Nick != "bob" || !m.Data.Channel {
		t.Fatalf("replayed %+v %+v", m.ID, m.Data)
	}
	if m, _ := asMessage(again[1]); m.ID != "net/three" {
		t.Fatalf("then %s, want net/three", m.ID)
	}
	if got := pending(); len(got) != 2 {
		t.Fatalf("spooled after the second run: %q", got)
	}
}

// drainQueue runs the client's remote queue until n events were delivered and returns them.
func drainQueue(t *testing.T, cl *IRCClient, n int) []bridgev2.RemoteEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan bridgev2.RemoteEvent, n+1000)
	cl.remote.Start(ctx, func(evt bridgev2.RemoteEvent) { got <- evt })
	var out []bridgev2.RemoteEvent
	for len(out) < n {
		select {
		case evt := <-got:
			out = append(out, evt)
		case <-time.After(10 * time.Second):
			t.Fatalf("delivered %d of %d events", len(out), n)
		}
	}
	return out
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// bridgev2 only logs a message it failed to send (its HTTP retries used up while the homeserver
// was down): such a message stays spooled and is queued again, until it is sent or has had its
// retries; one bridgev2 stored as sent leaves the spool.
func TestOutboxRetriesWhatBridgev2FailedToSend(t *testing.T) {
	sp := testSpool(t)
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.waits.deliveryRetry = 20 * time.Millisecond
	cl.connector.spool = sp
	cl.setupQueue()
	withBridgeDB(t, cl.connector)
	ctx := context.Background()
	key := cl.channelKey("#chan")
	if err := cl.connector.Bridge.DB.Portal.Insert(ctx, &database.Portal{BridgeID: "sealbridge", PortalKey: key, Metadata: &sbdb.PortalMetadata{}}); err != nil {
		t.Fatal(err)
	}
	if err := cl.connector.Bridge.DB.Ghost.Insert(ctx, &database.Ghost{BridgeID: "sealbridge", ID: "net/bob", Metadata: &sbdb.GhostMetadata{}}); err != nil {
		t.Fatal(err)
	}
	portal := portalFor(key)
	joinedChannel(cl, "#chan", "me", "bob")
	incoming(t, cl, "@msgid=sent :bob!b@h PRIVMSG #chan :reached matrix")
	incoming(t, cl, "@msgid=failed :bob!b@h PRIVMSG #chan :did not")
	pending := func() []string { return spooledIDs(t, sp, sbdb.SpoolIRC, string(cl.loginID)) }
	waitUntil(t, "both spooled", func() bool { return len(pending()) == 2 })
	batch := queued(cl)
	// bridgev2 stored the first as sent; the second's send failed.
	if err := cl.connector.Bridge.DB.Message.Insert(ctx, &database.Message{
		BridgeID: "sealbridge", ID: "net/sent", MXID: "$sent:example.org", Room: key, SenderID: "net/bob", Timestamp: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	// bridgev2 is handed the failed one again from within PostHandle (the portal's loop, so the
	// portal's later messages wait); its third try is stored as sent.
	calls := 0
	cl.connector.loop = loopFunc(func(_ context.Context, _ *bridgev2.Portal, login *bridgev2.UserLogin, evt bridgev2.RemoteMessage) {
		calls++
		if login != cl.login || evt.GetID() != "net/failed" {
			t.Errorf("handed again: %q for login %v", evt.GetID(), login)
		}
		if calls == 3 {
			if err := cl.connector.Bridge.DB.Message.Insert(ctx, &database.Message{
				BridgeID: "sealbridge", ID: "net/failed", MXID: "$late:example.org", Room: key, SenderID: "net/bob", Timestamp: time.Now(),
			}); err != nil {
				t.Error(err)
			}
		}
	})
	for _, evt := range batch {
		evt.(bridgev2.RemotePostHandler).PostHandle(ctx, portal)
	}
	if calls != 3 {
		t.Fatalf("handed to bridgev2 again %d times, want 3 (until stored)", calls)
	}
	waitPending := func(want int) []string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(pending()) != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		return pending()
	}
	if got := waitPending(0); len(got) != 0 {
		t.Fatalf("spooled after both reached Matrix: %q", got)
	}
	if n := len(queued(cl)); n != 0 {
		t.Fatalf("%d events queued again: the retry belongs in the portal's loop", n)
	}

	// One that never gets through is tried deliveryRetries times and stays spooled for the next
	// start; so does one whose retries a stopping bridge cuts short.
	incoming(t, cl, "@msgid=never :bob!b@h PRIVMSG #chan :never")
	incoming(t, cl, "@msgid=stopping :bob!b@h PRIVMSG #chan :stopping")
	waitUntil(t, "both spooled", func() bool { return len(pending()) == 2 })
	batch = queued(cl)
	calls = 0
	cl.connector.loop = loopFunc(func(context.Context, *bridgev2.Portal, *bridgev2.UserLogin, bridgev2.RemoteMessage) { calls++ })
	batch[0].(bridgev2.RemotePostHandler).PostHandle(ctx, portal)
	if calls != deliveryRetries {
		t.Errorf("handed again %d times, want %d", calls, deliveryRetries)
	}
	stopped, stop := context.WithCancel(ctx)
	stop()
	batch[1].(bridgev2.RemotePostHandler).PostHandle(stopped, portal)
	if calls != deliveryRetries {
		t.Errorf("handed again while the bridge stops")
	}
	time.Sleep(50 * time.Millisecond)
	if got := pending(); len(got) != 2 || got[0] != "net/never" || got[1] != "net/stopping" {
		t.Fatalf("spooled after giving up: %q, want both for the next start", got)
	}
}

// A message bridgev2 failed to send even after its retries is handed over again while the bridge
// runs (not only at the next start), and stays spooled meanwhile.
func TestFailedMessagesAreTriedAgainWhileRunning(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.waits.deliveryRetry, cl.connector.waits.retryLater = time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl.remoteCtx = ctx
	withBridgeDB(t, cl.connector)
	cl.connector.loop = loopFunc(func(context.Context, *bridgev2.Portal, *bridgev2.UserLogin, bridgev2.RemoteMessage) {})
	joinedChannel(cl, "#chan", "me", "bob")
	incoming(t, cl, "@msgid=late :bob!b@h PRIVMSG #chan :homeserver down")
	first := queued(cl)
	if len(first) != 1 {
		t.Fatalf("queued %d", len(first))
	}
	first[0].(bridgev2.RemotePostHandler).PostHandle(ctx, portalFor(cl.channelKey("#chan")))
	waitUntil(t, "the message handed over again", func() bool { return cl.remote.InMemory() == 1 })
	if again := queued(cl); again[0] != first[0] {
		t.Fatal("something else was queued again")
	}
}

// The connector counts what the spool gave up on and keeps the IRC side's notice for when the
// login is loaded.
func TestGivenUpMessagesAreCountedAndTold(t *testing.T) {
	old := time.Now().Add(-2 * spool.MaxAge)
	c := NewConnector()
	c.tellUndelivered(sbdb.SpoolIRC, []sbdb.SpoolItem{{Kind: sbdb.SpoolIRC, Owner: "login", ID: "a", Seq: sbdb.SpoolSeq(old, 0)}}, time.Now().Add(-spool.MaxAge))
	if n := testutil.ToFloat64(c.Metrics.Undelivered.WithLabelValues(metrics.IRCToMatrix, metrics.UndeliveredExpired)); n != 1 {
		t.Fatalf("undelivered counted %v", n)
	}
	if n := c.takeUndelivered("login"); n != 1 {
		t.Fatalf("notice kept for %d messages, want 1", n)
	}
}

// loopFunc is a portal loop that calls itself, for tests without bridgev2's portal loop.
type loopFunc func(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, evt bridgev2.RemoteMessage)

func (f loopFunc) redeliver(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, evt bridgev2.RemoteMessage) {
	f(ctx, portal, login, evt)
}
