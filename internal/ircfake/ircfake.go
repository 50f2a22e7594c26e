// Package ircfake is the server side of the scripted IRC servers of the tests and the bench: a
// Listener that accepts and tracks connections, a Conn that reads lines (irc-go's ircreader) and
// writes them through one locked, buffered writer, and a Registration that answers what every
// client sends first (CAP LS/REQ/END, NICK, USER, PING) and welcomes it (001, 005, then 376 or
// 422). What a server does beyond that is the server's own: it reads the messages the
// Registration does not handle, or the raw lines, and writes what it likes.
//
// It is test and bench code: it imports only the standard library and irc-go, so that any package
// of the module, bridge/irc's own tests included, can use it.
package ircfake

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"

	"github.com/ergochat/irc-go/ircreader"
)

const (
	// MaxLine is the longest line a Conn reads, CRLF included: far above IRC's 8191 bytes of tags
	// plus 512 of message, so that a test sees an over-long line, and can say what is wrong with
	// it, rather than a read error.
	MaxLine = 64 << 10
	// DefaultWriteBuffer is the size of a Conn's write buffer unless Listener.WriteBuffer says
	// otherwise.
	DefaultWriteBuffer = 64 << 10
)

// Listener accepts connections and tracks them until they are closed, so that all of them can
// be closed at once.
type Listener struct {
	// WriteBuffer is the size of each new Conn's write buffer (0: DefaultWriteBuffer). Set it
	// before Serve or Accept.
	WriteBuffer int

	ln     net.Listener
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
}

// Listen listens on addr (host:0 for any port), with TLS when tc is not nil.
func Listen(addr string, tc *tls.Config) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return NewListener(ln), nil
}

// NewListener serves on ln, which the Listener closes with Close.
func NewListener(ln net.Listener) *Listener {
	return &Listener{ln: ln, conns: map[*Conn]struct{}{}}
}

// Addr is the listening address, host:port.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Port is the listening port.
func (l *Listener) Port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// Accept waits for the next connection. Once the Listener is closed it returns an error, and a
// connection accepted as it closed is closed at once.
func (l *Listener) Accept() (*Conn, error) {
	nc, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	size := l.WriteBuffer
	if size <= 0 {
		size = DefaultWriteBuffer
	}
	c := &Conn{Conn: nc, l: l, w: bufio.NewWriterSize(nc, size)}
	c.r.Initialize(nc, 512, MaxLine)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = nc.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

// Serve accepts connections until Accept fails (the Listener closed) and runs handle on each, in
// a goroutine of its own; it returns Accept's error. The connection stays open when handle
// returns: whoever is done with it closes it.
func (l *Listener) Serve(handle func(*Conn)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go handle(c)
	}
}

// CloseConns closes every open connection, leaving the Listener listening, and returns how many
// it closed.
func (l *Listener) CloseConns() int {
	l.mu.Lock()
	conns := l.conns
	l.conns = map[*Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return len(conns)
}

// Close stops listening and closes every connection.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.ln.Close()
	l.CloseConns()
	return err
}

// Conn is one accepted connection. One goroutine reads it (ReadLine, or Registration.Serve); any
// number may write to it (Send). The embedded net.Conn is there for deadlines and addresses:
// reading or writing it directly bypasses the line reader and the write buffer.
type Conn struct {
	net.Conn
	l  *Listener
	r  ircreader.Reader
	mu sync.Mutex // guards w
	w  *bufio.Writer

	// Nick is the nick of the client's last NICK (set by Registration), "" before one. The
	// goroutine reading the connection writes it; others may read it once the client is
	// welcomed, if the welcome is published to them under a lock (Registration.OnWelcome).
	Nick     string
	user     bool
	capEnd   bool
	welcomed bool
	acked    []string
}

// Send writes lines, each with CRLF added, and flushes them, under the connection's write lock:
// lines sent at once are never interleaved with another goroutine's.
func (c *Conn) Send(lines ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range lines {
		_, _ = c.w.WriteString(l)
		_, _ = c.w.WriteString("\r\n")
	}
	return c.w.Flush() // a failed write fails the flush too
}

// ReadLine returns the next line the client sent, without its CR LF (or LF). It fails with the
// connection's error (a deadline's too) or ircreader.ErrReadQ for a line over MaxLine.
func (c *Conn) ReadLine() (string, error) {
	line, err := c.r.ReadLine()
	if err != nil {
		return "", err
	}
	return string(line), nil
}

// Close closes the connection and forgets it.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
