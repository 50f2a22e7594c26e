//go:build e2e

package faults

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// The bounds the hostile network runs under in TestHostileServer (network.limits).
const (
	hostileMaxChannels = 20
	hostileNewBurst    = 5 // new private chats, and channels joined without asking, at once
)

// TestHostileServer gives the bridge a second network whose server is hostile (stack.EvilIRC):
// once alice has logged in there too, it streams junk at wire speed for SEALBRIDGE_HOSTILE_S
// seconds (default 20; `make faults`: 60): forced JOINs to ever new channels, ever new nicks,
// private messages from 10,000 nicks, batches that never end, junk ISUPPORT, unsolicited
// CHATHISTORY TARGETS. Meanwhile alice's login on the real network must keep bridging: an IRC
// peer there says a line every half second, and every one must reach her room (their latency is
// printed). The homeserver must see no more new rooms than the limits allow, and the bridge's
// resident memory is printed against its idle figure (the bound we hold: 64 MiB of growth).
func TestHostileServer(t *testing.T) {
	attack := time.Duration(envInt("SEALBRIDGE_HOSTILE_S", 20)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), attack+10*time.Minute)
	defer cancel()
	evil, err := stack.StartEvilIRC("127.0.0.1:0")
	must(t, err)
	defer evil.Stop()
	w := newWorld(t, ctx, "hostile", options{bridgeConf: func(cfg map[string]any) {
		stack.SetYAML(cfg, map[string]any{
			"name": "Evil", "address": "127.0.0.1", "port": evil.Port(), "tls": false,
			"reconnect": map[string]any{"min_delay": "1s", "max_delay": "10s"},
		}, "network", "networks", "evilnet")
		stack.SetYAML(cfg, map[string]any{
			"max_channels": hostileMaxChannels, "new_dm_burst": hostileNewBurst, "new_dm_interval": "1h",
		}, "network", "limits")
	}})
	pid := w.br.Pid()

	// Idle: the bridge with alice's working login, before the hostile one.
	var idle int64
	for i := 0; i < 10; i++ {
		idle = max(idle, vmRSS(t, pid))
		time.Sleep(200 * time.Millisecond)
	}
	roomsBefore := invitedRooms(w.mx)
	from := w.mx.EventCount()
	_, err = w.mx.Send(ctx, w.mgmt, "m.text", "login nick evilnet alice2", "")
	must(t, err)
	w.waitEventFrom(ctx, from, "the login on the hostile network", func(e mxclient.Event) bool {
		return e.RoomID == w.mgmt && e.Sender == w.br.BotMXID && strings.Contains(e.Body(), "Connected to Evil")
	})
	rc, rcancel := context.WithTimeout(ctx, time.Minute)
	must(t, evil.Registered(rc))
	rcancel()

	// Sample the bridge's memory, and have the peer on the real network speak, during the attack.
	var peak int64
	var mu sync.Mutex
	sent := map[int]time.Time{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			if v := vmRSS(t, pid); v > 0 {
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer wg.Done()
		for k := 0; ; k++ {
			mu.Lock()
			sent[k] = time.Now()
			mu.Unlock()
			_ = w.peer.client().Send("PRIVMSG", w.channel, fmt.Sprintf("probe:%d", k))
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	t0 := time.Now()
	lines := evil.Attack(ctx, attack)
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	rssAfterAttack := vmRSS(t, pid)

	// Every probe reaches alice's room on the real network.
	mu.Lock()
	probes := len(sent)
	mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	got := map[int]int64{} // probe -> origin_server_ts
	for time.Now().Before(deadline) {
		for _, e := range w.mx.Events() {
			if k, ok := strings.CutPrefix(e.Body(), "probe:"); ok && e.RoomID == w.room {
				if n, err := strconv.Atoi(k); err == nil {
					got[n] = e.OriginServerTS
				}
			}
		}
		if len(got) >= probes {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var lat []float64
	for k, ts := range got {
		lat = append(lat, float64(time.UnixMilli(ts).Sub(sent[k]).Milliseconds()))
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	var newRoomNames []string
	for room := range invitedRooms(w.mx) {
		if !roomsBefore[room] {
			newRoomNames = append(newRoomNames, roomName(w.mx, room))
		}
	}
	sort.Strings(newRoomNames)
	newRooms := len(newRoomNames)
	// What the server can make: the new private chats and forced joins the limits allow; and the
	// login makes its own space (bridgev2's per-login room list) once.
	allowed := 2*hostileNewBurst + 1
	growth := float64(peak-idle) / 1024
	report := fmt.Sprintf("hostile server: %d lines in %s (%.0f lines/s); bridge RSS idle %.1f MiB, peak %.1f MiB (growth %.1f MiB), after the attack %.1f MiB; new rooms %d (limits allow %d); other login: %d of %d probes bridged, latency p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		lines, took.Round(time.Second), float64(lines)/took.Seconds(), float64(idle)/1024, float64(peak)/1024, growth, float64(rssAfterAttack)/1024,
		newRooms, allowed, len(got), probes, pct(0.5), pct(0.99), pct(1))
	t.Log(report)
	t.Logf("new rooms: %s", strings.Join(newRoomNames, ", "))
	if out := os.Getenv("SEALBRIDGE_HOSTILE_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(report+"\n"), 0o644)
	}
	if len(got) < probes {
		t.Errorf("the other login stopped bridging during the attack: %d of %d probes reached Matrix", len(got), probes)
	}
	if newRooms > allowed {
		t.Errorf("the hostile server made the bridge open %d rooms; the limits allow %d (new chats and forced joins, and the login's space)", newRooms, allowed)
	}
	select {
	case <-w.br.Done():
		t.Fatal("the bridge died during the attack")
	default:
	}
	if growth > 64 {
		t.Errorf("the bridge grew by %.1f MiB during the attack; the bound is 64 MiB", growth)
	}
}

// invitedRooms are the rooms the client was invited to.
func invitedRooms(mx *mxclient.Client) map[string]bool {
	rooms := map[string]bool{}
	for _, inv := range mx.Invites() {
		rooms[inv.RoomID] = true
	}
	return rooms
}

// roomName is a room's m.room.name as the client saw it, or its ID.
func roomName(mx *mxclient.Client, room string) string {
	name := room
	for _, e := range mx.Events() {
		if n, _ := e.Content["name"].(string); e.RoomID == room && e.Type == "m.room.name" && n != "" {
			name = n
		}
	}
	return name
}
