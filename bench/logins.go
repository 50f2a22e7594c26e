package main

import (
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// Connecting the fleet before measuring: fast, but paced so the accept backlog never overflows.
const (
	setupConnectsPerSecond = 400
	setupBurst             = 50
)

type loginsResult struct {
	Logins         int     `json:"logins"`
	BaseKiB        int64   `json:"base_kib"`
	AfterKiB       int64   `json:"after_kib"`
	PerLoginKiB    float64 `json:"per_login_kib"`
	HeapPerLoginKB float64 `json:"heap_per_login_kib"`
	Goroutines     int     `json:"goroutines"`
	ConnectSeconds float64 `json:"connect_s"`
}

func (r loginsResult) notes() []string {
	return []string{
		fmt.Sprintf("rss_per_login_engine_kib: %d idle registered bridge/irc Clients (Run, no bridgev2, no logging) against a fake IRC server in another process;",
			r.Logins),
		fmt.Sprintf("  RSS %d KiB before, %d KiB after (runtime.GC then 1 s; each VmRSS), Go heap in use %.1f KiB/login, %d goroutines, connected in %.1f s",
			r.BaseKiB, r.AfterKiB, r.HeapPerLoginKB, r.Goroutines, r.ConnectSeconds),
	}
}

// runLoginsPhase runs the logins child against a fresh fake IRC server.
func runLoginsPhase(n int, memprof string) (loginsResult, error) {
	var r loginsResult
	srv, err := startIRCd()
	if err != nil {
		return r, err
	}
	defer srv.stop()
	err = runChild(&r, "logins", "-addr", srv.addr, "-logins", strconv.Itoa(n), "-memprofile", memprof)
	return r, err
}

// childLogins measures the RSS of o.logins idle connected logins of the IRC engine.
func childLogins(o options) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse
	base := settledRSSKiB(false)

	t0 := time.Now()
	f := startFleet(o.addr, o.logins, irc.BackoffConfig{Min: time.Second, Max: 10 * time.Second},
		irc.NewPacer(setupConnectsPerSecond, setupBurst))
	if err := f.waitConnects(int64(o.logins), 2*time.Minute); err != nil {
		return err
	}
	connectS := time.Since(t0).Seconds()
	time.Sleep(2 * time.Second) // idle
	after := settledRSSKiB(false)
	runtime.ReadMemStats(&ms)
	r := loginsResult{
		Logins:         o.logins,
		BaseKiB:        base,
		AfterKiB:       after,
		PerLoginKiB:    float64(after-base) / float64(o.logins),
		HeapPerLoginKB: float64(ms.HeapInuse-heap0) / 1024 / float64(o.logins),
		Goroutines:     runtime.NumGoroutine(),
		ConnectSeconds: connectS,
	}
	if o.memprof != "" {
		if err := writeHeapProfile(o.memprof); err != nil {
			return err
		}
	}
	if fails := f.failures.Load(); fails != 0 {
		return fmt.Errorf("%d connection failures while connecting the fleet", fails)
	}
	f.stop()
	return emit(r)
}
