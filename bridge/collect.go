package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// Collectors gather the server's answer to a command a user ran from Matrix (WHOIS, LIST, NICK):
// the reader shows each line to the open collectors before handling it as usual. A login has at
// most maxCollectors open at once, each takes at most maxCollected lines, and each ends after
// collectTimeout at the latest, so a server that never answers, or answers without end, costs a
// bounded amount.

const (
	maxCollectors = 4
	maxCollected  = 2000
)

// collectTimeout bounds the wait for an answer (waits.collect).
const collectTimeout = 15 * time.Second

// collector is one open question to the server.
type collector struct {
	// match tells whether a line belongs to the answer (take) and whether it is the last (done).
	match func(msg *ircmsg.Message) (take, done bool)
	lines []*ircmsg.Message
	more  int // lines taken beyond maxCollected, not kept
	done  chan struct{}
}

// collectors are a login's open collectors.
type collectors struct {
	mu   sync.Mutex
	open []*collector
}

// errBusy means too many commands wait for the server's answer already.
var errBusy = failure("too many commands are waiting for the IRC server's answer; try again in a moment")

// collect sends a command with send and returns the lines match took, once match says done, the
// connection has no more to say for collectTimeout, or ctx ends. more counts lines taken beyond
// maxCollected.
func (cl *IRCClient) collect(ctx context.Context, match func(*ircmsg.Message) (take, done bool), send func() error) (lines []*ircmsg.Message, more int, complete bool, err error) {
	c := &collector{match: match, done: make(chan struct{})}
	cs := &cl.collectors
	cs.mu.Lock()
	if len(cs.open) >= maxCollectors {
		cs.mu.Unlock()
		return nil, 0, false, errBusy
	}
	cs.open = append(cs.open, c)
	cs.mu.Unlock()
	defer cl.closeCollector(c)
	if err = send(); err != nil {
		return nil, 0, false, err
	}
	timer := time.NewTimer(cl.connector.waits.collect)
	defer timer.Stop()
	select {
	case <-c.done:
		complete = true
	case <-timer.C:
	case <-ctx.Done():
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return c.lines, c.more, complete, nil
}

func (cl *IRCClient) closeCollector(c *collector) {
	cs := &cl.collectors
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i, o := range cs.open {
		if o == c {
			cs.open = append(cs.open[:i], cs.open[i+1:]...)
			return
		}
	}
}

// feedCollectors shows a line from the server to the open collectors (reader goroutine) and
// tells whether one took it.
func (cl *IRCClient) feedCollectors(msg *ircmsg.Message) (taken bool) {
	cs := &cl.collectors
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i := 0; i < len(cs.open); i++ {
		c := cs.open[i]
		take, done := c.match(msg)
		if take {
			taken = true
			if len(c.lines) < maxCollected {
				c.lines = append(c.lines, msg)
			} else {
				c.more++
			}
		}
		if done {
			close(c.done)
			cs.open = append(cs.open[:i], cs.open[i+1:]...)
			i--
		}
	}
	return taken
}
