package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
)

// bridgedID is the message ID of the one line the client queued since the last call.
func bridgedID(t *testing.T, cl *IRCClient) networkid.MessageID {
	t.Helper()
	evts := queued(cl)
	if len(evts) != 1 {
		t.Fatalf("%d events queued, want 1", len(evts))
	}
	m, ok := asMessage(evts[0])
	if !ok {
		t.Fatalf("queued %T", evts[0])
	}
	return m.ID
}

// Without message-tags a Matrix reply quotes the replied line: only a line bridged into the same
// portal, only one said while this login's connection was in the channel, and only as a short
// plain excerpt on one line.
func TestReplyQuoteWithoutMessageTags(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#here", "Bob")
	joinedChannel(cl, "#there", "Bob")
	cl.mu.Lock()
	cl.channels["#here"].Joined = time.Now().Add(-time.Minute)
	cl.channels["#there"].Joined = time.Now().Add(-time.Minute)
	cl.mu.Unlock()
	here := cl.channelKey("#here")
	ctx := context.Background()
	reply := func(room networkid.PortalKey, id networkid.MessageID, text string) []string {
		t.Helper()
		target := &database.Message{ID: id, Room: room, SenderID: MakeUserID("net", "bob")}
		if _, err := cl.sendToIRC(ctx, matrixMessage(portalFor(here), event.MsgText, text, "", target)); err != nil {
			t.Fatal(err)
		}
		return w.barrier()
	}

	incoming(t, cl, ":Bob!b@h PRIVMSG #here :question \x02one\x02?")
	q := bridgedID(t, cl)
	wantWire(t, "a quoted reply", reply(here, q, "yes"), []string{`PRIVMSG #here :Bob: "question one?" <- yes`})

	incoming(t, cl, ":Bob!b@h PRIVMSG #here :"+strings.Repeat("word ", 30))
	long := bridgedID(t, cl)
	got := reply(here, long, "ok")
	if len(got) != 1 || !strings.Contains(got[0], `Bob: "word word`) || !strings.Contains(got[0], `…" <- ok`) || len(got[0]) > 120 {
		t.Errorf("long line quoted as %q", got)
	}

	// The same message ID in another portal: the text of #there never reaches #here.
	incoming(t, cl, ":Bob!b@h PRIVMSG #there :the other room's secret")
	elsewhere := bridgedID(t, cl)
	wantWire(t, "a reply naming another room's line", reply(here, elsewhere, "hm"), []string{"PRIVMSG #here :Bob: hm"})

	// A line from before this connection joined the channel was not seen by its user: no quote.
	incoming(t, cl, ":Bob!b@h PRIVMSG #here :said before you came")
	early := bridgedID(t, cl)
	cl.mu.Lock()
	cl.channels["#here"].Joined = time.Now().Add(time.Second)
	cl.mu.Unlock()
	wantWire(t, "a line from before the join", reply(here, early, "what?"), []string{"PRIVMSG #here :Bob: what?"})
	cl.mu.Lock()
	cl.channels["#here"].Joined = time.Now().Add(-time.Minute)
	cl.mu.Unlock()

	// An unknown message (bridged before a restart, or never): the nick prefix only.
	wantWire(t, "an unknown line", reply(here, "net/h:unknown", "sure"), []string{"PRIVMSG #here :Bob: sure"})
}

// With message-tags the reply tag does the job: no quote, and no lines kept for quoting.
func TestNoReplyQuoteWithMessageTags(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags"}})
	joinedChannel(cl, "#here", "Bob")
	incoming(t, cl, "@msgid=q1 :Bob!b@h PRIVMSG #here :question")
	id := bridgedID(t, cl)
	if _, ok := cl.connector.quotes.get(cl.channelKey("#here"), id); ok {
		t.Error("a line was kept for quoting although the server has message-tags")
	}
	target := &database.Message{ID: id, Room: cl.channelKey("#here"), SenderID: MakeUserID("net", "bob")}
	if _, err := cl.sendToIRC(context.Background(), matrixMessage(portalFor(cl.channelKey("#here")), event.MsgText, "yes", "", target)); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "tagged reply", w.barrier(), []string{"@+draft/reply=q1 PRIVMSG #here :Bob: yes"})
}

func TestQuoteCacheIsBounded(t *testing.T) {
	var q quoteCache
	key := MakeChannelPortalKey("net", "#c")
	for i := 0; i < quoteCacheSize+10; i++ {
		q.put(key, networkid.MessageID(string(rune('a'+i%26))+strings.Repeat("x", i/26)), "n", "t", time.Now())
	}
	if len(q.entries) != quoteCacheSize {
		t.Errorf("%d entries, want %d", len(q.entries), quoteCacheSize)
	}
	if _, ok := q.get(key, "a"); ok {
		t.Error("the oldest entry survived")
	}
}

func TestExcerpt(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"\x0304red\x03 and \x1fu": "red and u",
		"tab\tand\x07bell":        "tab and bell",
		"日本語のテキスト" + strings.Repeat("あ", 30): "日本語のテキスト" + strings.Repeat("あ", 12) + "…",
	} {
		if got := excerpt(in); got != want {
			t.Errorf("excerpt(%q) = %q, want %q", in, got, want)
		}
	}
}

// A channel two logins share, on a server without msgid: one of them bridges each line (the same
// line from two connections would get two message IDs and show twice).
func TestSharedChannelWithoutMsgIDBridgedOnce(t *testing.T) {
	a, b := twoLogins(t)
	for _, cl := range []*IRCClient{a, b} {
		joinedChannel(cl, "#shared", "Bob")
		incoming(t, cl, ":Bob!b@h PRIVMSG #shared :hello both")
	}
	if n, m := len(queued(a)), len(queued(b)); n != 1 || m != 0 {
		t.Errorf("queued by the two logins: %d and %d, want 1 and 0", n, m)
	}
	// Once the first login has left the channel, the other one bridges.
	a.handleLeave(a.ircConn.Nick(), "#shared", "", "", time.Now())
	queued(a) // the leave
	incoming(t, b, ":Bob!b@h PRIVMSG #shared :still here")
	if n := len(queued(b)); n != 1 {
		t.Errorf("the remaining login queued %d lines, want 1", n)
	}
	// With a msgid the copies are told apart: the first login to read the line queues it, the
	// other drops its copy before spooling it.
	joinedChannel(a, "#shared", "Bob")
	incoming(t, b, "@msgid=m1 :Bob!b@h PRIVMSG #shared :tagged")
	incoming(t, a, "@msgid=m1 :Bob!b@h PRIVMSG #shared :tagged")
	eb, ea := queued(b), queued(a)
	if len(ea) != 0 || len(eb) != 1 {
		t.Fatalf("with msgid: %d and %d queued, want 0 and 1", len(ea), len(eb))
	}
	ea = eb
	if ma, _ := asMessage(ea[0]); ma.ID != MakeMessageID(nil, "net", "", "", "m1", time.Time{}, "") {
		t.Errorf("message ID %q", ma.ID)
	}
}

// A quote is one short line of printable text, whatever the IRC line held.
func FuzzExcerpt(f *testing.F) {
	for _, s := range []string{"plain", "\x02bold\x02 \x0304,05colour", strings.Repeat("word ", 40), "a\r\nb\x00c\x01", "日本語" + strings.Repeat("あ", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := excerpt(s)
		if len(e) > quoteMaxBytes+len("…") {
			t.Fatalf("excerpt of %d bytes: %q", len(e), e)
		}
		for _, r := range e {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character %U in excerpt %q", r, e)
			}
		}
	})
}
