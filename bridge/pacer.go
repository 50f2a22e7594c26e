package bridge

import (
	"context"
	"sync"
	"time"
)

// pacer spreads connection attempts: at most burst at once, then one per interval. Every login of a
// network shares its network's pacer, so a bridge restart or an IRC server restart with many logins
// reconnects them over time instead of in one storm (servers throttle and ban connection floods).
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	burst    int
	next     time.Time // when the next attempt may go without using the burst
}

func newPacer(perSecond float64, burst int) *pacer {
	if perSecond <= 0 {
		perSecond = 1
	}
	if burst < 1 {
		burst = 1
	}
	return &pacer{interval: time.Duration(float64(time.Second) / perSecond), burst: burst}
}

// reserve books the next slot and says how long to wait for it.
func (p *pacer) reserve(now time.Time) time.Duration {
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

// Wait blocks until this attempt's slot, or until ctx ends.
func (p *pacer) Wait(ctx context.Context) error {
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
