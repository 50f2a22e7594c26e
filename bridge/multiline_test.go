package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/event"
)

var multilineCaps = []string{"batch", "message-tags", "echo-message", "draft/multiline=max-bytes=4096,max-lines=24"}

// A draft/multiline batch from IRC is one Matrix message: lines joined with line breaks, a
// draft/multiline-concat line joined without, under the batch's msgid and sender.
func TestMultilineFromIRC(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: multilineCaps})
	joinedChannel(cl, "#chan", "me", "bob")
	serverSays(t, cl,
		"@msgid=ml1;time=2026-01-01T00:00:00.000Z :bob!b@h BATCH +m1 draft/multiline #chan",
		"@batch=m1 :bob!b@h PRIVMSG #chan :first line",
		"@batch=m1 :bob!b@h PRIVMSG #chan :second ",
		"@batch=m1;draft/multiline-concat :bob!b@h PRIVMSG #chan :half",
		":bob!b@h BATCH -m1")
	evts := queued(cl)
	if len(evts) != 1 {
		t.Fatalf("queued %d events, want one message", len(evts))
	}
	m, ok := asMessage(evts[0])
	if !ok || m.Data.Text != "first line\nsecond half" || m.Data.Nick != "bob" || m.ID != "net/ml1" {
		t.Fatalf("bridged %+v %+v", m.ID, m.Data)
	}
}

// A Matrix message of several lines goes out as one batch where the server offers the cap (a
// line cut for length continues with draft/multiline-concat), and its echo is not bridged back.
func TestMultilineToIRC(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: multilineCaps})
	joinedChannel(cl, "#chan", "me", "bob")
	portal := portalFor(cl.channelKey("#chan"))
	long := strings.Repeat("word ", 120) // more than one IRC line
	if _, err := cl.sendToIRC(context.Background(), matrixMessage(portal, event.MsgText, "hello\n"+long, "", nil)); err != nil {
		t.Fatal(err)
	}
	got := w.barrier()
	if len(got) < 5 {
		t.Fatalf("wire %q", got)
	}
	open, _ := ircmsg.ParseLine(got[0])
	if open.Command != "BATCH" || !strings.HasPrefix(open.Params[0], "+") || open.Params[1] != "draft/multiline" || open.Params[2] != "#chan" {
		t.Fatalf("opening line %q", got[0])
	}
	ref := open.Params[0][1:]
	var text strings.Builder
	for i, l := range got[1 : len(got)-1] {
		m, _ := ircmsg.ParseLine(l)
		if b, _ := m.GetTag("batch"); m.Command != "PRIVMSG" || !strings.Contains(l, "batch="+ref) || b == false {
			t.Fatalf("line %q is not in the batch", l)
		}
		concat, _ := m.GetTag("draft/multiline-concat")
		if i > 0 && !concat {
			text.WriteByte('\n')
		}
		text.WriteString(m.Params[1])
	}
	if last := got[len(got)-1]; last != "BATCH -"+ref {
		t.Fatalf("closing line %q", last)
	}
	if text.String() != "hello\n"+strings.TrimSuffix(long, "") {
		t.Fatalf("the batch reads %q", text.String())
	}
	// The server's echo of the whole batch is ours: nothing is bridged back.
	echo := []string{"@msgid=e1 :me!u@h BATCH +e draft/multiline #chan"}
	for _, l := range got[1 : len(got)-1] {
		m, _ := ircmsg.ParseLine(l)
		tags := "@batch=e"
		if c, _ := m.GetTag("draft/multiline-concat"); c {
			tags += ";draft/multiline-concat"
		}
		echo = append(echo, tags+" :me!u@h PRIVMSG #chan :"+m.Params[1])
	}
	serverSays(t, cl, append(echo, ":me!u@h BATCH -e")...)
	if evts := queued(cl); len(evts) != 0 {
		t.Fatalf("the echo of our batch was bridged: %d events", len(evts))
	}
}

// serverSays hands server lines to the client's line handler, in order, on the test goroutine.
func serverSays(t *testing.T, cl *IRCClient, lines ...string) {
	t.Helper()
	for _, l := range lines {
		m, err := ircmsg.ParseLine(l)
		if err != nil {
			t.Fatalf("parse %q: %v", l, err)
		}
		cl.handleLine(&m, time.Now())
	}
}
