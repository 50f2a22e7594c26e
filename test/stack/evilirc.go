package stack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealbridge/sealbridge/internal/ircfake"
)

// EvilIRC is a hostile IRC server for the tests: it registers a client like a real server, then,
// when told to attack, streams junk at it as fast as the client reads, for a fixed time: JOINs
// the server forces on the client to ever new channels, ever new nicks joining and speaking,
// private messages from thousands of nicks, draft/multiline and chathistory batches that never
// end, ISUPPORT lines full of junk tokens and CHATHISTORY TARGETS nobody asked for.
type EvilIRC struct {
	ln    *ircfake.Listener
	mu    sync.Mutex
	conns []*evilConn
	// Lines counts the lines written in all attacks.
	Lines atomic.Int64
}

type evilConn struct {
	*ircfake.Conn
	reg chan struct{} // closed once registered
}

// evilRegistration offers the caps a modern server does and ACKs them; it welcomes on CAP END.
var evilRegistration = ircfake.Registration{
	Server: "evil.test",
	Caps: []string{"batch", "draft/multiline=max-bytes=40000,max-lines=1000", "message-tags", "server-time",
		"draft/chathistory", "labeled-response", "echo-message"},
	Welcome:  "Welcome to Evil %s!u@evil.test",
	ISupport: "CASEMAPPING=rfc1459 CHANTYPES=# PREFIX=(ov)@+ NETWORK=Evil :are supported",
	MOTD:     true,
	CapEnd:   true,
}

// StartEvilIRC listens on addr (host:0 for any port).
func StartEvilIRC(addr string) (*EvilIRC, error) {
	ln, err := ircfake.Listen(addr, nil)
	if err != nil {
		return nil, err
	}
	s := &EvilIRC{ln: ln}
	go func() { _ = ln.Serve(s.serve) }()
	return s, nil
}

// Addr is the listening address.
func (s *EvilIRC) Addr() string { return s.ln.Addr() }

// Port is the listening port.
func (s *EvilIRC) Port() int { return s.ln.Port() }

// serve answers registration (CAP, NICK, USER) and PING; everything else is ignored. The
// connection stays open until Stop.
func (s *EvilIRC) serve(c *ircfake.Conn) {
	ec := &evilConn{Conn: c, reg: make(chan struct{})}
	s.mu.Lock()
	s.conns = append(s.conns, ec)
	s.mu.Unlock()
	reg := evilRegistration
	reg.OnWelcome = func(*ircfake.Conn) { close(ec.reg) }
	_ = reg.Serve(c, nil)
}

// Registered waits until a client has registered.
func (s *EvilIRC) Registered(ctx context.Context) error {
	for {
		s.mu.Lock()
		var c *evilConn
		if len(s.conns) > 0 {
			c = s.conns[len(s.conns)-1]
		}
		s.mu.Unlock()
		if c != nil {
			select {
			case <-c.reg:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Attack streams junk at every registered client until d has passed (or ctx ends) and returns
// how many lines it wrote. Writes block while the client does not read: the pace is the
// client's.
func (s *EvilIRC) Attack(ctx context.Context, d time.Duration) int64 {
	s.mu.Lock()
	conns := append([]*evilConn(nil), s.conns...)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.attack(ctx, c)
		}()
	}
	wg.Wait()
	return s.Lines.Load()
}

func (s *EvilIRC) attack(ctx context.Context, c *evilConn) {
	me := c.Nick
	junk := strings.Repeat("x", 30)
	for i := 0; ctx.Err() == nil; i++ {
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		lines := []string{
			// A JOIN forced on the client to a new channel, with its names.
			fmt.Sprintf(":%s!u@evil.test JOIN #evil%d", me, i),
			fmt.Sprintf(":evil.test 353 %s = #evil%d :%s @op%d", me, i, me, i),
			fmt.Sprintf(":evil.test 366 %s #evil%d :End of /NAMES list.", me, i),
			// A new nick joins a channel and speaks there.
			fmt.Sprintf(":n%d!u@evil.test JOIN #evil0", i),
			fmt.Sprintf("@msgid=c%d;time=%s :n%d!u@evil.test PRIVMSG #evil0 :junk %d", i, ts, i, i),
			// A private message from one of 10,000 nicks.
			fmt.Sprintf("@msgid=p%d;time=%s :pm%d!u@evil.test PRIVMSG %s :hello %d", i, ts, i%10000, me, i),
		}
		if i%10 == 0 {
			// Batches that never end.
			lines = append(lines,
				fmt.Sprintf("@msgid=ml%d :pm%d!u@evil.test BATCH +ml%d draft/multiline %s", i, i%10000, i, me),
				fmt.Sprintf("@batch=ml%d :pm%d!u@evil.test PRIVMSG %s :never ends", i, i%10000, me),
				fmt.Sprintf(":evil.test BATCH +ch%d chathistory #evil%d", i, i),
				fmt.Sprintf("@batch=ch%d;msgid=h%d :n%d!u@evil.test PRIVMSG #evil%d :history", i, i, i, i))
		}
		if i%5 == 0 {
			lines = append(lines, fmt.Sprintf(":evil.test CHATHISTORY TARGETS tgt%d timestamp=%s", i, ts))
		}
		if i%50 == 0 {
			var toks []string
			for j := 0; j < 15; j++ {
				toks = append(toks, fmt.Sprintf("JUNK%d_%d=%s", i, j, junk))
			}
			lines = append(lines, ":evil.test 005 "+me+" "+strings.Join(toks, " ")+" :are supported")
		}
		if err := c.Send(lines...); err != nil {
			return
		}
		s.Lines.Add(int64(len(lines)))
	}
}

// Stop closes the listener and every connection.
func (s *EvilIRC) Stop() { _ = s.ln.Close() }
