package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/config"
)

// Per-login bounds on what IRC peers can make the bridge hold or create (network.limits, see
// config.Limits). Each time a peer goes over one, the metric sealbridge_peer_limited_total counts
// it under the limit's name (metrics.Limit*), and where the user would want to know, the login's
// management room gets one notice per connection and limit (noticeOnce), never one per line.

// limits are the configured bounds, defaults filled in.
func (c *IRCConnector) limits() config.Limits {
	if c == nil {
		return config.Limits{}.WithDefaults()
	}
	return c.Config.Limits.WithDefaults()
}

// limited counts one thing refused or dropped under limit.
func (cl *IRCClient) limited(limit string) {
	if cl.connector != nil {
		cl.connector.Metrics.Limited(limit)
	}
}

// rememberNick keeps how the server spells a nick (for ghost names and sending), within
// limits.max_nicks: over it, an arbitrary other nick is forgotten (its folded form is used until
// it is seen again). Call it with cl.mu held.
func (cl *IRCClient) rememberNick(folded, nick string) {
	spelled, known := cl.nicks[folded]
	if known && spelled == nick {
		return // every line's sender comes here: no work when nothing changed
	}
	if !known && len(cl.nicks) >= cl.connector.limits().MaxNicks {
		for k := range cl.nicks {
			delete(cl.nicks, k)
			break
		}
		cl.limited(metrics.LimitNicks)
	}
	cl.nicks[intern(folded)] = intern(nick)
}

// limitNotices remembers which limits the user was told about on the current connection.
type limitNotices struct {
	mu   sync.Mutex
	told map[string]bool
}

func (n *limitNotices) reset() {
	n.mu.Lock()
	clear(n.told)
	n.mu.Unlock()
}

// noticeOnce tells the user, once per connection and limit, that the IRC server or its users went
// over one of the bridge's bounds. The notice is sent off the caller's goroutine (often the
// reader's).
func (cl *IRCClient) noticeOnce(limit, msg string, args ...any) {
	cl.limitNotices.mu.Lock()
	if cl.limitNotices.told == nil {
		cl.limitNotices.told = map[string]bool{}
	}
	told := cl.limitNotices.told[limit]
	cl.limitNotices.told[limit] = true
	cl.limitNotices.mu.Unlock()
	if told || cl.login == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(cl.log.WithContext(context.Background()), time.Minute)
		defer cancel()
		cl.notifyUser(ctx, msg, args...)
	}()
}
