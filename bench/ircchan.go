package main

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// chanIRCd is the fake IRC server of the bridge phases (it lives in the world child, beside the fake
// homeserver, so that both stamp times on one clock). On top of what serveIRC speaks it answers
// JOIN (echo to every member, 353 with the members and "speaker", 366), can force-join a registered
// nick into channels like an operator's SAJOIN (how portals are first created), records every
// PRIVMSG it receives (Matrix->IRC), and lets the world write PRIVMSGs from "speaker" into a channel
// (IRC->Matrix), to every member. With tags on it offers the message-tags capability and gives each
// line a msgid, the same in every member's copy, as servers with message-tags do.
type chanIRCd struct {
	tags bool

	mu     sync.Mutex
	conns  map[string]*ircConn   // lower-cased nick -> registered connection
	joined map[string][]*ircConn // lower-cased channel -> the bridged members
	names  map[string]time.Time  // lower-cased channel -> when its 366 went out

	joins     atomic.Int64 // 366 sent
	welcomed  atomic.Int64 // 001 sent
	lineID    atomic.Int64 // msgids
	onPrivmsg func(from, target, text string, at time.Time)
}

type ircConn struct {
	mu   sync.Mutex
	w    *bufio.Writer
	nick string
	tags bool // message-tags acknowledged
}

func newChanIRCd(tags bool) *chanIRCd {
	return &chanIRCd{tags: tags, conns: map[string]*ircConn{},
		joined: map[string][]*ircConn{}, names: map[string]time.Time{}}
}

func (c *ircConn) send(lines ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range lines {
		_, _ = c.w.WriteString(l)
		_, _ = c.w.WriteString("\r\n")
	}
	return c.w.Flush()
}

func (s *chanIRCd) serve(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			s.conn(nc)
			_ = nc.Close()
		}()
	}
}

func (s *chanIRCd) conn(nc net.Conn) {
	const srv = ":bench.invalid"
	r := bufio.NewScanner(nc)
	r.Buffer(make([]byte, 4096), 64<<10)
	c := &ircConn{w: bufio.NewWriterSize(nc, 64<<10)}
	var user, welcomed bool
	defer func() {
		s.mu.Lock()
		if s.conns[strings.ToLower(c.nick)] == c {
			delete(s.conns, strings.ToLower(c.nick))
		}
		for ch, members := range s.joined {
			s.joined[ch] = slices.DeleteFunc(members, func(m *ircConn) bool { return m == c })
		}
		s.mu.Unlock()
	}()
	for r.Scan() {
		msg, err := ircmsg.ParseLine(r.Text())
		if err != nil {
			continue
		}
		p := msg.Params
		switch strings.ToUpper(msg.Command) {
		case "CAP":
			err = s.capability(c, p)
		case "NICK":
			if len(p) > 0 {
				c.nick = p[0]
			}
		case "USER":
			user = true
		case "PING":
			err = c.send(srv + " PONG bench.invalid :" + strings.Join(p, " "))
		case "JOIN":
			if len(p) > 0 {
				for _, ch := range strings.Split(p[0], ",") {
					if err = s.join(c, ch); err != nil {
						break
					}
				}
			}
		case "PRIVMSG", "NOTICE":
			if len(p) > 1 && s.onPrivmsg != nil {
				s.onPrivmsg(c.nick, p[0], p[1], time.Now())
			}
		case "QUIT":
			_ = c.send("ERROR :Closing link")
			return
		}
		if err == nil && !welcomed && c.nick != "" && user {
			welcomed = true
			err = s.welcome(c)
		}
		if err != nil {
			return
		}
	}
}

// capability answers CAP LS and REQ: message-tags when tags are on, nothing else.
func (s *chanIRCd) capability(c *ircConn, p []string) error {
	const srv = ":bench.invalid"
	offered := ""
	if s.tags {
		offered = "message-tags"
	}
	switch {
	case len(p) > 0 && strings.EqualFold(p[0], "LS"):
		return c.send(srv + " CAP * LS :" + offered)
	case len(p) > 1 && strings.EqualFold(p[0], "REQ"):
		for _, want := range strings.Fields(p[1]) {
			if want != offered || offered == "" {
				return c.send(srv + " CAP * NAK :" + p[1])
			}
		}
		c.tags = true
		return c.send(srv + " CAP * ACK :" + p[1])
	}
	return nil
}

func (s *chanIRCd) welcome(c *ircConn) error {
	const srv = ":bench.invalid"
	n := c.nick
	if err := c.send(srv+" 001 "+n+" :Welcome to the bench network "+n,
		srv+" 005 "+n+" NETWORK=bench CASEMAPPING=ascii CHANTYPES=# PREFIX=(ov)@+ NICKLEN=30 :are supported by this server",
		srv+" 422 "+n+" :MOTD File is missing"); err != nil {
		return err
	}
	s.mu.Lock()
	s.conns[strings.ToLower(n)] = c
	s.mu.Unlock()
	s.welcomed.Add(1)
	return nil
}

// join answers a JOIN as a server does: the JOIN to every member, NAMES and its end to the joiner.
func (s *chanIRCd) join(c *ircConn, ch string) error {
	const srv = ":bench.invalid"
	joinLine := ":" + c.nick + "!bench@bench.invalid JOIN " + ch
	s.mu.Lock()
	members := s.joined[strings.ToLower(ch)]
	if !slices.Contains(members, c) {
		members = append(members, c)
		s.joined[strings.ToLower(ch)] = members
	}
	members = slices.Clone(members)
	s.mu.Unlock()
	nicks := make([]string, 0, len(members)+1)
	for _, m := range members {
		nicks = append(nicks, m.nick)
		if m != c {
			_ = m.send(joinLine)
		}
	}
	nicks = append(nicks, "speaker")
	err := c.send(joinLine,
		srv+" 353 "+c.nick+" = "+ch+" :"+strings.Join(nicks, " "),
		srv+" 366 "+c.nick+" "+ch+" :End of /NAMES list.")
	if err == nil {
		s.mu.Lock()
		s.names[strings.ToLower(ch)] = time.Now()
		s.mu.Unlock()
		s.joins.Add(1)
	}
	return err
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
		if c.tags {
			l = tagged
		}
		if err := c.send(l); err != nil {
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
