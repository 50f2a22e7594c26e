package ircfake

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircreader"
)

// client is the client side of a test connection.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, l *Listener) *client {
	t.Helper()
	nc, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) write(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads the next lines, which must be want (CRLF-terminated on the wire).
func (c *client) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		got, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading %q: %v", w, err)
		}
		if got != w+"\r\n" {
			c.t.Fatalf("got %q, want %q", got, w+"\r\n")
		}
	}
}

func listen(t *testing.T) *Listener {
	t.Helper()
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serve registers every client with reg; other messages are echoed back as "ECHO <command>".
func serve(t *testing.T, reg Registration) *Listener {
	l := listen(t)
	go l.Serve(func(c *Conn) {
		defer c.Close()
		_ = reg.Serve(c, func(c *Conn, msg *ircmsg.Message) error {
			return c.Send("ECHO " + msg.Command)
		})
	})
	return l
}

// The bench's way: no caps, the welcome as soon as NICK and USER are in, 422.
func TestRegistrationWithoutCapEnd(t *testing.T) {
	l := serve(t, Registration{Server: "srv.test", Welcome: "Welcome to the test network %s",
		ISupport: "NETWORK=test CHANTYPES=# :are supported"})
	c := dial(t, l)
	c.write("CAP LS 302\r\nNICK alice\r\nUSER u 0 * :Alice\r\n")
	c.expect(":srv.test CAP * LS :",
		":srv.test 001 alice :Welcome to the test network alice",
		":srv.test 005 alice NETWORK=test CHANTYPES=# :are supported",
		":srv.test 422 alice :MOTD File is missing")
	c.write("CAP REQ :message-tags\r\nPING :tok\r\nJOIN #x\r\nnot a : valid\x00 line\r\nCAP END\r\nNICK bob\r\n")
	c.expect(":srv.test CAP * NAK :message-tags", ":srv.test PONG srv.test :tok", "ECHO JOIN")
	// No second welcome after CAP END or a new nick: the next line is the answer to this PING.
	c.write("PING x\r\n")
	c.expect(":srv.test PONG srv.test :x")
}

// EvilIRC's and the bridge harness's way: caps offered and ACKed, the welcome on CAP END, 376.
func TestRegistrationOnCapEnd(t *testing.T) {
	welcomed := make(chan string, 1)
	acked := make(chan bool, 1)
	l := serve(t, Registration{Server: "irc.test", Caps: []string{"message-tags", "draft/multiline=max-lines=10"},
		Welcome: "Welcome %s!u@host", ISupport: "CASEMAPPING=ascii :are supported", MOTD: true, CapEnd: true,
		OnWelcome: func(c *Conn) {
			acked <- c.Acked("draft/multiline") && !c.Acked("sasl") && c.Welcomed()
			welcomed <- c.Nick
		}})
	c := dial(t, l)
	c.write("CAP LS 302\r\nNICK me\r\nUSER u 0 * :Me\r\n")
	c.expect(":irc.test CAP * LS :message-tags draft/multiline=max-lines=10")
	c.write("CAP REQ :sasl message-tags\r\ncap req :draft/multiline message-tags\r\n")
	c.expect(":irc.test CAP * NAK :sasl message-tags", ":irc.test CAP * ACK :draft/multiline message-tags")
	select {
	case n := <-welcomed:
		t.Fatalf("%s welcomed before CAP END", n)
	default:
	}
	c.write("CAP END\r\n")
	c.expect(":irc.test 001 me :Welcome me!u@host",
		":irc.test 005 me CASEMAPPING=ascii :are supported",
		":irc.test 376 me :End of MOTD")
	if n := <-welcomed; n != "me" {
		t.Fatalf("OnWelcome got nick %q", n)
	}
	if !<-acked {
		t.Fatal("Acked or Welcomed wrong in OnWelcome")
	}
}

// Send and ReadLine: CRLF added and stripped (a bare LF too), lines kept whole and in order, an
// over-long line refused, deadlines passed through.
func TestSendReadLine(t *testing.T) {
	l := listen(t)
	conns := make(chan *Conn, 1)
	go l.Serve(func(c *Conn) { conns <- c })
	c := dial(t, l)
	s := <-conns
	if err := s.Send("one", "@a=b :x PRIVMSG #c :two words"); err != nil {
		t.Fatal(err)
	}
	c.expect("one", "@a=b :x PRIVMSG #c :two words")

	long := strings.Repeat("x", MaxLine-2)
	c.write("first\r\nsecond\n" + long + "\r\n")
	for _, want := range []string{"first", "second", long} {
		if got, err := s.ReadLine(); err != nil || got != want {
			t.Fatalf("ReadLine = %.20q, %v; want %.20q", got, err, want)
		}
	}
	c.write(strings.Repeat("y", MaxLine+1))
	if _, err := s.ReadLine(); !errors.Is(err, ircreader.ErrReadQ) {
		t.Fatalf("over-long line: %v, want ErrReadQ", err)
	}

	dial(t, l)
	s2 := <-conns
	_ = s2.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var ne net.Error
	if _, err := s2.ReadLine(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadLine past the deadline: %v", err)
	}
}

// CloseConns closes the open connections and says how many; Close stops accepting.
func TestListenerClose(t *testing.T) {
	l := listen(t)
	conns := make(chan *Conn, 3)
	go l.Serve(func(c *Conn) { conns <- c })
	a, b, d := dial(t, l), dial(t, l), dial(t, l)
	<-conns
	<-conns
	(<-conns).Close()
	if n := l.CloseConns(); n != 2 {
		t.Fatalf("CloseConns closed %d, want 2", n)
	}
	for _, c := range []*client{a, b, d} {
		if _, err := c.r.ReadString('\n'); err != io.EOF {
			t.Fatalf("client read after close: %v, want EOF", err)
		}
	}
	_ = l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
