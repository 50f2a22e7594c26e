package ircfake

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"
)

// Registration is how a server registers its clients. It is a value: a server keeps one and
// copies it where a connection needs a hook of its own.
type Registration struct {
	// Server is the server's name: the source of its lines and the first parameter of its PONGs.
	Server string
	// Caps are offered in CAP LS, in this order ("name" or "name=value"). A CAP REQ is ACKed when
	// it asks only for offered names and NAKed otherwise (always, when none are offered).
	Caps []string
	// Welcome is the text of 001, a fmt format given the nick ("Welcome to the network %s").
	Welcome string
	// ISupport is what follows the nick in 005: the tokens and the trailing text
	// ("CHANTYPES=# NETWORK=Test :are supported").
	ISupport string
	// MOTD ends the welcome with 376 (End of MOTD) rather than 422 (MOTD File is missing).
	MOTD bool
	// CapEnd welcomes the client on CAP END, once it sent NICK; otherwise the welcome goes out as
	// soon as NICK and USER are in, CAP END or not.
	CapEnd bool
	// OnWelcome, if set, is called on the reading goroutine once the welcome was sent.
	OnWelcome func(*Conn)
}

// Serve reads c's messages until the connection fails or other returns an error, and returns
// that error. It answers the registration commands (see Answer), passes every other message to
// other (if not nil) and skips lines that do not parse. It does not close c.
func (r *Registration) Serve(c *Conn, other func(*Conn, *ircmsg.Message) error) error {
	for {
		line, err := c.ReadLine()
		if err != nil {
			return err
		}
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			continue
		}
		handled, err := r.Answer(c, &msg)
		if !handled && other != nil {
			err = other(c, &msg)
		}
		if err != nil {
			return err
		}
	}
}

// Answer handles msg if it is CAP (LS, REQ, END), NICK, USER or PING, and reports whether it did.
// CAP LS is answered with the offered caps, CAP REQ with ACK or NAK, PING with PONG; once the
// client has registered (see CapEnd) it is welcomed, once. The error is Send's.
func (r *Registration) Answer(c *Conn, msg *ircmsg.Message) (handled bool, err error) {
	p := msg.Params
	src := ":" + r.Server
	switch msg.Command {
	case "CAP":
		switch {
		case len(p) > 0 && strings.EqualFold(p[0], "LS"):
			err = c.Send(src + " CAP * LS :" + strings.Join(r.Caps, " "))
		case len(p) > 1 && strings.EqualFold(p[0], "REQ"):
			want := strings.Fields(p[len(p)-1])
			if len(r.Caps) == 0 || slices.ContainsFunc(want, func(w string) bool { return !r.offers(w) }) {
				err = c.Send(src + " CAP * NAK :" + p[len(p)-1])
			} else {
				c.acked = append(c.acked, want...)
				err = c.Send(src + " CAP * ACK :" + p[len(p)-1])
			}
		case len(p) > 0 && strings.EqualFold(p[0], "END"):
			c.capEnd = true
		}
	case "NICK":
		if len(p) > 0 {
			c.Nick = p[0]
		}
	case "USER":
		c.user = true
	case "PING":
		return true, c.Send(src + " PONG " + r.Server + " :" + strings.Join(p, " "))
	default:
		return false, nil
	}
	if err != nil || c.welcomed || c.Nick == "" || (r.CapEnd && !c.capEnd) || (!r.CapEnd && !c.user) {
		return true, err
	}
	c.welcomed = true
	end := src + " 422 " + c.Nick + " :MOTD File is missing"
	if r.MOTD {
		end = src + " 376 " + c.Nick + " :End of MOTD"
	}
	err = c.Send(src+" 001 "+c.Nick+" :"+fmt.Sprintf(r.Welcome, c.Nick), src+" 005 "+c.Nick+" "+r.ISupport, end)
	if err == nil && r.OnWelcome != nil {
		r.OnWelcome(c)
	}
	return true, err
}

// offers reports whether name is one of the offered caps (their names, without "=value").
func (r *Registration) offers(name string) bool {
	return slices.ContainsFunc(r.Caps, func(c string) bool {
		n, _, _ := strings.Cut(c, "=")
		return n == name
	})
}

// Welcomed reports whether the client was welcomed. Like Nick, it is the reading goroutine's.
func (c *Conn) Welcomed() bool { return c.welcomed }

// Acked reports whether a CAP REQ for name was ACKed.
func (c *Conn) Acked(name string) bool { return slices.Contains(c.acked, name) }
