package irc

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// labeledClient is a registered client on a server that offers labeled-response and batch.
func labeledClient(t *testing.T) (*Client, *fakeConn) {
	t.Helper()
	return labeledClientWith(t, nil, newRecHandler())
}

// labeledClientWith is labeledClient with edit applied to its config and h as its handler.
func labeledClientWith(t *testing.T, edit func(*Config), h Handler) (*Client, *fakeConn) {
	t.Helper()
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	if edit != nil {
		edit(&cfg)
	}
	c := New(cfg, h, testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :labeled-response batch")
	req := fc.expectMessage("CAP", "REQ")
	fc.send(":irc.test CAP bridge ACK :" + req.Params[len(req.Params)-1])
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, fc
}

type labeledReply struct {
	lines []*ircmsg.Message
	err   error
}

func sendLabeled(t *testing.T, c *Client, fc *fakeConn, text string) (string, chan labeledReply) {
	t.Helper()
	got := make(chan labeledReply, 1)
	if err := c.SendWith(SendOptions{Reply: func(lines []*ircmsg.Message, err error) { got <- labeledReply{lines, err} }}, "PRIVMSG", "#a", text); err != nil {
		t.Fatal(err)
	}
	m := fc.readMsg()
	ok, label := m.GetTag("label")
	if !ok || label == "" || m.Command != "PRIVMSG" || m.Params[1] != text {
		t.Fatalf("sent %+v, want a labeled PRIVMSG", m)
	}
	return label, got
}

func waitReply(t *testing.T, ch chan labeledReply) labeledReply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
		return labeledReply{}
	}
}

// The three shapes of a labeled response reach the sender's Reply: one line (the echo or an error
// numeric), ACK, and a labeled-response batch; a refusal is a ServerRefusal, the rest nil.
func TestLabeledResponses(t *testing.T) {
	c, fc := labeledClient(t)

	label, got := sendLabeled(t, c, fc, "echoed")
	fc.send("@label=" + label + ";msgid=m1 :bridge!u@h PRIVMSG #a echoed")
	if r := waitReply(t, got); r.err != nil || len(r.lines) != 1 || ReplyError(r.lines) != nil {
		t.Fatalf("echo: %+v", r)
	}

	label, got = sendLabeled(t, c, fc, "acked")
	fc.send("@label=" + label + " :irc.test ACK")
	if r := waitReply(t, got); r.err != nil || ReplyError(r.lines) != nil {
		t.Fatalf("ACK: %+v", r)
	}

	label, got = sendLabeled(t, c, fc, "refused")
	fc.send("@label=" + label + " :irc.test 404 bridge #a :Cannot send to channel (+m)")
	r := waitReply(t, got)
	var refusal *ServerRefusal
	if err := ReplyError(r.lines); !errors.As(err, &refusal) || refusal.Command != "404" || refusal.Text != "Cannot send to channel (+m)" {
		t.Fatalf("404: %+v -> %v", r, err)
	}

	label, got = sendLabeled(t, c, fc, "batched")
	fc.send("@label=" + label + " :irc.test BATCH +b1 labeled-response")
	fc.send("@batch=b1 :irc.test NOTICE bridge :first")
	fc.send("@batch=b1 :irc.test FAIL PRIVMSG SOME_REASON :no such luck")
	select {
	case r := <-got:
		t.Fatalf("reply before the batch ended: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	fc.send(":irc.test BATCH -b1")
	r = waitReply(t, got)
	if len(r.lines) != 2 || !errors.As(ReplyError(r.lines), &refusal) || refusal.Command != "FAIL" {
		t.Fatalf("batch: %+v", r)
	}

	// A line the server never answers is unconfirmed once the connection ends.
	_, got = sendLabeled(t, c, fc, "lost")
	fc.send("ERROR :Closing link")
	_ = fc.conn.Close()
	if r := waitReply(t, got); !errors.Is(r.err, ErrUnconfirmed) {
		t.Fatalf("after disconnect: %+v", r)
	}
}

// Without labeled-response the line goes out as it is and Reply is never called.
func TestNoLabelWithoutTheCap(t *testing.T) {
	srv := newFakeServer(t)
	c, fc, _ := connectedClient(t, srv, testConfig(srv))
	called := make(chan struct{}, 1)
	if err := c.SendWith(SendOptions{Reply: func([]*ircmsg.Message, error) { called <- struct{}{} }}, "PRIVMSG", "#a", "plain line"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #a :plain line")
	select {
	case <-called:
		t.Fatal("Reply called without labeled-response")
	case <-time.After(100 * time.Millisecond):
	}
}

// Lines still queued when the connection ends go back to their senders (Unsent), in order, and
// are never reported as unconfirmed: the sender sends them again. A line that was written and not
// answered is still unconfirmed.
func TestUnsentLinesGoBackToTheirSenders(t *testing.T) {
	c, fc := labeledClientWith(t, func(cfg *Config) { cfg.Flood = FloodConfig{Burst: 1, LinesPerSecond: 0.1} }, newRecHandler())
	var mu sync.Mutex
	var unsent []int
	replies := make(chan error, 10)
	for i := 0; i < 4; i++ {
		err := c.SendWith(SendOptions{
			Reply:  func(_ []*ircmsg.Message, err error) { replies <- err },
			Unsent: func() { mu.Lock(); unsent = append(unsent, i); mu.Unlock() },
		}, "PRIVMSG", "#a", fmt.Sprintf("line %d", i))
		if err != nil {
			t.Fatal(err)
		}
	}
	fc.expectMessage("PRIVMSG", "#a", "line 0") // the burst; the rest wait for tokens
	_ = fc.conn.Close()
	select {
	case err := <-replies:
		if !errors.Is(err, ErrUnconfirmed) {
			t.Fatalf("the written line's reply: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the written, unanswered line was not reported unconfirmed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := fmt.Sprint(unsent)
		mu.Unlock()
		if got == "[1 2 3]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unsent lines reported: %s, want [1 2 3]", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-replies:
		t.Fatalf("an unsent line's reply was called too: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}
