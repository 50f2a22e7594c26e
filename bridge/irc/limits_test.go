package irc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
)

// limitCounter records Config.Limited calls.
type limitCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *limitCounter) limited(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[what]++
}

func (l *limitCounter) get(what string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[what]
}

// quietHandler drops every line (the recHandler's channel would fill up under a flood).
type quietHandler struct{ connected chan struct{} }

func (h *quietHandler) OnConnected(*Client)                           { h.connected <- struct{}{} }
func (h *quietHandler) OnMessage(*Client, *ircmsg.Message, time.Time) {}
func (h *quietHandler) OnDisconnected(*Client, error, bool)           {}

// connectLimited starts connecting a client whose limits are counted and reads its opening lines;
// the test scripts the rest of the registration.
func connectLimited(t *testing.T) (*Client, chan error, *fakeConn, *limitCounter) {
	t.Helper()
	srv := newFakeServer(t)
	lim := &limitCounter{}
	cfg := testConfig(srv)
	cfg.Limited = lim.limited
	c := New(cfg, &quietHandler{connected: make(chan struct{}, 1)}, testLoggerDiscard())
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	return c, res, fc, lim
}

// A server that sends thousands of ISUPPORT tokens cannot grow what the connection keeps of them
// (every PRIVMSG used to copy them all); the tokens the engine reads still apply after the junk.
func TestISupportIsBounded(t *testing.T) {
	c, res, fc, lim := connectLimited(t)
	fc.send(":irc.test CAP * LS :")
	fc.expectMessage("CAP", "END")
	fc.send(":irc.test 001 bridge :Welcome")
	for i := 0; i < 500; i++ {
		var toks []string
		for j := 0; j < 12; j++ {
			toks = append(toks, fmt.Sprintf("JUNK%d_%d=%s", i, j, strings.Repeat("x", 20)))
		}
		fc.send(":irc.test 005 bridge " + strings.Join(toks, " ") + " :are supported")
	}
	fc.send(":irc.test 005 bridge CASEMAPPING=ascii PREFIX=(qov)~@+ :are supported")
	fc.send(":irc.test 376 bridge :End of /MOTD command.")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	is := c.ISupport()
	if len(is.Raw) > maxISupportTokens+len(engineToken) {
		t.Fatalf("kept %d ISUPPORT tokens, bound %d", len(is.Raw), maxISupportTokens+len(engineToken))
	}
	if is.CaseMapping != "ascii" || c.PrefixSymbols() != "~@+" {
		t.Fatalf("tokens after the junk not applied: casemapping %q prefix %q", is.CaseMapping, c.PrefixSymbols())
	}
	if got, want := lim.get(LimitISupport), 500*12-maxISupportTokens; got != want {
		t.Fatalf("Limited(isupport) called %d times, want %d", got, want)
	}
}

// A multi-line CAP LS of thousands of capabilities is bounded too.
func TestOfferedCapsAreBounded(t *testing.T) {
	c, res, fc, lim := connectLimited(t)
	for i := 0; i < 100; i++ {
		var caps []string
		for j := 0; j < 20; j++ {
			caps = append(caps, fmt.Sprintf("vendor.example/junk-%d-%d", i, j))
		}
		fc.send(":irc.test CAP * LS * :" + strings.Join(caps, " "))
	}
	fc.send(":irc.test CAP * LS :batch")
	fc.expectMessage("CAP", "REQ")
	fc.send(":irc.test CAP bridge ACK :batch")
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.mu.Lock()
	n := len(c.offered)
	c.mu.Unlock()
	if n > maxCaps+len(wantedCaps) {
		t.Fatalf("kept %d offered caps, bound %d", n, maxCaps+len(wantedCaps))
	}
	if lim.get(LimitISupport) == 0 {
		t.Fatal("the dropped caps were not reported")
	}
}

// A labeled-response batch of 5,000 lines keeps MaxBatchLines of them; a refusal at its end is
// still what the sender is told.
func TestLabeledBatchIsBounded(t *testing.T) {
	var lim limitCounter
	c, fc := labeledClientWith(t, func(cfg *Config) { cfg.MaxBatchLines, cfg.Limited = 50, lim.limited }, &quietHandler{connected: make(chan struct{}, 1)})

	label, got := sendLabeled(t, c, fc, "flooded")
	fc.send("@label=" + label + " :irc.test BATCH +b1 labeled-response")
	for i := 0; i < 5000; i++ {
		fc.send(fmt.Sprintf("@batch=b1 :irc.test NOTICE bridge :junk %d", i))
	}
	fc.send("@batch=b1 :irc.test 404 bridge #a :Cannot send to channel")
	fc.send(":irc.test BATCH -b1")
	r := waitReply(t, got)
	if len(r.lines) != 50 {
		t.Fatalf("kept %d lines, want 50", len(r.lines))
	}
	var refusal *ServerRefusal
	if !errors.As(ReplyError(r.lines), &refusal) || refusal.Command != "404" {
		t.Fatalf("the refusal after the bound was lost: %v", ReplyError(r.lines))
	}
	if n := lim.get(LimitBatch); n != 5000-50 {
		t.Fatalf("Limited(batch) called %d times, want %d", n, 5000-50)
	}
}

// A channel key, and anything said to a services bot, never reaches the trace log.
func TestChannelKeysAndServiceLinesAreNotTraced(t *testing.T) {
	srv := newFakeServer(t)
	logged := &syncWriter{}
	cfg := testConfig(srv)
	h := newRecHandler()
	c := New(cfg, h, zerolog.New(logged).Level(zerolog.TraceLevel))
	res := connectAsync(c)
	fc := srv.accept()
	fc.registerNoCaps("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, line := range [][]string{{"JOIN", "#secret", "ch4nkey"}, {"PRIVMSG", "NickServ", "IDENTIFY n1ckpass"}, {"PRIVMSG", "ChanServ", "ACCESS #c ADD x"}} {
		if err := c.Send(line[0], line[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send("JOIN", "#open"); err != nil {
		t.Fatal(err)
	}
	fc.expectMessage("JOIN", "#secret", "ch4nkey")
	fc.expectMessage("PRIVMSG", "NickServ")
	fc.expectMessage("PRIVMSG", "ChanServ")
	fc.expectMessage("JOIN", "#open")
	for _, secret := range []string{"ch4nkey", "n1ckpass", "ACCESS"} {
		if strings.Contains(logged.String(), secret) {
			t.Errorf("the trace log shows %q:\n%s", secret, logged.String())
		}
	}
	if !strings.Contains(logged.String(), "JOIN #open") {
		t.Errorf("an ordinary line is not traced:\n%s", logged.String())
	}
}
