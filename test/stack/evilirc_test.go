package stack

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestEvilIRC registers a raw client with EvilIRC, which needs nothing of the real stack: the
// caps offered and ACKed, the welcome on CAP END, then, under attack, forced JOINs and junk, with
// PINGs still answered; Stop ends the connection.
func TestEvilIRC(t *testing.T) {
	s, err := StartEvilIRC("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	send := func(line string) {
		t.Helper()
		if _, err := nc.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	next := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			if got := next(); got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		}
	}

	send("CAP LS 302")
	send("NICK alice")
	send("USER alice 0 * :Alice")
	expect(":evil.test CAP * LS :batch draft/multiline=max-bytes=40000,max-lines=1000 message-tags server-time draft/chathistory labeled-response echo-message")
	send("CAP REQ :batch draft/multiline message-tags")
	expect(":evil.test CAP * ACK :batch draft/multiline message-tags")
	send("CAP END")
	expect(":evil.test 001 alice :Welcome to Evil alice!u@evil.test",
		":evil.test 005 alice CASEMAPPING=rfc1459 CHANTYPES=# PREFIX=(ov)@+ NETWORK=Evil :are supported",
		":evil.test 376 alice :End of MOTD")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Registered(ctx); err != nil {
		t.Fatal(err)
	}

	attacked := make(chan int64, 1)
	go func() { attacked <- s.Attack(t.Context(), 200*time.Millisecond) }()
	expect(":alice!u@evil.test JOIN #evil0",
		":evil.test 353 alice = #evil0 :alice @op0",
		":evil.test 366 alice #evil0 :End of /NAMES list.",
		":n0!u@evil.test JOIN #evil0")
	if l := next(); !strings.HasSuffix(l, " :n0!u@evil.test PRIVMSG #evil0 :junk 0") || !strings.HasPrefix(l, "@msgid=c0;time=") {
		t.Fatalf("got %q, want the first channel message", l)
	}
	send("PING :still-there")
	lines := 5
	for {
		l := next()
		lines++
		if l == ":evil.test PONG evil.test :still-there" {
			break
		}
	}
	// Read on until the connection ends (the attack's writes block while nobody reads).
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	if n := <-attacked; n < int64(lines) {
		t.Fatalf("Attack wrote %d lines, fewer than the %d read", n, lines)
	}
	s.Stop()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not close the connection")
	}
}
