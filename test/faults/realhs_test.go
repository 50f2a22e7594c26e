//go:build e2e

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/internal/profiling"
	"github.com/sealbridge/sealbridge/test/stack"
)

// BenchmarkRealHomeserver is `make bench`'s real-homeserver phase (bench/realhs.go runs it): the
// bridge's whole-process CPU per message against the test stack's Dendrite, InspIRCd and an E2EE
// matrix-js-sdk client, where the rest of the bench has fakes. SEALBRIDGE_BENCH_LINES lines (1,000
// by default) go each way: an IRC user says them into the channel at wire speed (a server that
// throttles nobody, as TestBurst), then the Matrix user sends as many encrypted messages into the
// portal, 16 at a time (the bridge's flood control lifted: what is measured is the bridge, not its
// pacing). Each
// direction's CPU is taken from its first message until all have arrived and the bridge is idle
// again (under 2 % of a core over a second). One round takes about a minute, and two rounds of the
// same code can differ by a third (the homeserver batches what it sends back differently), so
// bench/realhs.go runs several (-benchtime 3x): the world is set up once, each round sends both
// bursts, and the benchmark reports the median round as irc_to_matrix_us/msg and
// matrix_to_irc_us/msg, the others as *_min_us/msg and *_max_us/msg. With SEALBRIDGE_BENCH_PPROF
// set to a directory the bridge serves pprof and each direction's CPU profile of the last round is
// written there.
func BenchmarkRealHomeserver(b *testing.B) {
	n := envInt("SEALBRIDGE_BENCH_LINES", 1000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*100*time.Millisecond+15*time.Minute)
	defer cancel()
	unthrottled := irc.FloodConfig{Burst: 1 << 30, LinesPerSecond: 1e9}
	profDir := os.Getenv("SEALBRIDGE_BENCH_PPROF")
	var pprofAddr string
	if profDir != "" {
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", freePort(b))
		b.Setenv("SEALBRIDGE_PPROF_LISTEN", pprofAddr) // the bridge process inherits it
	}
	w := newWorld(b, ctx, "realhs", options{ircConf: noThreshold, flood: unthrottled})
	burster := newPeer(w.ircd.Addr(), "burster", w.channel, "", unthrottled)
	must(b, burster.connect(ctx))
	defer burster.close()
	var i2m, m2i []float64
	for round := range b.N {
		must(b, stack.WaitProcessIdle(ctx, w.br.Pid()))
		prof := startBridgeProfile(b, pprofAddr, profDir, "realhs_irc_to_matrix")
		cpu0, err := w.br.CPU()
		must(b, err)
		since := time.Now().Add(-time.Second)
		for i := range n {
			must(b, burster.client().Send("PRIVMSG", w.channel, fmt.Sprintf("rh%d:%d", round, i)))
		}
		// Counted in Dendrite's database: a client's sync skips events in a burst (a limited
		// timeline), the homeserver has them all.
		var ghost string
		must(b, w.waitFor(ctx, func() bool { ghost = senderOf(w, fmt.Sprintf("rh%d:", round)); return ghost != "" }))
		must(b, w.waitFor(ctx, func() bool {
			k, err := w.hs.CountEventsSince(w.room, ghost, "m.room.encrypted", since.UnixMilli())
			return err == nil && k >= n
		}))
		must(b, stack.WaitProcessIdle(ctx, w.br.Pid()))
		cpu1, err := w.br.CPU()
		must(b, err)
		prof()
		i2m = append(i2m, float64((cpu1-cpu0).Microseconds())/float64(n))

		prof = startBridgeProfile(b, pprofAddr, profDir, "realhs_matrix_to_irc")
		prefix := fmt.Sprintf("hr%d:", round)
		must(b, sendConcurrently(ctx, w, n, prefix))
		must(b, w.peer.wait(ctx, "the Matrix messages on IRC", func() bool { return len(w.peer.gotFrom[prefix]) >= n })) // under the peer's lock
		must(b, stack.WaitProcessIdle(ctx, w.br.Pid()))
		cpu2, err := w.br.CPU()
		must(b, err)
		prof()
		m2i = append(m2i, float64((cpu2-cpu1).Microseconds())/float64(n))
	}
	reportRounds(b, "irc_to_matrix", i2m)
	reportRounds(b, "matrix_to_irc", m2i)
}

// reportRounds reports the median of the rounds' figures as name_us/msg, and the smallest and
// largest as name_min_us/msg and name_max_us/msg.
func reportRounds(b *testing.B, name string, rounds []float64) {
	s := slices.Sorted(slices.Values(rounds))
	b.ReportMetric(s[len(s)/2], name+"_us/msg")
	b.ReportMetric(s[0], name+"_min_us/msg")
	b.ReportMetric(s[len(s)-1], name+"_max_us/msg")
}

// startBridgeProfile starts a CPU profile of the bridge (a no-op without an address); the function
// it returns writes it to dir/bridge-<name>.pprof.
func startBridgeProfile(tb testing.TB, addr, dir, name string) func() {
	if addr == "" {
		return func() {}
	}
	stop, err := profiling.StartCPU(addr)
	must(tb, err)
	return func() {
		data, err := stop()
		must(tb, err)
		must(tb, os.MkdirAll(dir, 0o755))
		must(tb, os.WriteFile(filepath.Join(dir, "bridge-"+name+".pprof"), data, 0o644))
	}
}

// sendConcurrently sends n messages prefix0.. into the portal, several at a time (one client send
// takes about a second: encryption, the homeserver's answer, the client's own sync), so that the
// bridge, not the client, sets the pace.
func sendConcurrently(ctx context.Context, w *world, n int, prefix string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			_, err := w.mx.Send(ctx, w.room, "m.text", fmt.Sprintf("%s%d", prefix, i), "")
			return err
		})
	}
	return g.Wait()
}

// senderOf is the sender of a message in the portal whose body starts with prefix, or "".
func senderOf(w *world, prefix string) string {
	for _, e := range w.mx.Events() {
		if e.RoomID == w.room && strings.HasPrefix(e.Body(), prefix) {
			return e.Sender
		}
	}
	return ""
}

// waitFor polls cond until it holds or ctx ends.
func (w *world) waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}
