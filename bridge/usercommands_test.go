package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

func parseLines(t *testing.T, lines ...string) []*ircmsg.Message {
	t.Helper()
	var out []*ircmsg.Message
	for _, l := range lines {
		m, err := ircmsg.ParseLine(l)
		must(t, err)
		out = append(out, &m)
	}
	return out
}

// A command's answer is gathered from the lines the reader sees; a login has a bounded number of
// questions open, each keeps a bounded number of lines, and one the server never ends times out.
func TestCollectorsAreBounded(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	cl.connector.waits.collect = 300 * time.Millisecond
	ctx := context.Background()
	started := make(chan struct{}, maxCollectors)
	results := make(chan int, maxCollectors)
	for i := 0; i < maxCollectors; i++ {
		go func() {
			lines, more, complete, err := cl.collect(ctx, func(m *ircmsg.Message) (bool, bool) { return m.Command == "322", m.Command == "323" },
				func() error { started <- struct{}{}; return nil })
			if err != nil || !complete {
				results <- -1
				return
			}
			results <- len(lines) + more
		}()
	}
	for i := 0; i < maxCollectors; i++ {
		<-started
	}
	if _, _, _, err := cl.collect(ctx, func(*ircmsg.Message) (bool, bool) { return false, false }, func() error { return nil }); !errors.Is(err, errBusy) {
		t.Fatalf("a fifth open question: %v, want errBusy", err)
	}
	for i := 0; i < maxCollected+500; i++ {
		serverSays(t, cl, fmt.Sprintf(":irc.test 322 me #c%d 1 :t", i))
	}
	serverSays(t, cl, ":irc.test 323 me :End of /LIST")
	for i := 0; i < maxCollectors; i++ {
		if n := <-results; n != maxCollected+500 {
			t.Fatalf("a collector counted %d lines, want %d", n, maxCollected+500)
		}
	}
	cl.collectors.mu.Lock()
	open := len(cl.collectors.open)
	cl.collectors.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d collectors left open", open)
	}
	// An answer that never ends: the question times out, incomplete.
	_, _, complete, err := cl.collect(ctx, func(*ircmsg.Message) (bool, bool) { return true, false }, func() error { return nil })
	if err != nil || complete {
		t.Fatalf("an endless answer: complete %v, err %v", complete, err)
	}
	_ = w
}

func TestFormatWhoisAndList(t *testing.T) {
	who := formatWhois("bob", parseLines(t,
		":irc.test 311 me bob ~b host.example * :Bob Real",
		":irc.test 319 me bob :@#chan #other",
		":irc.test 312 me bob irc.test :Test server",
		":irc.test 330 me bob bobacct :is logged in as",
		":irc.test 317 me bob 90 1700000000 :seconds idle, signon time",
		":irc.test 318 me bob :End of /WHOIS list."), true)
	for _, want := range []string{"**bob** is ~b@host.example (Bob Real)", "channels: @#chan #other", "server: irc.test", "account: bobacct", "idle: 1m30s"} {
		if !strings.Contains(who, want) {
			t.Errorf("whois lacks %q:\n%s", want, who)
		}
	}
	if got := formatWhois("gone", parseLines(t, ":irc.test 401 me gone :No such nick"), true); !strings.Contains(got, "not on IRC") {
		t.Errorf("whois of a missing nick: %q", got)
	}
	var lines []string
	for i := 0; i < 70; i++ {
		lines = append(lines, fmt.Sprintf(":irc.test 322 me #c%02d %d :topic %d", i, i, i))
	}
	list := formatList(parseLines(t, lines...), 5, false, 1, "*c*")
	if !strings.Contains(list, "75 channel(s), largest first, page 1 of 2") || !strings.Contains(list, "* #c69 (69) topic 69") || strings.Contains(list, "#c19 ") ||
		!strings.Contains(list, "cut short") || !strings.Contains(list, "`list *c* 2`") {
		t.Errorf("list, page 1:\n%s", list)
	}
	list = formatList(parseLines(t, lines...), 0, true, 2, "*c*")
	if !strings.Contains(list, "page 2 of 2") || !strings.Contains(list, "* #c19 (19)") || !strings.Contains(list, "* #c00 (0)") || strings.Contains(list, "#c20 ") ||
		strings.Contains(list, "next page") || strings.Contains(list, "cut short") {
		t.Errorf("list, page 2:\n%s", list)
	}
	if list = formatList(parseLines(t, lines...), 0, true, 3, ""); !strings.Contains(list, "no page 3, the last is 2") {
		t.Errorf("list, past the last page:\n%s", list)
	}
}

// An ignored nick's messages, in private and in channels, and its typing, are not bridged.
func TestIgnoredNicksAreNotBridged(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: tagCaps})
	joinedChannel(cl, "#c", "me", "spammer", "bob")
	cl.dmPeers.add("spammer")
	cl.meta.Ignored = map[string]string{"spammer": "Spammer"}
	serverSays(t, cl, ":Spammer!s@h PRIVMSG #c :buy now")
	serverSays(t, cl, ":Spammer!s@h PRIVMSG me :buy now")
	serverSays(t, cl, "@+typing=active :Spammer!s@h TAGMSG #c")
	serverSays(t, cl, ":bob!b@h PRIVMSG #c :hello")
	evts := queued(cl)
	if len(evts) != 1 {
		t.Fatalf("queued %d events, want only bob's line", len(evts))
	}
}
