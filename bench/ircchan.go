package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/internal/ircfake"
)

// chanIRCd is the fake IRC server of the bridge phases (it lives in the world child, beside the fake
// homeserver, so that both stamp times on one clock). On top of the bench's registration (ircd.go)
// it answers JOIN (echo to every member, 353 with the members and "speaker", 366) and NAMES, can
// force-join a registered nick into channels like an operator's SAJOIN (how portals are first
// created), records every PRIVMSG it receives (Matrix->IRC), and lets the world write PRIVMSGs
// from "speaker" into a channel (IRC->Matrix), to every member. With tags on it offers the
// message-tags capability and gives each line a msgid, the same in every member's copy, as servers
// with message-tags do.
type chanIRCd struct {
	reg ircfake.Registration

	mu     sync.Mutex
	ln     *ircfake.Listener
	conns  map[string]*ircfake.Conn   // lower-cased nick -> registered connection
	joined map[string][]*ircfake.Conn // lower-cased channel -> the bridged members
	names  map[string]time.Time       // lower-cased channel -> when its 366 went out

	joins     atomic.Int64 // 366 sent
	welcomed  atomic.Int64 // 001 sent
	lineID    atomic.Int64 // msgids
	onPrivmsg func(from, target, text string, at time.Time)
}

func newChanIRCd(tags bool) *chanIRCd {
	s := &chanIRCd{conns: map[string]*ircfake.Conn{},
		joined: map[string][]*ircfake.Conn{}, names: map[string]time.Time{}}
	var caps []string
	if tags {
		caps = []string{"message-tags"}
	}
	s.reg = benchRegistration(caps, "NETWORK=bench CASEMAPPING=ascii CHANTYPES=# PREFIX=(ov)@+ NICKLEN=30")
	s.reg.OnWelcome = func(c *ircfake.Conn) {
		s.mu.Lock()
		s.conns[strings.ToLower(c.Nick)] = c
		s.mu.Unlock()
		s.welcomed.Add(1)
	}
	return s
}

func (s *chanIRCd) serve(ln net.Listener) {
	l := ircfake.NewListener(ln)
	s.mu.Lock()
	s.ln = l
	s.mu.Unlock()
	_ = l.Serve(s.conn)
}

// drop closes every connection at once, as a server's restart or a netsplit does, and returns how
// many there were.
func (s *chanIRCd) drop() int {
	s.mu.Lock()
	l := s.ln
	s.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.CloseConns()
}

func (s *chanIRCd) conn(c *ircfake.Conn) {
	defer func() {
		s.mu.Lock()
		if s.conns[strings.ToLower(c.Nick)] == c {
			delete(s.conns, strings.ToLower(c.Nick))
		}
		for ch, members := range s.joined {
			s.joined[ch] = slices.DeleteFunc(members, func(m *ircfake.Conn) bool { return m == c })
		}
		s.mu.Unlock()
		_ = c.Close()
	}()
	_ = s.reg.Serve(c, s.command)
}

// command handles what registration does not: JOIN, PRIVMSG and NOTICE (recorded), QUIT.
func (s *chanIRCd) command(c *ircfake.Conn, msg *ircmsg.Message) error {
	p := msg.Params
	switch msg.Command {
	case "JOIN":
		if len(p) > 0 {
			for _, ch := range strings.Split(p[0], ",") {
				if err := s.join(c, ch); err != nil {
					return err
				}
			}
		}
	case "NAMES":
		if len(p) > 0 {
			return s.namesOf(c, p[0])
		}
	case "PRIVMSG", "NOTICE":
		if len(p) > 1 && s.onPrivmsg != nil {
			s.onPrivmsg(c.Nick, p[0], p[1], time.Now())
		}
	}
	return quit(c, msg)
}

// join answers a JOIN as a server does: the JOIN to every member, NAMES and its end to the joiner.
func (s *chanIRCd) join(c *ircfake.Conn, ch string) error {
	joinLine := ":" + c.Nick + "!bench@bench.invalid JOIN " + ch
	s.mu.Lock()
	members := s.joined[strings.ToLower(ch)]
	if !slices.Contains(members, c) {
		members = append(members, c)
		s.joined[strings.ToLower(ch)] = members
	}
	members = slices.Clone(members)
	s.mu.Unlock()
	for _, m := range members {
		if m != c {
			_ = m.Send(joinLine)
		}
	}
	err := c.Send(append([]string{joinLine}, namesReply(c.Nick, ch, members)...)...)
	if err == nil {
		s.mu.Lock()
		s.names[strings.ToLower(ch)] = time.Now()
		s.mu.Unlock()
		s.joins.Add(1)
	}
	return err
}

// namesReply is the NAMES of a channel for nick: its members and "speaker", then the end.
func namesReply(nick, ch string, members []*ircfake.Conn) []string {
	const srv = ":bench.invalid"
	nicks := make([]string, 0, len(members)+1)
	for _, m := range members {
		nicks = append(nicks, m.Nick)
	}
	nicks = append(nicks, "speaker")
	return []string{
		srv + " 353 " + nick + " = " + ch + " :" + strings.Join(nicks, " "),
		srv + " 366 " + nick + " " + ch + " :End of /NAMES list.",
	}
}

// namesOf answers a NAMES of a channel the client is in (a login that takes a channel's lead over
// asks for one); of any other channel only the end.
func (s *chanIRCd) namesOf(c *ircfake.Conn, ch string) error {
	s.mu.Lock()
	members := s.joined[strings.ToLower(ch)]
	if !slices.Contains(members, c) {
		members = nil
	}
	members = slices.Clone(members)
	s.mu.Unlock()
	if members == nil {
		return c.Send(":bench.invalid 366 " + c.Nick + " " + ch + " :End of /NAMES list.")
	}
	return c.Send(namesReply(c.Nick, ch, members)...)
}

// force joins a registered nick to channels, as an operator's SAJOIN does.
func (s *chanIRCd) force(nick string, channels []string) error {
	s.mu.Lock()
	c := s.conns[strings.ToLower(nick)]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%s is not connected", nick)
	}
	for _, ch := range channels {
		if err := s.join(c, ch); err != nil {
			return err
		}
	}
	return nil
}

// speak writes a PRIVMSG from "speaker" into a channel, to each of its bridged members; it returns
// the time the line was handed to the first socket.
func (s *chanIRCd) speak(ch, text string) (time.Time, error) {
	s.mu.Lock()
	members := slices.Clone(s.joined[strings.ToLower(ch)])
	s.mu.Unlock()
	if len(members) == 0 {
		return time.Time{}, net.ErrClosed
	}
	line := ":speaker!speaker@bench.invalid PRIVMSG " + ch + " :" + text
	tagged := "@msgid=bench" + strconv.FormatInt(s.lineID.Add(1), 10) + " " + line
	at := time.Now()
	for _, c := range members {
		l := line
		if c.Acked("message-tags") {
			l = tagged
		}
		if err := c.Send(l); err != nil {
			return at, err
		}
	}
	return at, nil
}

// resetJoins forgets which channels were joined and how many connections registered (before a
// bridge restart).
func (s *chanIRCd) resetJoins() {
	s.mu.Lock()
	clear(s.joined)
	clear(s.names)
	s.mu.Unlock()
	s.joins.Store(0)
	s.welcomed.Store(0)
}
