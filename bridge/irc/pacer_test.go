package irc

import (
	"context"
	"testing"
	"time"
)

func TestPacerBurstThenInterval(t *testing.T) {
	p := NewPacer(10, 3) // 100 ms apart after a burst of 3
	now := time.Unix(1000, 0)
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		waits = append(waits, p.reserve(now))
	}
	want := []time.Duration{0, 0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", waits, want)
		}
	}
	// After a quiet second the burst is available again, but no more than the burst.
	later := now.Add(2 * time.Second)
	for i := 0; i < 3; i++ {
		if w := p.reserve(later); w != 0 {
			t.Fatalf("attempt %d after a pause waits %s", i, w)
		}
	}
	if w := p.reserve(later); w != 100*time.Millisecond {
		t.Fatalf("4th attempt after a pause waits %s, want 100ms", w)
	}
}

func TestPacerBusyWhileAttemptsWait(t *testing.T) {
	p := NewPacer(10, 2) // 100 ms apart after a burst of 2
	now := time.Unix(1000, 0)
	if p.Busy(now) {
		t.Fatal("a fresh pacer is busy")
	}
	p.reserve(now)
	if p.Busy(now) {
		t.Fatal("busy after one attempt of a burst of 2")
	}
	p.reserve(now)
	p.reserve(now) // waits 100 ms
	p.reserve(now) // waits 200 ms
	if !p.Busy(now.Add(150 * time.Millisecond)) {
		t.Fatal("not busy while an attempt waits for its slot")
	}
	if p.Busy(now.Add(time.Second)) {
		t.Fatal("busy after every slot has passed")
	}
}

// 1,000 logins reconnecting at once are spread over 1,000/rate seconds.
func TestPacerSpreadsAStorm(t *testing.T) {
	p := NewPacer(20, 10)
	now := time.Now()
	var last time.Duration
	for i := 0; i < 1000; i++ {
		last = p.reserve(now)
	}
	if want := time.Duration(float64(1000-10) / 20 * float64(time.Second)); last < want-time.Second || last > want+time.Second {
		t.Fatalf("the last of 1,000 attempts waits %s, want about %s", last, want)
	}
}

func TestPacerWaitHonoursContext(t *testing.T) {
	p := NewPacer(0.1, 1)
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Wait(ctx); err == nil || time.Since(start) > time.Second {
		t.Fatalf("Wait = %v after %s, want the context's error promptly", err, time.Since(start))
	}
}
