package bridge

import (
	"bufio"
	"context"
	"fmt"
	"net"
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
