package main

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// bridgeStormRuns is how many storms the whole-bridge storm phase makes, one after the other;
// bridgeStormApart is how long the connections stay up between two (the engine starts its backoff
// from the minimum again only once a connection has stayed up a minute, so each storm starts
// alike).
const (
	bridgeStormRuns  = 3
	bridgeStormApart = 65 * time.Second
)

// runBridgeStormPhase measures storm_peak_rss_growth_pct on the whole bridge: o.storm logins, each
// in 3 channels (30 logins per channel), connected and idle; the fake IRC server drops every
// connection at once (a server restart or a netsplit), and the bridge reconnects and rejoins them
// all at its connect throttle. The growth is the peak VmRSS during the storm (samples every 10 ms,
// and VmHWM) over the settled VmRSS before it, after a forced GC; it is measured bridgeStormRuns
// times and the largest is reported.
func runBridgeStormPhase(o options, r *results) ([]string, error) {
	env, err := startBridgeEnv(envOptions{connects: scaleConnectsPerSecond})
	if err != nil {
		return nil, err
	}
	defer env.close()
	n := o.storm
	nchan := max(1, n*scaleChannelsPerLogin/scaleLoginsPerChannel)
	if err := env.seedLogins(n, nchan); err != nil {
		return nil, err
	}
	pid := strconv.Itoa(env.bridge.cmd.Process.Pid)
	var growths []float64
	var notes []string
	for run := 1; run <= bridgeStormRuns; run++ {
		base, err := env.bridge.settledRSSKiB()
		if err != nil {
			return notes, err
		}
		if err := env.world.call(http.MethodPost, "resetjoins", nil, nil); err != nil {
			return notes, err
		}
		if err := resetPeakRSS(pid); err != nil {
			return notes, err
		}
		peak := newPeakSampler(env.bridge.rssKiB)
		start := time.Now()
		var dropped struct {
			Dropped int `json:"dropped"`
		}
		err = env.world.call(http.MethodPost, "drop", nil, &dropped)
		if err == nil {
			err = env.waitJoined(n, n*scaleChannelsPerLogin, 30*time.Minute)
		}
		back := time.Since(start)
		upSince := time.Now()
		if err == nil {
			err = env.waitQuiet(5*time.Second, 30*time.Minute)
		}
		top := peak.stop()
		if hwm, herr := procStatusKiB(pid, "VmHWM"); herr == nil {
			top = max(top, hwm)
		}
		if err != nil {
			return notes, err
		}
		growth := float64(top-base) / float64(base) * 100
		growths = append(growths, growth)
		if run < bridgeStormRuns {
			time.Sleep(time.Until(upSince.Add(bridgeStormApart)))
		}
		notes = append(notes, fmt.Sprintf("  storm %d: %d connections dropped; all %d logins registered and %d joins answered again after %.1f s; VmRSS %d KiB settled before, peak %d KiB: +%.1f %%",
			run, dropped.Dropped, n, n*scaleChannelsPerLogin, back.Seconds(), base, top, growth))
	}
	worst := slices.Max(growths)
	r.StormPeakRSSGrowthPct = round2(worst)
	return append([]string{fmt.Sprintf("storm_peak_rss_growth_pct: whole bridge, %d logins in 3 of %d channels each, every connection dropped at once %d times; the largest growth is reported (connect throttle %d/s):",
		n, nchan, bridgeStormRuns, scaleConnectsPerSecond)}, notes...), nil
}

// peakSampler samples a process's RSS every 10 ms until stop, and keeps the largest.
type peakSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak int64
}

func newPeakSampler(rss func() (int64, error)) *peakSampler {
	p := &peakSampler{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := rss(); err == nil {
				p.peak = max(p.peak, v)
			}
			select {
			case <-tick.C:
			case <-p.done:
				return
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the largest sample.
func (p *peakSampler) stop() int64 {
	close(p.done)
	p.wg.Wait()
	return p.peak
}
