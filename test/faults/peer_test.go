//go:build e2e

package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// peer is the IRC side of the streams: an IRC user over the engine (like the e2e suite's ircUser)
// in the portal's channel. It records the numbered lines the bridge's nick says there (Matrix->IRC
// deliveries) and the echoes of its own numbered lines (echo-message: the server accepted them,
// which is what "sent" means IRC->Matrix). It reconnects when its server restarts.
type peer struct {
	addr, nick, channel string
	flood               irc.FloodConfig

	mu       sync.Mutex
	c        *irc.Client
	lines    []*ircmsg.Message // everything heard on the current and earlier connections
	gotFrom  map[string][]int  // prefix -> sequence numbers said by others, in arrival order
	echoed   map[string][]int  // prefix -> own sequence numbers echoed by the server
	joined   bool
	changed  chan struct{}
	watchFor string // nick whose lines are counted (the bridge's)
}

func newPeer(addr, nick, channel, watch string, flood irc.FloodConfig) *peer {
	return &peer{addr: addr, nick: nick, channel: channel, flood: flood, watchFor: watch,
		gotFrom: map[string][]int{}, echoed: map[string][]int{}, changed: make(chan struct{})}
}

// connect (re)connects and joins the channel, waiting for the JOIN echo.
func (p *peer) connect(ctx context.Context) error {
	p.mu.Lock()
	old := p.c
	p.joined = false
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	c := irc.New(irc.Config{Addr: p.addr, Nick: p.nick, Flood: p.flood}, p, zerolog.Nop())
	if err := c.Connect(ctx); err != nil {
		return fmt.Errorf("peer %s: connect: %w", p.nick, err)
	}
	p.mu.Lock()
	p.c = c
	p.mu.Unlock()
	if err := c.Send("JOIN", p.channel); err != nil {
		return err
	}
	return p.wait(ctx, "peer's JOIN echo", func() bool { return p.joined })
}

func (p *peer) client() *irc.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

func (p *peer) close() {
	if c := p.client(); c != nil {
		_ = c.Close()
	}
}

func (p *peer) OnConnected(*irc.Client)                 {}
func (p *peer) OnDisconnected(*irc.Client, error, bool) {}
func (p *peer) OnMessage(c *irc.Client, m *ircmsg.Message, _ time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, m)
	switch {
	case m.Command == "JOIN" && strings.EqualFold(m.Nick(), c.Nick()) && len(m.Params) > 0 && strings.EqualFold(m.Params[0], p.channel):
		p.joined = true
	case m.Command == "PRIVMSG" && len(m.Params) == 2 && strings.EqualFold(m.Params[0], p.channel):
		prefix, seq, ok := parseSeq(m.Params[1])
		if !ok {
			break
		}
		if strings.EqualFold(m.Nick(), c.Nick()) {
			p.echoed[prefix] = append(p.echoed[prefix], seq)
		} else if strings.EqualFold(m.Nick(), p.watchFor) {
			p.gotFrom[prefix] = append(p.gotFrom[prefix], seq)
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait polls cond (under the lock) until it holds or ctx ends.
func (p *peer) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, ch := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fmt.Errorf("peer %s: no %s: %w", p.nick, what, ctx.Err())
		}
	}
}

// waitLine waits for a line (heard at any time) that matches.
func (p *peer) waitLine(ctx context.Context, what string, match func(*ircmsg.Message) bool) error {
	return p.wait(ctx, what, func() bool {
		for _, m := range p.lines {
			if match(m) {
				return true
			}
		}
		return false
	})
}

func (p *peer) received(prefix string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.gotFrom[prefix]...)
}

func (p *peer) sent(prefix string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.echoed[prefix]...)
}

// parseSeq splits "<prefix><n>" where prefix ends with ':'.
func parseSeq(text string) (prefix string, seq int, ok bool) {
	i := strings.LastIndexByte(text, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(text[i+1:])
	return text[:i+1], n, err == nil
}
