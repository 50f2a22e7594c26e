//go:build e2e

package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// TestBurst has an IRC user say SEALBRIDGE_BURST_LINES lines (default 1,000; `make faults`: 5,000)
// into the channel at wire speed, on a server that throttles nobody (the stack's connect class:
// no fake lag), while the bridge's own connection has a small send queue at the server (64 KiB):
// a bridge that stopped reading while the homeserver catches up would be killed ("SendQ
// exceeded"), and everyone in the channel would see it quit. Every line must reach Matrix once,
// in order, and the bridge's connection must stay up.
func TestBurst(t *testing.T) {
	n := envInt("SEALBRIDGE_BURST_LINES", 1000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*50*time.Millisecond+10*time.Minute)
	defer cancel()
	w := newWorld(t, ctx, "burst", options{bridgeSendQ: "64K", ircConf: noThreshold})
	burster := newPeer(w.ircd.Addr(), "burster", w.channel, "", irc.FloodConfig{Burst: 1 << 30, LinesPerSecond: 1e9})
	must(t, burster.connect(ctx))
	defer burster.close()
	since := time.Now().Add(-5 * time.Second)

	t0 := time.Now()
	for i := 0; i < n; i++ {
		must(t, burster.client().Send("PRIVMSG", w.channel, fmt.Sprintf("burst:%d", i)))
	}
	for burster.client().QueueLen() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	sentIn := time.Since(t0)
	in := func() int {
		k := 0
		for _, e := range w.mx.Events() {
			if e.RoomID == w.room && strings.HasPrefix(e.Body(), "burst:") {
				k++
			}
		}
		return k
	}
	last, lastChange := -1, time.Now()
	for in() < n && time.Since(lastChange) < 90*time.Second && ctx.Err() == nil {
		if k := in(); k != last {
			last, lastChange = k, time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	deliveredIn := time.Since(t0)
	col, err := w.mx.Collect(ctx, w.room, "burst:", "", since)
	must(t, err)
	var sent []int
	for i := 0; i < n; i++ {
		sent = append(sent, i)
	}
	c := tally(sent, col.Seqs)
	t.Logf("burst: %d lines sent at wire speed in %s; in Matrix after %s (%.0f lines/s): delivered %d, lost %d, duplicated %d, reordered %d",
		n, sentIn.Round(time.Millisecond), deliveredIn.Round(time.Second), float64(c.Delivered)/deliveredIn.Seconds(), c.Delivered, c.Lost, c.Duplicated, c.Reordered)
	if c.Lost > 0 || c.Duplicated > 0 || c.Reordered > 0 {
		t.Errorf("the burst reached Matrix with %d lost, %d duplicated, %d reordered (lost: %s)", c.Lost, c.Duplicated, c.Reordered, missing(sent, col.Seqs, 20))
	}
	connectionStayedUp(t, w)
}

// noThreshold lifts the stack's per-client throttle: its connect classes without their flood
// threshold (1,000 commands), which would kill a sender at wire speed (Excess Flood) before the
// bridge is tested.
func noThreshold(conf string) string {
	return strings.ReplaceAll(conf, `threshold="1000"`, `threshold="10000000"`)
}
