//go:build e2e

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// TestReconnectStorm: SEALBRIDGE_STORM_LOGINS logins (default 50; `make faults` 200) through the
// real bridge on InspIRCd, which then restarts and drops them all at once. Every login comes back,
// spread over time by the network's connection pacer (the default burst of 10, then 5 connections
// a second), none refused, and the bridge's memory stays bounded. One login, the Matrix user's, uses
// a SASL account whose password was changed meanwhile: refused at its reconnect, it stops retrying
// and its user is told in the management room.
func TestReconnectStorm(t *testing.T) {
	n := envInt("SEALBRIDGE_STORM_LOGINS", 50)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w := newWorld(t, ctx, "storm", options{})

	// The Matrix user moves her login to a SASL account; its password then changes elsewhere.
	account, password := "stormsasl", "storm-Pw-1"
	must(t, w.ircd.RegisterAccount(ctx, account, password))
	from := w.mx.EventCount()
	_, err := w.mx.Send(ctx, w.mgmt, "m.text", fmt.Sprintf("relogin testnet:%s sasl testnet %s %s %s", w.user, account, account, password), "")
	must(t, err)
	w.waitEventFrom(ctx, from, "the SASL relogin", func(e mxclient.Event) bool {
		return e.RoomID == w.mgmt && e.Sender == w.br.BotMXID && strings.Contains(e.Body(), "Connected to Test IRC as "+account)
	})

	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- w.br.ProvisionLogin(ctx, w.config, fmt.Sprintf("@storm%d:localhost", i), "testnet", fmt.Sprintf("storm%d", i))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	t.Logf("storm: %d logins connected in %s", n, time.Since(t0).Round(time.Second))
	time.Sleep(2 * time.Second)
	baseline := vmRSS(t, w.br.Pid())

	must(t, w.ircd.SetPassword(ctx, account, password, "storm-Pw-2"))
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = max(peak, vmRSS(t, w.br.Pid()))
			}
		}
	}()
	from = w.mx.EventCount()
	drop := time.Now()
	must(t, w.restartIRC(ctx))
	var back map[string]time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for {
		back = registrations(t, w.br.LogPath, drop)
		if stormBack(back) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	close(stop)
	<-sampled

	if got := stormBack(back); got < n {
		t.Fatalf("only %d of %d logins reconnected after the IRC server restarted", got, n)
	}
	var times []time.Time
	for id, at := range back {
		if strings.Contains(id, ":@storm") {
			times = append(times, at)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	first, last := times[0].Sub(drop), times[len(times)-1].Sub(drop)
	busiest := 0
	for i := range times {
		k := sort.Search(len(times), func(j int) bool { return !times[j].Before(times[i].Add(time.Second)) })
		busiest = max(busiest, k-i)
	}
	growth := 100 * float64(peak-baseline) / float64(baseline)
	t.Logf("storm: %d logins back %.1f..%.1f s after the restart, at most %d in any second; bridge RSS %d KiB before, peak %d KiB (%+.1f %%)",
		n, first.Seconds(), last.Seconds(), busiest, baseline, peak, growth)
	// The pacer lets through a burst of 10, then 5 a second (registrations finish a little after
	// their connection's turn, so some bunch up): without it, every login is back within the same
	// second or two.
	if busiest > 10+2*5+5 {
		t.Errorf("%d logins reconnected within one second: not spread by the pacer", busiest)
	}
	if peak > 2*baseline {
		t.Errorf("the bridge's memory more than doubled during the storm (%d -> %d KiB)", baseline, peak)
	}
	if logHas(t, w.br.LogPath, drop, "banned") {
		t.Error("a login was refused as banned during the storm")
	}

	// The SASL login whose password changed stops and says so.
	w.waitEventFrom(ctx, from, "the refused login's notice", func(e mxclient.Event) bool {
		return e.RoomID == w.mgmt && e.Sender == w.br.BotMXID && strings.Contains(e.Body(), "rejected the login")
	})
	attempts := connectAttempts(t, w.br.LogPath, "testnet:"+w.user, drop)
	time.Sleep(15 * time.Second) // longer than the backoff's 10 s maximum in this stack
	if again := connectAttempts(t, w.br.LogPath, "testnet:"+w.user, drop); again != attempts {
		t.Errorf("the refused login kept retrying: %d connection attempts, then %d", attempts, again)
	}
}

// stormBack counts the storm logins in back.
func stormBack(back map[string]time.Time) int {
	k := 0
	for id := range back {
		if strings.Contains(id, ":@storm") {
			k++
		}
	}
	return k
}

type logLine struct {
	Message string    `json:"message"`
	LoginID string    `json:"login_id"`
	Time    time.Time `json:"time"`
}

// scanLog calls fn for every JSON line of the bridge log at or after since.
func scanLog(t *testing.T, path string, since time.Time, fn func(logLine, string)) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && !l.Time.Before(since) {
			fn(l, sc.Text())
		}
	}
}

// registrations is, per login, its first registration on IRC since since.
func registrations(t *testing.T, path string, since time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	scanLog(t, path, since, func(l logLine, _ string) {
		if l.Message == "Registered on IRC server" && l.LoginID != "" {
			if _, ok := out[l.LoginID]; !ok {
				out[l.LoginID] = l.Time
			}
		}
	})
	return out
}

func connectAttempts(t *testing.T, path, loginID string, since time.Time) int {
	k := 0
	scanLog(t, path, since, func(l logLine, _ string) {
		if l.Message == "Connecting to IRC server" && l.LoginID == loginID {
			k++
		}
	})
	return k
}

func logHas(t *testing.T, path string, since time.Time, word string) bool {
	found := false
	scanLog(t, path, since, func(_ logLine, raw string) {
		found = found || strings.Contains(strings.ToLower(raw), word)
	})
	return found
}

// vmRSS is a process's resident memory in KiB.
func vmRSS(t *testing.T, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}
