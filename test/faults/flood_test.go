//go:build e2e

package faults

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// defaultConnectClass replaces the stack's permissive connect class (no fake lag, huge command
// rate) with one that leaves every flood setting at InspIRCd's defaults (commandrate 1000 = one
// command a second of penalty decay, threshold 10, fakelag on, recvq and sendq defaults); only the
// clone limits stay raised, since every test client comes from 127.0.0.1.
func defaultConnectClass(conf string) string {
	re := regexp.MustCompile(`(?s)<connect name="main".*?>`)
	return re.ReplaceAllString(conf, `<connect name="main" allow="*" maxchans="100" timeout="30" pingfreq="2m" localmax="1000" globalmax="1000" resolvehostnames="no" useident="no" limit="5000">`)
}

// TestFlood sends SEALBRIDGE_FLOOD_LINES lines (default 60; `make faults`: 1,000) from Matrix in
// a burst and checks that all reach IRC, in order, with the bridge's default flood control
// (burst 5, 1 line/s) against InspIRCd's default connect-class limits, and that the bridge's IRC
// connection was never dropped on the way.
func TestFlood(t *testing.T) {
	n := envInt("SEALBRIDGE_FLOOD_LINES", 60)
	budget := time.Duration(n)*time.Second*5/4 + 3*time.Minute // 1 line/s is n s
	ctx, cancel := context.WithTimeout(context.Background(), budget+5*time.Minute)
	defer cancel()
	t.Logf("flood: %d lines from Matrix in a burst; bridge flood defaults; InspIRCd default connect class; bridge -> InspIRCd directly", n)
	w := newWorld(t, ctx, "flood", options{ircConf: defaultConnectClass})

	t0 := time.Now()
	r, err := w.mx.SendBatch(ctx, w.room, "flood:", 0, n, 0, time.Minute)
	must(t, err)
	if len(r.Failed) > 0 {
		t.Fatalf("the homeserver refused %d of the Matrix messages: %v", len(r.Failed), r.Failed)
	}
	took := time.Since(t0)
	t.Logf("flood: %d messages accepted by the homeserver in %s (%.1f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if float64(n)/took.Seconds() < 2 {
		t.Logf("flood: NOTE the Matrix side sent slower than twice the bridge's 1 line/s (a busy machine), so this was hardly a burst")
	}
	wctx, wcancel := context.WithTimeout(ctx, budget)
	err = w.peer.wait(wctx, "all flood lines", func() bool { return len(w.peer.gotFrom["flood:"]) >= n })
	wcancel()
	got := w.peer.received("flood:")
	t.Logf("flood: %d of %d lines on IRC after %s", len(got), n, time.Since(t0).Round(time.Second))

	bad := 0
	for i, seq := range got {
		if seq != i && bad < 10 {
			t.Errorf("line %d on IRC is flood:%d (out of order, lost or duplicated before it)", i, seq)
			bad++
		}
	}
	if err != nil {
		t.Errorf("not all lines reached IRC: %v; lost: %s", err, missing(r.Sent, got, 20))
	}
	connectionStayedUp(t, w)
	if !t.Failed() {
		t.Logf("flood: %d lines in order, no disconnect, in %s", n, time.Since(t0).Round(time.Second))
	}
}

// connectionStayedUp checks that the bridge's IRC connection was never killed: no reconnect
// counted, no disconnect logged, and the peer saw no QUIT from the bridge's nick.
func connectionStayedUp(t testing.TB, w *world) {
	t.Helper()
	if v := reconnects(t, w.br.MetricsURL); v != 0 {
		t.Errorf("sealbridge_irc_reconnects_total = %v, want 0", v)
	}
	for _, line := range strings.Split(readAll(w.br.LogPath), "\n") {
		if strings.Contains(line, "Disconnected from IRC server") {
			t.Errorf("the bridge lost its IRC connection: %s", line)
		}
	}
	if w.peer.waitLine(expired(), "", func(m *ircmsg.Message) bool {
		return m.Command == "QUIT" && strings.EqualFold(m.Nick(), w.nick)
	}) == nil {
		t.Errorf("the IRC server disconnected the bridge's nick %s", w.nick)
	}
}

// expired is a context that is already done: waitLine then only checks what was heard.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func reconnects(t testing.TB, url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("metrics: %v", err)
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "sealbridge_irc_reconnects_total "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	t.Errorf("no sealbridge_irc_reconnects_total in the metrics")
	return -1
}
