package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	scaleChannelsPerLogin = 3
	scaleLoginsPerChannel = 30
	// scaleConnectsPerSecond is the connection throttle the phase states for the network: the
	// bridge's connects_per_second and connect_burst for it, as an admin would set them to what the
	// network allows the bridge's host (the fake server itself takes connections at any pace).
	scaleConnectsPerSecond = 100
)

// runScalePhase measures logins_10k_rss_mib and logins_10k_connect_s: o.scaleLogins Matrix users
// log in through the provisioning API (8 at a time), and the fake IRC server joins each to 3
// channels out of o.scaleLogins/10 (so 30 logins share each channel, one portal per channel). Once
// the homeserver is quiet the bridge is stopped and started again, and the phase times exec ->
// every login registered and every channel joined again; then, once the bridge is quiet, its
// VmRSS after a forced GC is the whole bridge's memory.
func runScalePhase(o options, r *results) ([]string, error) {
	env, err := startBridgeEnv(envOptions{connects: scaleConnectsPerSecond, startGC: true})
	if err != nil {
		return nil, err
	}
	defer env.close()
	n := o.scaleLogins
	nchan := max(1, n*scaleChannelsPerLogin/scaleLoginsPerChannel)
	idle, err := env.bridge.settledRSSKiB()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := env.seedLogins(n, nchan); err != nil {
		return nil, err
	}
	seeded := time.Since(start)
	seededRSS, err := env.bridge.settledRSSKiB()
	if err != nil {
		return nil, err
	}
	logf("bridge: %d logins in %d channels seeded in %s; restarting", n, nchan, seeded.Round(time.Second))

	if err := env.world.call(http.MethodPost, "resetjoins", nil, nil); err != nil {
		return nil, err
	}
	if _, err := env.restartBridge(); err != nil {
		return nil, err
	}
	prof := startProfile(o.bridgeProfile, env.bridge.ctlAddr, "logins_connect")
	started := env.bridge.started
	want := int64(n * scaleChannelsPerLogin)
	var registered time.Duration
	deadline := time.Now().Add(60 * time.Minute)
	for {
		st, err := env.world.state()
		if err != nil {
			prof.finish()
			return nil, err
		}
		if registered == 0 && st.Welcome >= int64(n) {
			registered = time.Since(started)
		}
		if st.Welcome >= int64(n) && st.Joins >= want {
			break
		}
		if time.Now().After(deadline) {
			prof.finish()
			return nil, fmt.Errorf("after 60 minutes %d of %d logins registered, %d of %d joins", st.Welcome, n, st.Joins, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	connect := time.Since(started)
	prof.finish()
	if err := env.waitQuiet(5*time.Second, 60*time.Minute); err != nil {
		return nil, err
	}
	gcBack, err := env.bridge.waitDefaultGC(10 * time.Minute)
	if err != nil {
		return nil, err
	}
	rss, err := env.bridge.settledRSSKiB()
	if err != nil {
		return nil, err
	}
	saveHeap(o.bridgeProfile, env.bridge.ctlAddr, "logins_10k")
	r.Logins10kConnectS = round2(connect.Seconds())
	r.Logins10kRSSMiB = round2(float64(rss) / 1024)
	// What the throttle allows: the burst at once, then one connection per 1/rate.
	ideal := float64(max(0, n-scaleConnectsPerSecond)) / scaleConnectsPerSecond
	return []string{
		fmt.Sprintf("logins at scale: %d logins, each in %d of %d channels (%d per channel), seeded through the provisioning API in %s; VmRSS idle %d KiB, seeded %d KiB",
			n, scaleChannelsPerLogin, nchan, scaleLoginsPerChannel, seeded.Round(time.Second), idle, seededRSS),
		fmt.Sprintf("logins_10k_connect_s: restart -> all %d registered after %.2f s, all %d channel joins answered after %.2f s; the throttle (connects_per_second = connect_burst = %d) allows it in %.2f s: %.2f x",
			n, registered.Seconds(), want, connect.Seconds(), scaleConnectsPerSecond, ideal, connect.Seconds()/max(ideal, 0.01)),
		fmt.Sprintf("logins_10k_rss_mib: whole bridge after the restart, every login connected and joined, the homeserver quiet for 5 s, the collector back at GOGC 100 (%.0f s later), after a forced GC: %d KiB", gcBack.Seconds(), rss),
	}, nil
}

// seedLogins logs n Matrix users in through the provisioning API (8 at a time) and has the fake IRC
// server join each to scaleChannelsPerLogin of nchan channels, then waits until the homeserver is
// quiet.
func (e *bridgeEnv) seedLogins(n, nchan int) error {
	if err := forEach(n, 8, func(i int) error {
		nick := fmt.Sprintf("f%d", i)
		if err := e.bridge.login(fmt.Sprintf("@f%d:%s", i, benchDomain), nick); err != nil {
			return err
		}
		q := url.Values{"nick": {nick}}
		for j := range scaleChannelsPerLogin {
			q.Add("channel", fmt.Sprintf("#f%d", (i*scaleChannelsPerLogin+j)%nchan))
		}
		return e.world.call(http.MethodPost, "force", q, nil)
	}); err != nil {
		return err
	}
	return e.waitQuiet(5*time.Second, 60*time.Minute)
}

// waitJoined waits until n logins registered and joined joins channels since the last resetjoins.
func (e *bridgeEnv) waitJoined(n, joins int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.world.state()
		if err != nil {
			return err
		}
		if st.Welcome >= int64(n) && st.Joins >= int64(joins) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s %d of %d logins registered, %d of %d joins", timeout, st.Welcome, n, st.Joins, joins)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
