package main

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// Storm configuration: shortened from the defaults (backoff 2s..5m, 5 connects/s with a burst of
// 10) so that 1,000 reconnects finish in tens of seconds instead of minutes.
var (
	stormBackoff           = irc.BackoffConfig{Min: time.Second, Max: 10 * time.Second}
	stormConnectsPerSecond = 50.0
	stormBurst             = 10
)

type stormResult struct {
	Logins         int     `json:"logins"`
	BaselineKiB    int64   `json:"baseline_kib"`
	PeakKiB        int64   `json:"peak_kib"`
	GrowthPct      float64 `json:"growth_pct"`
	ReconnectS     float64 `json:"reconnect_s"`
	FirstReconnS   float64 `json:"first_reconnect_s"`
	Disconnections int64   `json:"disconnections"`
	Samples        int     `json:"samples"`
}

func (r stormResult) notes() []string {
	return []string{
		fmt.Sprintf("storm_peak_rss_growth_pct: %d connected idle bridge/irc Clients, all dropped at once by the fake server, reconnecting with",
			r.Logins),
		fmt.Sprintf("  backoff %s..%s and a shared pacer of %g/s burst %d (shortened from the defaults 2s..5m, 5/s burst 10);",
			stormBackoff.Min, stormBackoff.Max, stormConnectsPerSecond, stormBurst),
		fmt.Sprintf("  baseline %d KiB (after debug.FreeOSMemory), peak %d KiB (max of %d VmRSS samples every 10 ms and VmHWM);",
			r.BaselineKiB, r.PeakKiB, r.Samples),
		fmt.Sprintf("  first reconnect %.2f s, all %d reconnected %.1f s after the drop, %d disconnect/failure reports",
			r.FirstReconnS, r.Logins, r.ReconnectS, r.Disconnections),
	}
}

// runStormPhase runs the storm child against a fresh fake IRC server.
func runStormPhase(n int) (stormResult, error) {
	var r stormResult
	srv, err := startIRCd()
	if err != nil {
		return r, err
	}
	defer srv.stop()
	err = runChild(&r, "storm", "-addr", srv.addr, "-storm", strconv.Itoa(n), "-ircd-pid", strconv.Itoa(srv.pid))
	return r, err
}

// childStorm connects o.storm logins, has the fake server drop them all at once, and follows RSS
// until every login has reconnected.
func childStorm(o options) error {
	n := int64(o.storm)
	f := startFleet(o.addr, o.storm, stormBackoff, irc.NewPacer(setupConnectsPerSecond, setupBurst))
	if err := f.waitConnects(n, 2*time.Minute); err != nil {
		return err
	}
	f.pace.Store(irc.NewPacer(stormConnectsPerSecond, stormBurst))
	time.Sleep(2 * time.Second)
	baseline := settledRSSKiB(true)
	if err := resetPeakRSS("self"); err != nil {
		return err
	}
	failures0 := f.failures.Load()

	var peak atomic.Int64
	peak.Store(rssKiB())
	samples := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				samples++
				if v := rssKiB(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()

	f.markAt.Store(n + 1) // the first registration after the drop
	t0 := time.Now()
	if err := syscall.Kill(o.ircdPID, syscall.SIGUSR1); err != nil {
		return err
	}
	// Every client must have seen the drop before "all connected" means "all reconnected".
	for f.failures.Load()-failures0 < n && time.Since(t0) < time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.waitConnects(2*n, 5*time.Minute); err != nil {
		return err
	}
	reconnect := time.Since(t0).Seconds()
	close(stop)
	<-sampled
	hwm, err := procStatusKiB("self", "VmHWM")
	if err != nil {
		return err
	}
	p := max(peak.Load(), hwm)
	r := stormResult{
		Logins:         o.storm,
		BaselineKiB:    baseline,
		PeakKiB:        p,
		GrowthPct:      100 * float64(p-baseline) / float64(baseline),
		ReconnectS:     reconnect,
		FirstReconnS:   time.Unix(0, f.markTime.Load()).Sub(t0).Seconds(),
		Disconnections: f.failures.Load() - failures0,
		Samples:        samples,
	}
	f.stop()
	return emit(r)
}
