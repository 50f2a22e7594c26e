package bridge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The identd answers a server's query about one of the bridge's own connections with that login's
// username, and nothing about any other connection or after it closed.
func TestIdentdAnswersForTheBridgesConnections(t *testing.T) {
	c := NewConnector()
	ident, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.runIdentd(ctx, ident, zerolog.Nop())

	server, err := net.Listen("tcp", "127.0.0.1:0") // the IRC server
	must(t, err)
	defer server.Close()
	conn, err := c.trackIdent(nil, "alice1")(ctx, "tcp", server.Addr().String())
	must(t, err)
	ours := conn.LocalAddr().(*net.TCPAddr).Port
	theirs := server.Addr().(*net.TCPAddr).Port
	ask := func(query string) string {
		t.Helper()
		q, err := net.DialTimeout("tcp", ident.Addr().String(), 5*time.Second)
		must(t, err)
		defer q.Close()
		_ = q.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(q, "%s\r\n", query)
		must(t, err)
		line, err := bufio.NewReader(q).ReadString('\n')
		must(t, err)
		return strings.TrimSpace(line)
	}
	if got, want := ask(fmt.Sprintf("%d , %d", ours, theirs)), fmt.Sprintf("%d , %d : USERID : UNIX : alice1", ours, theirs); got != want {
		t.Fatalf("identd answered %q, want %q", got, want)
	}
	if got := ask(fmt.Sprintf("%d , %d", ours, theirs+1)); !strings.HasSuffix(got, "ERROR : NO-USER") {
		t.Errorf("a connection that is not the bridge's: %q", got)
	}
	if got := ask("junk"); !strings.HasSuffix(got, "ERROR : INVALID-PORT") {
		t.Errorf("junk: %q", got)
	}
	must(t, conn.Close())
	if got := ask(fmt.Sprintf("%d , %d", ours, theirs)); !strings.HasSuffix(got, "ERROR : NO-USER") {
		t.Errorf("after the connection closed: %q", got)
	}
}

// Logins dial from many source addresses, so two connections to one server may share a local
// port: each query is answered for the connection from the address it reached. And a query that
// arrives before the dialling goroutine registered its connection still gets the answer.
func TestIdentdTellsSourceAddressesApartAndWaitsForRegistration(t *testing.T) {
	c := NewConnector()
	ident, err := net.Listen("tcp", "0.0.0.0:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.runIdentd(ctx, ident, zerolog.Nop())
	identPort := ident.Addr().(*net.TCPAddr).Port

	server, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer server.Close()
	theirs := server.Addr().(*net.TCPAddr).Port
	// Both connections from one port, on two source addresses.
	first := bindDial("127.0.0.2", 0)
	a, err := c.trackIdent(first, "usera")(ctx, "tcp", server.Addr().String())
	must(t, err)
	defer a.Close()
	ours := a.LocalAddr().(*net.TCPAddr).Port
	b, err := c.trackIdent(bindDial("127.0.0.3", ours), "userb")(ctx, "tcp", server.Addr().String())
	must(t, err)
	defer b.Close()

	ask := func(at string) string {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
		q, err := d.Dial("tcp", net.JoinHostPort(at, strconv.Itoa(identPort)))
		must(t, err)
		defer q.Close()
		_ = q.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(q, "%d , %d\r\n", ours, theirs)
		must(t, err)
		line, err := bufio.NewReader(q).ReadString('\n')
		must(t, err)
		return strings.TrimSpace(line)
	}
	if got := ask("127.0.0.2"); !strings.HasSuffix(got, "USERID : UNIX : usera") {
		t.Errorf("asked at 127.0.0.2: %q, want usera", got)
	}
	if got := ask("127.0.0.3"); !strings.HasSuffix(got, "USERID : UNIX : userb") {
		t.Errorf("asked at 127.0.0.3: %q, want userb", got)
	}
	must(t, a.Close())
	if got := ask("127.0.0.3"); !strings.HasSuffix(got, "USERID : UNIX : userb") {
		t.Errorf("after the other connection on the same port closed: %q, want userb", got)
	}

	// A query about a connection registered only after the query arrived.
	answer := make(chan string, 1)
	go func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
		q, err := d.Dial("tcp", net.JoinHostPort("127.0.0.4", strconv.Itoa(identPort)))
		if err != nil {
			answer <- err.Error()
			return
		}
		defer q.Close()
		fmt.Fprintf(q, "%d , %d\r\n", ours, theirs)
		line, _ := bufio.NewReader(q).ReadString('\n')
		answer <- strings.TrimSpace(line)
	}()
	time.Sleep(300 * time.Millisecond)
	late, err := c.trackIdent(bindDial("127.0.0.4", ours), "late")(ctx, "tcp", server.Addr().String())
	must(t, err)
	defer late.Close()
	if got := <-answer; !strings.HasSuffix(got, "USERID : UNIX : late") {
		t.Errorf("a query before registration: %q, want late", got)
	}
}

// bindDial dials from ip (and port, unless 0).
func bindDial(ip string, port int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
	return d.DialContext
}
