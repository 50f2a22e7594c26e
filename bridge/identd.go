package bridge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// An identd (RFC 1413, https://www.rfc-editor.org/rfc/rfc1413) so that IRC servers that ask for
// the ident of a connection get each login's own username (the network's username template)
// instead of none: "~nick" users from one host look like one user to a server's bans. Off unless
// network.identd.enabled; it listens on network.identd.listen (port 113 by default, which needs
// CAP_NET_BIND_SERVICE or a port forward). It answers only for the bridge's own connections, each
// query within identdTimeout, at most identdConns at once.

const (
	identdTimeout = 10 * time.Second
	identdConns   = 64
	identdLine    = 1000 // RFC 1413 queries are short; longer lines are refused
	// identdGrace is how long a query about an unknown connection waits for it to be registered:
	// a server may ask as soon as it accepts, before the dialling goroutine has run again.
	identdGrace = 2 * time.Second
)

// runIdentd serves identd on ln until ctx ends.
func (c *IRCConnector) runIdentd(ctx context.Context, ln net.Listener, log zerolog.Logger) {
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	slots := make(chan struct{}, identdConns)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				log.Err(err).Msg("identd stopped accepting connections")
			}
			return
		}
		select {
		case slots <- struct{}{}:
			go func() {
				defer func() { <-slots }()
				c.answerIdent(conn)
			}()
		default:
			_ = conn.Close() // too many at once
		}
	}
}

// answerIdent answers one query: "<our port> , <their port>".
func (c *IRCConnector) answerIdent(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(identdTimeout))
	line, err := bufio.NewReaderSize(conn, identdLine).ReadSlice('\n')
	if err != nil {
		return
	}
	query := strings.TrimSpace(string(line))
	ours, theirs, ok := parseIdentQuery(query)
	if !ok {
		_, _ = fmt.Fprintf(conn, "%s : ERROR : INVALID-PORT\r\n", query)
		return
	}
	// The query reaches the address the server sees our connection come from, from the address
	// our connection went to: with ports, the connection's four-tuple, unique among open ones.
	local, lok := addrPort(conn.LocalAddr())
	remote, rok := addrPort(conn.RemoteAddr())
	if !lok || !rok {
		return
	}
	key := identKey{netip.AddrPortFrom(local.Addr(), uint16(ours)), netip.AddrPortFrom(remote.Addr(), uint16(theirs))}
	if user := c.identFor(key, time.Now().Add(identdGrace)); user != "" {
		_, _ = fmt.Fprintf(conn, "%d , %d : USERID : UNIX : %s\r\n", ours, theirs, user)
		return
	}
	_, _ = fmt.Fprintf(conn, "%d , %d : ERROR : NO-USER\r\n", ours, theirs)
}

// parseIdentQuery reads "<port-on-server> , <port-on-client>".
func parseIdentQuery(q string) (ours, theirs int, ok bool) {
	a, b, found := strings.Cut(q, ",")
	if !found {
		return 0, 0, false
	}
	ours, err1 := strconv.Atoi(strings.TrimSpace(a))
	theirs, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || ours < 1 || ours > 65535 || theirs < 1 || theirs > 65535 {
		return 0, 0, false
	}
	return ours, theirs, true
}

// identFor is the username of the bridge's connection key, or "" when there is none by the
// deadline (a server can only ask about its own connections).
func (c *IRCConnector) identFor(key identKey, deadline time.Time) string {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		c.idents.mu.Lock()
		user, ok := c.idents.byConn[key]
		if c.idents.changed == nil {
			c.idents.changed = make(chan struct{})
		}
		changed := c.idents.changed
		c.idents.mu.Unlock()
		if ok {
			return user
		}
		select {
		case <-changed:
		case <-timer.C:
			return ""
		}
	}
}

// idents are the bridge's open IRC connections, with each one's username, for the identd:
// registered when a connection is dialled (during a login flow too, when servers ask) and removed
// when it closes.
type idents struct {
	mu      sync.Mutex
	byConn  map[identKey]string
	changed chan struct{} // closed (and replaced) whenever a connection is registered
}

// identKey is a connection's four-tuple. Logins dial from many source addresses (a bind prefix),
// so the same local port to the same server is common; the local address tells them apart.
type identKey struct {
	local, remote netip.AddrPort
}

// addrPort is a TCP address as a comparable value, IPv4-in-IPv6 unmapped.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := t.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// trackIdent wraps a dial function so that its connections answer identd queries with username.
func (c *IRCConnector) trackIdent(dial func(ctx context.Context, network, addr string) (net.Conn, error), username string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		local, lok := addrPort(conn.LocalAddr())
		remote, rok := addrPort(conn.RemoteAddr())
		if !lok || !rok {
			return conn, nil
		}
		key := identKey{local, remote}
		c.idents.mu.Lock()
		if c.idents.byConn == nil {
			c.idents.byConn = map[identKey]string{}
		}
		c.idents.byConn[key] = username
		if c.idents.changed != nil {
			close(c.idents.changed)
			c.idents.changed = nil
		}
		c.idents.mu.Unlock()
		return &identConn{Conn: conn, forget: func() {
			c.idents.mu.Lock()
			delete(c.idents.byConn, key)
			c.idents.mu.Unlock()
		}}, nil
	}
}

// identConn forgets its identd entry when it closes.
type identConn struct {
	net.Conn
	once   sync.Once
	forget func()
}

func (ic *identConn) Close() error {
	ic.once.Do(ic.forget)
	return ic.Conn.Close()
}
