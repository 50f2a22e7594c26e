package irc

import (
	"math/rand/v2"
	"time"
)

// backoffDelay returns the delay before reconnect attempt number attempt
// (0 for the first retry): a uniformly random ("full jitter") duration
// between Min and min(Max, Min*2^(attempt+1)), both inclusive. The randomness
// staggers the reconnects of many logins after a server restart, the first
// retry included (between Min and 2*Min).
// rnd returns a number in [0, n); nil means math/rand/v2.
func backoffDelay(cfg BackoffConfig, attempt int, rnd func(n int64) int64) time.Duration {
	lo, hi := cfg.Min, cfg.Max
	if lo <= 0 {
		lo = defaultBackoffMin
	}
	if hi < lo {
		hi = lo
	}
	ceiling := lo
	for i := 0; i <= attempt && ceiling < hi; i++ {
		ceiling *= 2
	}
	if ceiling > hi || ceiling <= 0 {
		ceiling = hi
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	return lo + time.Duration(rnd(int64(ceiling-lo)+1))
}
