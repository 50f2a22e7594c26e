package irc

import (
	"context"
	"sync"
	"time"
)

// Pacer spreads connection attempts: at most burst at once, then one per interval. Clients that
// share a Pacer as their Config.Pace (the bridge gives every login of a network the same one)
// reconnect over time after a bridge or server restart instead of in one storm; servers throttle
// and ban connection floods.
type Pacer struct {
	mu       sync.Mutex
	interval time.Duration
	burst    int
	next     time.Time // when the next attempt may go without using the burst
}

// NewPacer allows burst attempts at once, then perSecond.
func NewPacer(perSecond float64, burst int) *Pacer {
	if perSecond <= 0 {
		perSecond = 1
	}
	if burst < 1 {
		burst = 1
	}
	return &Pacer{interval: time.Duration(float64(time.Second) / perSecond), burst: burst}
}

// reserve books the next slot and says how long to wait for it.
func (p *Pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Unused slots accumulate up to burst.
	earliest := now.Add(-time.Duration(p.burst-1) * p.interval)
	if p.next.Before(earliest) {
		p.next = earliest
	}
	slot := p.next
	p.next = p.next.Add(p.interval)
	if slot.Before(now) {
		return 0
	}
	return slot.Sub(now)
}

// Busy tells whether an attempt made at now would wait for its slot: attempts already made have
// booked the slots up to and beyond it.
func (p *Pacer) Busy(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next.After(now)
}

// Wait blocks until this attempt's slot, or until ctx ends.
func (p *Pacer) Wait(ctx context.Context) error {
	wait := p.reserve(time.Now())
	if wait == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
