package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/sealbridge/sealbridge/sbdb"
)

// Lines in a chathistory batch: messages are bridged (with their msgid as ID, so bridgev2 drops
// the ones it has), everything else is not replayed; our own lines in history never consume the
// echo of a line just sent from Matrix.
func TestHistoryBatchReplaysMessagesOnly(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: []string{"batch", "echo-message", "draft/chathistory"}})
	cl.login = &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: cl.loginID}}
	joinedChannel(cl, "#c", "me", "bob")
	cl.rememberEcho("#c", "hello", "$live")
	for _, line := range []string{
		":irc.test BATCH +h1 chathistory #c",
		"@batch=h1;msgid=m1;time=2026-01-01T00:00:00.000Z :bob!b@h PRIVMSG #c :while you were away",
		"@batch=h1;msgid=m2;time=2026-01-01T00:00:01.000Z :carol!c@h JOIN #c",
		"@batch=h1;msgid=m3;time=2026-01-01T00:00:02.000Z :me!u@h PRIVMSG #c :hello",
		"@batch=h1;time=2026-01-01T00:00:03.000Z;+typing=active :bob!b@h TAGMSG #c",
		":irc.test BATCH -h1",
		"@msgid=m4 :me!u@h PRIVMSG #c :hello",
	} {
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		cl.OnMessage(cl.ircConn, &msg, time.Now())
	}
	evts := queued(cl)
	var ids []string
	for _, e := range evts {
		m, ok := asMessage(e)
		if !ok {
			t.Fatalf("history replayed a %T", e)
		}
		ids = append(ids, string(m.ID)+"|"+string(m.TransactionID))
	}
	// m1 from bob; m3 our own line from history (bridged as ours, dropped by ID if known); m4 the
	// live echo of what we sent, as the remote echo of event $live.
	want := []string{"net/m1|", "net/m3|", "net/m4|$live"}
	if len(ids) != len(want) {
		t.Fatalf("queued %q, want %q", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, ids[i], want[i])
		}
	}
	if cl.fromHistory(&ircmsg.Message{}) {
		t.Error("a line without a batch tag counted as history")
	}
}

// Lines read during a login flow (a relogin's rejoins answer before the login is saved) are held,
// then handled in order once the login exists, so the client knows its channels' members.
func TestLinesDuringLoginFlowAreHeldNotDropped(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	cl.attached = false
	cl.meta.Channels = map[string]*sbdb.Channel{"#c": {Name: "#c"}} // a relogin keeps its channels
	for _, line := range []string{
		":me!u@h JOIN #c",
		":irc.test 353 me = #c :me @bob carol",
		":bob!b@h MODE #c +v carol",
	} {
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		cl.OnMessage(cl.ircConn, &msg, time.Now())
	}
	if cl.withChannel("#c", func(*channelState) {}) {
		t.Fatal("a line was handled before the login existed")
	}
	cl.releaseEarly()
	cl.mu.Lock()
	ch := cl.channels[cl.fold("#c")]
	var carol, bob *member
	if ch != nil {
		carol, bob = ch.Members["carol"], ch.Members["bob"]
	}
	cl.mu.Unlock()
	if carol == nil || carol.Modes != "v" || bob == nil || bob.Modes != "o" {
		t.Fatalf("after the login flow: channel %+v", ch)
	}
}

// The config's backfill section decides what history is asked for: nothing when disabled, the
// latest max_initial_messages lines for a new portal, max_catchup_messages (within the server's
// maximum) after a reconnect.
func TestHistoryFollowsTheBackfillConfig(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"batch", "draft/chathistory"}, isupport: "CHATHISTORY=50"})
	ctx := context.Background()
	withBridgeDB(t, cl.connector)
	cl.connector.Bridge.Config = &bridgeconfig.BridgeConfig{}
	cl.connector.Bridge.Config.Backfill = bridgeconfig.BackfillConfig{Enabled: false, MaxInitialMessages: 7, MaxCatchupMessages: 30}
	joinedChannel(cl, "#new", "me")
	cl.requestHistory("#new")
	time.Sleep(100 * time.Millisecond) // the lookup runs off the reader goroutine
	wantWire(t, "backfill disabled", w.barrier(), nil)

	cl.connector.Bridge.Config.Backfill.Enabled = true
	cl.requestHistory("#new")
	time.Sleep(100 * time.Millisecond)
	wantWire(t, "a new portal", w.barrier(), []string{"CHATHISTORY LATEST #new * 7"})

	key := cl.channelKey("#old")
	must(t, cl.connector.Bridge.DB.Portal.Insert(ctx, &database.Portal{BridgeID: "sealbridge", PortalKey: key, Metadata: &sbdb.PortalMetadata{}}))
	must(t, cl.connector.Bridge.DB.Ghost.Insert(ctx, &database.Ghost{BridgeID: "sealbridge", ID: "net/bob", Metadata: &sbdb.GhostMetadata{}}))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, cl.connector.Bridge.DB.Message.Insert(ctx, &database.Message{BridgeID: "sealbridge", ID: "net/x", MXID: "$x", Room: key, SenderID: "net/bob", Timestamp: at}))
	joinedChannel(cl, "#old", "me")
	cl.requestHistory("#old")
	time.Sleep(100 * time.Millisecond)
	wantWire(t, "a catch-up", w.barrier(), []string{"CHATHISTORY AFTER #old timestamp=2026-01-02T03:04:04.999Z 30"})
	cl.connector.Bridge.Config.Backfill.MaxCatchupMessages = 500 // the server's maximum (50) wins
	cl.requestHistory("#old")
	time.Sleep(100 * time.Millisecond)
	wantWire(t, "a catch-up above the server's maximum", w.barrier(), []string{"CHATHISTORY AFTER #old timestamp=2026-01-02T03:04:04.999Z 50"})
}
