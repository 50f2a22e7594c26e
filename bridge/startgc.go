package bridge

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
)

// After a start, bridgev2 loads every stored login, then connects them all, each through its
// network's pacer, and they join their channels: for a large bridge, minutes of allocation while
// the heap it keeps for good is built. Go lets the heap grow to twice what was live at the last
// collection before collecting again, and the pages that peak took mostly stay in use afterwards,
// partly filled. So once the first Connect has come and connection attempts wait at a pacer (a
// start of more logins than the pacers let through at once), the bridge collects garbage more
// often (startGCPercent instead of Go's 100), and goes back to the previous setting once no
// attempt has waited for startGCQuiet. A bridge whose logins all connect at once never changes
// it. An admin who set GOGC or GOMEMLIMIT has chosen; the bridge then leaves the collector alone.
const (
	startGCPercent = 50
	// startGCQuiet is how long the pacers stay idle before the window closes (or, if no attempt
	// ever waited, before the watch ends); startGCMax bounds the window (logins failing and
	// retrying for good would otherwise hold it open).
	startGCQuiet = 30 * time.Second
	startGCMax   = 15 * time.Minute
	startGCTick  = time.Second
)

// startGC is the collector's window for the logins' start (above).
type startGC struct {
	// setPercent is debug.SetGCPercent (replaced in tests).
	setPercent func(int) int
	// busy tells whether a connection attempt is waiting at any pacer at that time.
	busy func(now time.Time) bool
	// quiet, limit and every are startGCQuiet, startGCMax and startGCTick (shorter in tests).
	quiet, limit, every time.Duration
	log                 zerolog.Logger
}

// adminSetGC tells whether the admin tuned the collector through its environment variables.
func adminSetGC() bool { return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" }

// startGCWindow opens the window for the logins' start, once per process (the first Connect),
// unless the admin tuned the collector.
func (c *IRCConnector) startGCWindow() {
	c.startGCOnce.Do(func() {
		if adminSetGC() || c.Bridge == nil {
			return
		}
		w := startGC{
			setPercent: debug.SetGCPercent,
			busy:       c.pacersBusy,
			quiet:      startGCQuiet,
			limit:      startGCMax,
			every:      startGCTick,
			log:        c.Bridge.Log.With().Str("component", "gc").Logger(),
		}
		go w.run(c.Bridge.BackgroundCtx)
	})
}

// pacersBusy tells whether a connection attempt waits at any network's pacer.
func (c *IRCConnector) pacersBusy(now time.Time) bool {
	c.clientsLock.Lock()
	defer c.clientsLock.Unlock()
	for _, p := range c.pacers {
		if p.Busy(now) {
			return true
		}
	}
	return false
}

// run lowers the collector's target once an attempt waits at a pacer, until the pacers have been
// idle for w.quiet (or w.limit has passed, or ctx ends), then restores the previous one.
func (w startGC) run(ctx context.Context) {
	start := time.Now()
	lowered, prev := false, 0
	defer func() {
		if lowered {
			w.setPercent(prev)
			w.log.Info().Int("gc_percent", prev).Dur("after", time.Since(start)).Msg("The logins have connected; collecting garbage as before")
		}
	}()
	idleSince := start
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if w.busy(now) {
				idleSince = now
				if !lowered {
					prev, lowered = w.setPercent(startGCPercent), true
					w.log.Info().Int("gc_percent", startGCPercent).Msg("Many logins are connecting; collecting garbage more often until they have")
				}
			}
			if now.Sub(idleSince) >= w.quiet || now.Sub(start) >= w.limit {
				return
			}
		}
	}
}
