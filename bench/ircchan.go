package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// chanIRCd is the fake IRC server of the bridge phases (it lives in the world child, beside the fake
// homeserver, so that both stamp times on one clock). On top of what serveIRC speaks it answers
// JOIN (echo, 353 with the joiner and "speaker", 366), can force-join a registered nick into
// channels like an operator's SAJOIN (how portals are first created), records every PRIVMSG it receives (Matrix->IRC),
// and lets the world write PRIVMSGs from "speaker" into a channel (IRC->Matrix).
type chanIRCd struct {
	mu     sync.Mutex
	conns  map[string]*ircConn  // lower-cased nick -> registered connection
	joined map[string]*ircConn  // lower-cased channel -> the bridged member
	names  map[string]time.Time // lower-cased channel -> when its 366 went out

	joins     atomic.Int64 // 366 sent
	onPrivmsg func(from, target, text string, at time.Time)
}

type ircConn struct {
	mu   sync.Mutex
	w    *bufio.Writer
	nick string
}

func newChanIRCd() *chanIRCd {
	return &chanIRCd{conns: map[string]*ircConn{},
		joined: map[string]*ircConn{}, names: map[string]time.Time{}}
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
			if len(p) > 0 && strings.EqualFold(p[0], "LS") {
				err = c.send(srv + " CAP * LS :")
			} else if len(p) > 1 && strings.EqualFold(p[0], "REQ") {
				err = c.send(srv + " CAP * NAK :" + p[1])
			}
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
	return nil
}

// join answers a JOIN as a server does: the echo, NAMES and its end.
func (s *chanIRCd) join(c *ircConn, ch string) error {
	const srv = ":bench.invalid"
	s.mu.Lock()
	s.joined[strings.ToLower(ch)] = c
	s.mu.Unlock()
	err := c.send(":"+c.nick+"!bench@bench.invalid JOIN "+ch,
		srv+" 353 "+c.nick+" = "+ch+" :"+c.nick+" speaker",
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

// speak writes a PRIVMSG from "speaker" into a channel, to its bridged member; it returns the time
// the line was handed to the socket.
func (s *chanIRCd) speak(ch, text string) (time.Time, error) {
	s.mu.Lock()
	c := s.joined[strings.ToLower(ch)]
	s.mu.Unlock()
	if c == nil {
		return time.Time{}, net.ErrClosed
	}
	at := time.Now()
	return at, c.send(":speaker!speaker@bench.invalid PRIVMSG " + ch + " :" + text)
}

// resetJoins forgets which channels were joined (before a bridge restart).
func (s *chanIRCd) resetJoins() {
	s.mu.Lock()
	clear(s.joined)
	clear(s.names)
	s.mu.Unlock()
	s.joins.Store(0)
}
