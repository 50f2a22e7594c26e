package bridge

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// Lines from Matrix still in the flood-control queue when the connection drops are not lost: the
// next connection sends them, in order, after its rejoins.
func TestUnsentMatrixLinesGoOutOnTheNextConnection(t *testing.T) {
	opts := wireOpts{flood: &irc.FloodConfig{Burst: 1, LinesPerSecond: 2}}
	cl, w := newWireClient(t, opts)
	joinedChannel(cl, "#chan", "me")
	cl.mu.Lock()
	cl.ready = true
	cl.mu.Unlock()
	var words []string
	for i := 0; i < 300; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	msg := matrixMessage(portalFor(cl.channelKey("#chan")), event.MsgText, strings.Join(words, " "), "", nil)
	if _, err := cl.sendToIRC(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	first := w.next()
	_ = w.conn.Close() // the connection drops with the other lines still queued
	waitUntil(t, "the unsent lines kept", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.unsent) > 0 && !cl.ircConn.Connected()
	})
	w2 := connectWire(t, w.ln, cl, opts)
	got := []string{first}
	for !strings.HasSuffix(got[len(got)-1], "w299") {
		got = append(got, w2.next())
	}
	var text []string
	for _, l := range got {
		m := checkWireLine(t, l)
		if m.Command != "PRIVMSG" || m.Params[0] != "#chan" {
			t.Fatalf("unexpected line %q", l)
		}
		text = append(text, m.Params[1])
	}
	if strings.Join(strings.Fields(strings.Join(text, " ")), " ") != strings.Join(words, " ") || len(got) < 3 {
		t.Fatalf("the message on IRC across the reconnection:\n%s", strings.Join(text, "\n"))
	}
}
