package bridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// gcRecorder stands in for debug.SetGCPercent.
type gcRecorder struct {
	mu      sync.Mutex
	percent int
	calls   []int
}

func (g *gcRecorder) set(p int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.percent
	g.percent = p
	g.calls = append(g.calls, p)
	return prev
}

func (g *gcRecorder) get() (int, []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.percent, append([]int(nil), g.calls...)
}

func testStartGC(g *gcRecorder, busy func(time.Time) bool, limit time.Duration) startGC {
	return startGC{setPercent: g.set, busy: busy, quiet: 50 * time.Millisecond, limit: limit,
		every: 5 * time.Millisecond, log: zerolog.Nop()}
}

// The window stays open while attempts wait at the pacers and closes a quiet period after.
func TestStartGCWindowClosesWhenThePacersAreQuiet(t *testing.T) {
	g := &gcRecorder{percent: 100}
	busyFrom := time.Now().Add(30 * time.Millisecond)
	busyUntil := busyFrom.Add(170 * time.Millisecond)
	w := testStartGC(g, func(now time.Time) bool { return now.After(busyFrom) && now.Before(busyUntil) }, time.Minute)
	done := make(chan struct{})
	go func() { w.run(context.Background()); close(done) }()
	time.Sleep(150 * time.Millisecond)
	if p, _ := g.get(); p != startGCPercent {
		t.Fatalf("while the pacers are busy the collector's target is %d, want %d", p, startGCPercent)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the window did not close once the pacers were quiet")
	}
	// The last busy moment seen is at most a tick before busyUntil.
	if time.Now().Before(busyUntil.Add(w.quiet - w.every)) {
		t.Fatal("the window closed before the pacers had been quiet for the quiet period")
	}
	if p, calls := g.get(); p != 100 || len(calls) != 2 {
		t.Fatalf("after the window: target %d, calls %v; want 100 restored by the second call", p, calls)
	}
}

// Pacers busy for good (logins failing and retrying) do not hold the window open past its limit,
// and a stopping bridge closes it too.
func TestStartGCWindowIsBounded(t *testing.T) {
	g := &gcRecorder{percent: 80}
	w := testStartGC(g, func(time.Time) bool { return true }, 100*time.Millisecond)
	start := time.Now()
	w.run(context.Background())
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the window stayed open %v with a limit of %v", d, w.limit)
	}
	if p, _ := g.get(); p != 80 {
		t.Fatalf("after the limit the target is %d, want the previous 80", p)
	}

	g = &gcRecorder{percent: 100}
	w = testStartGC(g, func(time.Time) bool { return true }, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the window stayed open after the bridge stopped")
	}
	if p, _ := g.get(); p != 100 {
		t.Fatalf("after the stop the target is %d, want 100", p)
	}
}

// Logins that all connect at once (no attempt ever waits at a pacer) leave the collector alone.
func TestStartGCWindowNeedsAWaitingAttempt(t *testing.T) {
	g := &gcRecorder{percent: 100}
	w := testStartGC(g, func(time.Time) bool { return false }, time.Minute)
	w.run(context.Background())
	if p, calls := g.get(); p != 100 || len(calls) != 0 {
		t.Fatalf("without a waiting attempt: target %d, calls %v; want it untouched", p, calls)
	}
}

func TestStartGCLeavesAnAdminsSettingAlone(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if adminSetGC() {
		t.Fatal("no GOGC nor GOMEMLIMIT, yet the admin is said to have tuned the collector")
	}
	t.Setenv("GOGC", "200")
	if !adminSetGC() {
		t.Fatal("GOGC set, yet the bridge would change the collector's target")
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "2GiB")
	if !adminSetGC() {
		t.Fatal("GOMEMLIMIT set, yet the bridge would change the collector's target")
	}
}
