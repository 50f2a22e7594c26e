package irc

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/internal/ircfake"
)

const testTimeout = 5 * time.Second

// fakeServer is a scripted IRC server on loopback: each accepted
// connection is handed to the test, which reads and writes lines on it.
type fakeServer struct {
	t     testing.TB
	ln    *ircfake.Listener
	conns chan *fakeConn
}

func newFakeServer(t testing.TB) *fakeServer {
	return newFakeServerTLS(t, nil)
}

func newFakeServerTLS(t testing.TB, tc *tls.Config) *fakeServer {
	t.Helper()
	ln, err := ircfake.Listen("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, conns: make(chan *fakeConn, 16)}
	go func() { _ = ln.Serve(func(c *ircfake.Conn) { s.conns <- &fakeConn{t: t, conn: c} }) }()
	t.Cleanup(func() { _ = ln.Close() })
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr() }

// accept waits for the next client connection.
func (s *fakeServer) accept() *fakeConn {
	s.t.Helper()
	select {
	case c := <-s.conns:
		s.t.Cleanup(func() { _ = c.conn.Close() })
		return c
	case <-time.After(testTimeout):
		s.t.Fatal("timed out waiting for a connection")
		return nil
	}
}

// expectNoConn asserts that no client connects within d.
func (s *fakeServer) expectNoConn(d time.Duration) {
	s.t.Helper()
	select {
	case c := <-s.conns:
		_ = c.conn.Close()
		s.t.Fatal("unexpected connection")
	case <-time.After(d):
	}
}

type fakeConn struct {
	t    testing.TB
	conn *ircfake.Conn
}

// send writes one line (CRLF added).
func (c *fakeConn) send(line string) {
	c.t.Helper()
	if err := c.conn.Send(line); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// readRaw returns the next raw line, without CRLF.
func (c *fakeConn) readRaw() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	line, err := c.conn.ReadLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return line
}

// readMsg returns the next parsed message.
func (c *fakeConn) readMsg() ircmsg.Message {
	c.t.Helper()
	raw := c.readRaw()
	msg, err := ircmsg.ParseLine(raw)
	if err != nil {
		c.t.Fatalf("parse %q: %v", raw, err)
	}
	return msg
}

// expectMessage reads the next message and checks its command and its
// first len(params) parameters.
func (c *fakeConn) expectMessage(command string, params ...string) ircmsg.Message {
	c.t.Helper()
	msg := c.readMsg()
	if msg.Command != command {
		c.t.Fatalf("expected %s %q, got %s %q", command, params, msg.Command, msg.Params)
	}
	if len(params) > len(msg.Params) || strings.Join(msg.Params[:len(params)], "\x00") != strings.Join(params, "\x00") {
		c.t.Fatalf("expected %s %q, got %s %q", command, params, msg.Command, msg.Params)
	}
	return msg
}

// expectRaw reads the next line and compares it exactly.
func (c *fakeConn) expectRaw(want string) {
	c.t.Helper()
	if got := c.readRaw(); got != want {
		c.t.Fatalf("expected line %q, got %q", want, got)
	}
}

// expectClosed asserts that the client closes the connection, skipping
// any lines it sends first (e.g. QUIT).
func (c *fakeConn) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		if _, err := c.conn.ReadLine(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatal("client did not close the connection")
			}
			return
		}
	}
}

// dropAndAccept drops the server's side of fc, waits for the client to report it with a retry, and
// accepts the client's next connection.
func dropAndAccept(t *testing.T, srv *fakeServer, fc *fakeConn, h *recHandler) *fakeConn {
	t.Helper()
	_ = fc.conn.Close()
	if d := h.waitDisconnected(t); !d.willRetry {
		t.Fatalf("got %+v", d)
	}
	return srv.accept()
}

// closeOnQuit closes the connection, from another goroutine, once the client's QUIT arrives (as a
// server does), so that a stopping client does not wait out its QUIT timeout.
func closeOnQuit(fc *fakeConn) {
	go func() {
		fc.expectMessage("QUIT")
		_ = fc.conn.Close()
	}()
}

// barrier pings the client and reads up to the PONG, returning the lines
// received before it; it proves everything sent earlier was flushed.
func (c *fakeConn) barrier() []string {
	c.t.Helper()
	c.send("PING :barrier")
	var before []string
	for {
		raw := c.readRaw()
		if raw == "PONG barrier" || raw == "PONG :barrier" {
			return before
		}
		before = append(before, raw)
	}
}

// expectNothing asserts no line was sent before the barrier.
func (c *fakeConn) expectNothing() {
	c.t.Helper()
	if lines := c.barrier(); len(lines) > 0 {
		c.t.Fatalf("unexpected lines: %q", lines)
	}
}

// expectRegistration reads the client's opening lines.
func (c *fakeConn) expectRegistration(nick string) {
	c.t.Helper()
	c.expectMessage("CAP", "LS", "302")
	c.expectMessage("NICK", nick)
	c.expectMessage("USER")
}

// welcome completes registration after CAP END.
func (c *fakeConn) welcome(nick string) {
	c.t.Helper()
	c.send(":irc.test 001 " + nick + " :Welcome to the Test IRC Network " + nick + "!user@host.example")
	c.send(":irc.test 005 " + nick + " CASEMAPPING=rfc1459 CHANTYPES=# NETWORK=TestNet :are supported by this server")
	c.send(":irc.test 376 " + nick + " :End of /MOTD command.")
}

// registerNoCaps runs a registration where the server offers no caps.
func (c *fakeConn) registerNoCaps(nick string) {
	c.t.Helper()
	c.expectRegistration(nick)
	c.send(":irc.test CAP * LS :")
	c.expectMessage("CAP", "END")
	c.welcome(nick)
}

// registerNoCapsAfterOpening finishes a registration whose opening lines
// were already read.
func (c *fakeConn) registerNoCapsAfterOpening(nick string) {
	c.t.Helper()
	c.send(":irc.test CAP * LS :")
	c.expectMessage("CAP", "END")
	c.welcome(nick)
}

// registerNoCapsAfterOpeningWith is registerNoCapsAfterOpening with the
// given ISUPPORT tokens.
func (c *fakeConn) registerNoCapsAfterOpeningWith(nick, isupport string) {
	c.t.Helper()
	c.send(":irc.test CAP * LS :")
	c.expectMessage("CAP", "END")
	c.send(":irc.test 001 " + nick + " :Welcome")
	c.send(":irc.test 005 " + nick + " " + isupport + " :are supported by this server")
	c.send(":irc.test 376 " + nick + " :End of /MOTD command.")
}

// recHandler records handler calls.
type recHandler struct {
	connected    chan struct{}
	msgs         chan recMsg
	disconnected chan recDisc
}

type recMsg struct {
	msg ircmsg.Message
	at  time.Time
}

type recDisc struct {
	err       error
	willRetry bool
}

func newRecHandler() *recHandler {
	return &recHandler{
		connected:    make(chan struct{}, 16),
		msgs:         make(chan recMsg, 1000),
		disconnected: make(chan recDisc, 16),
	}
}

func (h *recHandler) OnConnected(*Client) { h.connected <- struct{}{} }
func (h *recHandler) OnMessage(_ *Client, msg *ircmsg.Message, at time.Time) {
	h.msgs <- recMsg{*msg, at}
}
func (h *recHandler) OnDisconnected(_ *Client, err error, willRetry bool) {
	h.disconnected <- recDisc{err, willRetry}
}

func (h *recHandler) waitConnected(t *testing.T) {
	t.Helper()
	select {
	case <-h.connected:
	case <-time.After(testTimeout):
		t.Fatal("OnConnected not called")
	}
}

func (h *recHandler) waitMessage(t *testing.T, command string) recMsg {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case m := <-h.msgs:
			if m.msg.Command == command {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s message", command)
		}
	}
}

func (h *recHandler) waitDisconnected(t *testing.T) recDisc {
	t.Helper()
	select {
	case d := <-h.disconnected:
		return d
	case <-time.After(testTimeout):
		t.Fatal("OnDisconnected not called")
		return recDisc{}
	}
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

func testConfig(srv *fakeServer) Config {
	return Config{
		Addr:           srv.addr(),
		Nick:           "bridge",
		ConnectTimeout: testTimeout,
		QuitWait:       100 * time.Millisecond,
		Flood:          FloodConfig{Burst: 1000, LinesPerSecond: 1000},
		Backoff:        BackoffConfig{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	}
}

// connectAsync starts Connect and returns a channel with its result.
func connectAsync(c *Client) chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Connect(context.Background()) }()
	return ch
}

func waitErr(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatal("Connect did not return")
		return nil
	}
}

// connectedClient returns a registered client (no caps) and its server
// connection; the client is closed at cleanup.
func connectedClient(t *testing.T, srv *fakeServer, cfg Config) (*Client, *fakeConn, *recHandler) {
	t.Helper()
	h := newRecHandler()
	c := New(cfg, h, testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.registerNoCaps(cfg.Nick)
	if err := waitErr(t, res); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	h.waitConnected(t)
	t.Cleanup(func() { _ = c.Close() })
	return c, fc, h
}

func testLoggerDiscard() zerolog.Logger { return zerolog.Nop() }
