package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runBridgeLoginsPhase measures rss_per_login_kib for the whole bridge: a fresh bridge (SQLite, no
// portal), VmRSS after a forced GC; then o.logins Matrix users each log in through the provisioning
// API (flow "nick"; one IRC connection each, registered, idle, no channel); VmRSS after a forced GC
// again. (after − before) / logins.
func runBridgeLoginsPhase(o options, r *results) ([]string, error) {
	env, err := startBridgeEnv(envOptions{})
	if err != nil {
		return nil, err
	}
	defer env.close()
	b := env.bridge
	time.Sleep(2 * time.Second)
	before, err := b.settledRSSKiB()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := forEach(o.logins, 4, func(i int) error {
		return b.login(fmt.Sprintf("@l%d:%s", i, benchDomain), fmt.Sprintf("l%d", i))
	}); err != nil {
		return nil, err
	}
	took := time.Since(start)
	time.Sleep(5 * time.Second)
	after, err := b.settledRSSKiB()
	if err != nil {
		return nil, err
	}
	per := float64(after-before) / float64(o.logins)
	r.RSSPerLoginKiB = round2(per)
	return []string{fmt.Sprintf("rss_per_login_kib (whole bridge): %d logins through the provisioning API in %s, idle and registered, no channel; VmRSS %d KiB -> %d KiB, each after a forced GC in the bridge child",
		o.logins, took.Round(time.Second), before, after)}, nil
}

// settledRSSKiB asks the bridge child to collect garbage and return memory to the OS
// (/debug/gc), waits 1 s and reads its VmRSS.
func (b *bridgeProc) settledRSSKiB() (int64, error) {
	resp, err := http.Post("http://"+b.ctlAddr+"/debug/gc", "", nil)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	time.Sleep(time.Second)
	return b.rssKiB()
}

// waitDefaultGC waits until the bridge child's garbage collector is back at Go's default target
// (/debug/gogc answers 100) and says how long that took: the bridge lowers the target while many
// logins connect (bridge/startgc.go), and a memory reading taken before then would not be the
// steady state's.
func (b *bridgeProc) waitDefaultGC(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		resp, err := http.Get("http://" + b.ctlAddr + "/debug/gogc")
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if strings.TrimSpace(string(body)) == "100" {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("the bridge's GOGC is still %s after %v", body, timeout)
		}
		time.Sleep(time.Second)
	}
}
