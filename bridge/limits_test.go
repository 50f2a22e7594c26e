package bridge

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

func limitedCount(cl *IRCClient, limit string) int {
	return int(testutil.ToFloat64(cl.connector.Metrics.PeerLimited.WithLabelValues(limit)))
}

// Lines for channels the login is not in never reach bridgev2 (which would make a portal for each
// of them): a server can name as many channels as it likes.
func TestLinesForChannelsNotJoinedAreDropped(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#in", "me", "bob")
	for i := 0; i < 1000; i++ {
		serverSays(t, cl, fmt.Sprintf(":bob!b@h PRIVMSG #junk%d :hi", i))
		serverSays(t, cl, fmt.Sprintf(":bob!b@h TOPIC #junk%d :t", i))
		serverSays(t, cl, fmt.Sprintf(":me!u@h PART #junk%d", i))
	}
	serverSays(t, cl, ":bob!b@h PRIVMSG #in :kept")
	evts := queued(cl)
	if len(evts) != 1 || evts[0].GetPortalKey() != cl.channelKey("#in") {
		t.Fatalf("queued %d events (%v), want the one line of #in", len(evts), evts)
	}
	if n := limitedCount(cl, metrics.LimitChannels); n != 3000 {
		t.Fatalf("counted %d dropped channel events, want 3000", n)
	}
}

// JOINs the server forces on the connection: a burst is bridged (and told to the user), the rest
// are not; beyond max_channels they are parted. The user's own `join` beyond the cap is refused.
func TestForcedJoinsAreBounded(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	cl.connector.Config.Limits = config.Limits{MaxChannels: 8, NewDMBurst: 3, NewDMInterval: time.Hour}
	for i := 0; i < 100; i++ {
		serverSays(t, cl, fmt.Sprintf(":me!u@h JOIN #forced%d", i))
	}
	cl.mu.Lock()
	n, stored := len(cl.channels), len(cl.meta.Channels)
	cl.mu.Unlock()
	if n != 3 || stored != 3 {
		t.Fatalf("after 100 forced JOINs: in %d channels, %d stored; want the burst of 3", n, stored)
	}
	wantWire(t, "forced joins within the cap", w.barrier(), nil)

	// Channels the user asked for are always bridged, up to the cap; a JOIN beyond it is parted.
	for i := 0; i < 5; i++ {
		cl.rememberChannel(fmt.Sprintf("#asked%d", i), "", false)
		serverSays(t, cl, fmt.Sprintf(":me!u@h JOIN #asked%d", i))
	}
	cl.mu.Lock()
	n = len(cl.channels)
	cl.mu.Unlock()
	if n != 8 {
		t.Fatalf("in %d channels, want 8", n)
	}
	cl.rememberChannel("#ninth", "", false)
	serverSays(t, cl, ":me!u@h JOIN #ninth")
	wantWire(t, "a join beyond the cap", w.barrier(), []string{"PART #ninth :sealbridge: channel limit reached"})
	if got := limitedCount(cl, metrics.LimitChannels); got != 97+1 {
		t.Fatalf("counted %d refused joins, want 98", got)
	}
}

// A stranger's private message opens a room only within the DM policy's burst; later strangers
// wait as message requests, which `pm` hands over in order and which are bounded too.
func TestNewPrivateChatsAreBoundedAndHeldAsRequests(t *testing.T) {
	sp := testSpool(t)
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.spool = sp
	cl.connector.Config.Limits = config.Limits{NewDMBurst: 2, NewDMInterval: time.Hour, MaxDMRequests: 5}
	cl.setupQueue()
	for i := 0; i < 4; i++ {
		serverSays(t, cl, fmt.Sprintf("@msgid=m%d :stranger%d!s@h PRIVMSG me :hello %d", i, i, i))
	}
	serverSays(t, cl, "@msgid=m4 :stranger3!s@h PRIVMSG me :again")
	// The user's own message to someone new (from another client) opens a chat without a token.
	serverSays(t, cl, "@msgid=m5 :me!u@h PRIVMSG friend :hi friend")
	evts := queued(cl)
	var keys []string
	for _, e := range evts {
		keys = append(keys, string(e.GetPortalKey().ID))
	}
	if strings.Join(keys, " ") != "net/stranger0 net/stranger1 net/friend" {
		t.Fatalf("rooms for %q; want stranger0, stranger1 and friend", keys)
	}
	if list := cl.requestList(); !strings.Contains(list, "3 message(s) from 2 people") || !strings.Contains(list, "stranger3 (2)") {
		t.Fatalf("request list:\n%s", list)
	}
	requests := func() []string { return spooledIDs(t, sp, sbdb.SpoolRequest, string(cl.loginID)) }
	waitUntil(t, "3 requests in the spool", func() bool { return len(requests()) == 3 })
	// Beyond max_dm_requests messages are dropped and counted.
	for i := 0; i < 10; i++ {
		serverSays(t, cl, fmt.Sprintf("@msgid=x%d :flood%d!s@h PRIVMSG me :spam", i, i))
	}
	waitUntil(t, "5 requests in the spool", func() bool { return len(requests()) == 5 })
	time.Sleep(50 * time.Millisecond)
	if got := requests(); len(got) != 5 {
		t.Fatalf("%d requests kept, want the limit of 5", len(got))
	}
	if n := limitedCount(cl, metrics.LimitDMRequests); n != 8 {
		t.Fatalf("counted %d dropped requests, want 8", n)
	}
	if !strings.Contains(cl.requestList(), "8 more message(s) were dropped") {
		t.Fatalf("the list does not say what was dropped:\n%s", cl.requestList())
	}
	// pm stranger3: its two messages go into the new chat, in order, and leave the requests.
	cl.openedDM("stranger3")
	got := drainQueue(t, cl, 2)
	for i, want := range []string{"net/m3", "net/m4"} {
		if m, _ := asMessage(got[i]); string(m.ID) != want || got[i].GetPortalKey() != cl.dmKey("stranger3") {
			t.Fatalf("released #%d: %s to %v, want %s", i, m.ID, got[i].GetPortalKey(), want)
		}
	}
	if got := requests(); len(got) != 3 {
		t.Fatalf("requests left: %q", got)
	}
	serverSays(t, cl, "@msgid=m6 :stranger3!s@h PRIVMSG me :now in the room")
	if evts := queued(cl); len(evts) != 1 {
		t.Fatalf("a message in the opened chat queued %d events", len(evts))
	}
	if n := cl.clearRequests(""); n != 3 {
		t.Fatalf("cleared %d requests, want 3", n)
	}
}

// With delivery stuck, 5,000 lines keep at most queue_in_memory events in memory; the rest wait in
// the database; once delivery resumes every line arrives once, in order, and the joins and parts
// that came meanwhile become one resync of their room.
func TestRemoteQueueOverflowsToTheDatabase(t *testing.T) {
	sp := testSpool(t)
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.spool = sp
	cl.connector.Config.Limits = config.Limits{QueueInMemory: 50}
	cl.setupQueue()
	joinedChannel(cl, "#c", "me", "bob")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	got := make(chan bridgev2.RemoteEvent, 10000)
	cl.remote.Start(ctx, func(evt bridgev2.RemoteEvent) {
		<-release
		got <- evt
	})
	const n = 5000
	for i := 0; i < n; i++ {
		serverSays(t, cl, fmt.Sprintf("@msgid=id%d :bob!b@h PRIVMSG #c :line %d", i, i))
		if i == n/2 {
			serverSays(t, cl, ":carol!c@h JOIN #c")
		}
	}
	inMemory := cl.remote.InMemory()
	if inMemory > 50 {
		t.Fatalf("%d events in memory, bound 50", inMemory)
	}
	waitUntil(t, "every line spooled", func() bool { return len(spooledIDs(t, sp, sbdb.SpoolIRC, string(cl.loginID))) == n })
	close(release)
	next := 0
	resyncs := 0
	for next < n || resyncs == 0 {
		select {
		case evt := <-got:
			switch e := evt.(type) {
			case *outboxMessage:
				if want := fmt.Sprintf("net/id%d", next); string(e.ID) != want {
					t.Fatalf("delivered %s, want %s", e.ID, want)
				}
				next++
				e.PostHandle(ctx, portalFor(e.GetPortalKey())) // delivered: leaves the spool
			case *simplevent.ChatResync:
				if next < n {
					t.Fatalf("the folded resync came before the overflowed lines (%d of %d)", next, n)
				}
				resyncs++
			case *simplevent.ChatInfoChange:
				if next > 50 {
					t.Fatal("carol's join was delivered as is during the overflow")
				}
			default:
				t.Fatalf("unexpected %T", evt)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("delivered %d of %d lines, %d resyncs", next, n, resyncs)
		}
	}
	select {
	case evt := <-got:
		t.Fatalf("delivered more: %T", evt)
	case <-time.After(200 * time.Millisecond):
	}
	if cl.remote.Len() != 0 {
		t.Fatalf("queue still counts %d", cl.remote.Len())
	}
	// Out of the overflow, lines go through memory again.
	serverSays(t, cl, "@msgid=after :bob!b@h PRIVMSG #c :after")
	select {
	case evt := <-got:
		if m, _ := asMessage(evt); m.ID != "net/after" {
			t.Fatalf("after the overflow: %s", m.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a line after the overflow was not delivered")
	}
}

// What a connection remembers of nicks and members is bounded, and forgotten per connection.
func TestNicksAndMembersAreBounded(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.Config.Limits = config.Limits{MaxNicks: 100}
	joinedChannel(cl, "#c", "me")
	for i := 0; i < 5000; i++ {
		serverSays(t, cl, fmt.Sprintf(":n%d!u@h JOIN #c", i))
	}
	cl.mu.Lock()
	nicks, members := len(cl.nicks), len(cl.channels["#c"].Members)
	cl.mu.Unlock()
	if nicks > 100 || members > 100 {
		t.Fatalf("%d nicks and %d members remembered, bound 100", nicks, members)
	}
	cl.OnConnected(cl.ircConn)
	cl.mu.Lock()
	nicks = len(cl.nicks)
	cl.mu.Unlock()
	if nicks != 0 {
		t.Fatalf("%d nicks survive a new connection", nicks)
	}
}

// A server cannot make the bridge collect without a bound from multiline batches: too many open at
// once are passed on line by line, and one past max_batch_lines is split into messages, every
// line kept.
func TestMultilineBatchesAreBounded(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: []string{"batch", "draft/multiline"}})
	cl.connector.Config.Limits = config.Limits{MaxBatchLines: 10, MaxOpenBatches: 2}
	joinedChannel(cl, "#c", "me", "bob")
	for i := 0; i < 3; i++ {
		serverSays(t, cl, fmt.Sprintf("@msgid=b%d :bob!b@h BATCH +r%d draft/multiline #c", i, i))
	}
	for i := 0; i < 3; i++ {
		serverSays(t, cl, fmt.Sprintf("@batch=r%d :bob!b@h PRIVMSG #c :only line of %d", i, i))
	}
	if evts := queued(cl); len(evts) != 1 {
		t.Fatalf("the third open batch's line: %d events, want it passed on alone", len(evts))
	}
	for i := 0; i < 25; i++ {
		serverSays(t, cl, fmt.Sprintf("@batch=r0 :bob!b@h PRIVMSG #c :line %d", i))
	}
	serverSays(t, cl, ":bob!b@h BATCH -r0")
	evts := queued(cl)
	var text []string
	var ids []string
	for _, e := range evts {
		m, _ := asMessage(e)
		text = append(text, m.Data.Text)
		ids = append(ids, string(m.ID))
	}
	if len(evts) != 3 || strings.Join(ids, " ") != "net/b0 net/b0/2 net/b0/3" {
		t.Fatalf("a 26-line batch became %d messages %q, want 3 (10 lines each at most)", len(evts), ids)
	}
	all := strings.Join(text, "\n")
	if strings.Count(all, "\n")+1 != 26 || !strings.HasPrefix(all, "only line of 0\nline 0") || !strings.HasSuffix(all, "line 24") {
		t.Fatalf("lines lost in the split:\n%s", all)
	}
}

// CHATHISTORY TARGETS lines are taken only as many as asked for, once per connection: each one
// costs a database lookup and a history request.
func TestUnsolicitedHistoryTargetsAreIgnored(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	for i := 0; i < 100; i++ {
		serverSays(t, cl, fmt.Sprintf(":irc.test CHATHISTORY TARGETS nick%d timestamp=2026-01-01T00:00:00.000Z", i))
	}
	if n := limitedCount(cl, metrics.LimitHistory); n != 100 {
		t.Fatalf("%d unsolicited targets refused, want 100", n)
	}
	cl.mu.Lock()
	cl.targetsWanted = 2 // as after requestDMHistory with a limit of 2
	cl.mu.Unlock()
	for i := 0; i < 5; i++ {
		serverSays(t, cl, fmt.Sprintf(":irc.test CHATHISTORY TARGETS more%d timestamp=2026-01-01T00:00:00.000Z", i))
	}
	if n := limitedCount(cl, metrics.LimitHistory); n != 103 {
		t.Fatalf("%d targets refused, want 103 (2 of 5 asked for)", n)
	}
}
