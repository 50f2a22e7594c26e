package stack

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// ircMsg is a parsed IRC line (irc-go's ircmsg) with the line as received, for error messages.
type ircMsg struct {
	ircmsg.Message
	Raw string
}

// Last is the last parameter (the trailing one), or "".
func (m ircMsg) Last() string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// parseIRC parses a line from the server; one that does not parse is kept with only Raw set.
func parseIRC(line string) ircMsg {
	m, _ := ircmsg.ParseLine(line)
	m.Command = strings.ToUpper(m.Command)
	return ircMsg{Message: m, Raw: line}
}

// ircConn is a raw client connection, line by line; it answers PINGs.
type ircConn struct {
	conn net.Conn
	r    *bufio.Reader
	log  []string // lines received, for error messages
}

func dialIRC(ctx context.Context, addr string, tlsConfig *tls.Config) (*ircConn, error) {
	var d net.Dialer
	var c net.Conn
	var err error
	if tlsConfig != nil {
		td := tls.Dialer{NetDialer: &d, Config: tlsConfig}
		c, err = td.DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &ircConn{conn: c, r: bufio.NewReader(c)}, nil
}

func (c *ircConn) Close() error { return c.conn.Close() }

func (c *ircConn) send(format string, args ...any) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := fmt.Fprintf(c.conn, format+"\r\n", args...)
	return err
}

// read returns the next message other than PING (answered) before ctx ends.
func (c *ircConn) read(ctx context.Context) (ircMsg, error) {
	for {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(30 * time.Second)
		}
		_ = c.conn.SetReadDeadline(dl)
		line, err := c.r.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return ircMsg{}, ctx.Err()
			}
			return ircMsg{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		c.log = append(c.log, line)
		m := parseIRC(line)
		if m.Command == "PING" {
			_ = c.send("PONG :%s", m.Last())
			continue
		}
		return m, nil
	}
}

// until reads messages until match returns done or an error.
func (c *ircConn) until(ctx context.Context, match func(ircMsg) (done bool, err error)) (ircMsg, error) {
	for {
		m, err := c.read(ctx)
		if err != nil {
			return m, fmt.Errorf("%w; received:\n%s", err, c.recent())
		}
		if m.Command == "ERROR" {
			return m, fmt.Errorf("server closed the connection: %s", m.Raw)
		}
		done, err := match(m)
		if err != nil {
			return m, err
		}
		if done {
			return m, nil
		}
	}
}

func (c *ircConn) recent() string {
	l := c.log
	if len(l) > 20 {
		l = l[len(l)-20:]
	}
	return strings.Join(l, "\n")
}

// capLS sends CAP LS 302 and returns the advertised capabilities
// (name -> value), following multi-line replies.
func (c *ircConn) capLS(ctx context.Context) (map[string]string, error) {
	if err := c.send("CAP LS 302"); err != nil {
		return nil, err
	}
	caps := map[string]string{}
	_, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command != "CAP" || len(m.Params) < 3 || !strings.EqualFold(m.Params[1], "LS") {
			return false, nil
		}
		for _, f := range strings.Fields(m.Last()) {
			k, v, _ := strings.Cut(f, "=")
			caps[k] = v
		}
		// "CAP * LS * :..." means more lines follow.
		return !(len(m.Params) >= 4 && m.Params[2] == "*"), nil
	})
	return caps, err
}

// register sends NICK/USER (after CAP END if capability negotiation was
// started) and waits for 001. A 433 (nick in use) is an error.
func (c *ircConn) register(ctx context.Context, nick string, capStarted bool) error {
	if capStarted {
		if err := c.send("CAP END"); err != nil {
			return err
		}
	}
	if err := c.send("NICK %s", nick); err != nil {
		return err
	}
	if err := c.send("USER %s 0 * :sealbridge test", nick); err != nil {
		return err
	}
	_, err := c.until(ctx, func(m ircMsg) (bool, error) {
		switch m.Command {
		case "001":
			return true, nil
		case "432", "433", "436", "465":
			return false, fmt.Errorf("registering as %s: %s", nick, m.Raw)
		}
		return false, nil
	})
	return err
}
