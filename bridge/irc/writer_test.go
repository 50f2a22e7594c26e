package irc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSendRejectsUnsafeLines(t *testing.T) {
	srv := newFakeServer(t)
	c, fc, _ := connectedClient(t, srv, testConfig(srv))
	long := strings.Repeat("x", 600)
	for _, tc := range []struct {
		name string
		send func() error
		want error
	}{
		{"CR in text", func() error { return c.Send("PRIVMSG", "#a", "hi\rQUIT :pwned") }, ErrUnsafeParam},
		{"LF in text", func() error { return c.Send("PRIVMSG", "#a", "hi\nQUIT") }, ErrUnsafeParam},
		{"CRLF in text", func() error { return c.Send("PRIVMSG", "#a", "hi\r\nJOIN #x") }, ErrUnsafeParam},
		{"NUL in text", func() error { return c.Send("PRIVMSG", "#a", "a\x00b") }, ErrUnsafeParam},
		{"LF in target", func() error { return c.Send("JOIN", "#a\nPRIVMSG #b :x") }, ErrUnsafeParam},
		{"space in middle param", func() error { return c.Send("PRIVMSG", "#a b", "text") }, ErrUnsafeParam},
		{"colon middle param", func() error { return c.Send("PRIVMSG", ":x", "text") }, ErrUnsafeParam},
		{"empty middle param", func() error { return c.Send("PRIVMSG", "", "text") }, ErrUnsafeParam},
		{"bad command", func() error { return c.Send("PRIV MSG", "#a", "x") }, ErrUnsafeParam},
		{"CR in command", func() error { return c.Send("PRIVMSG\r", "#a", "x") }, ErrUnsafeParam},
		{"empty command", func() error { return c.Send("", "#a") }, ErrUnsafeParam},
		{"CR in priority", func() error { return c.SendPriority("PONG", "a\rb") }, ErrUnsafeParam},
		{"too long", func() error { return c.Send("PRIVMSG", "#a", long) }, ErrLineTooLong},
		{"513 bytes", func() error {
			return c.Send("PRIVMSG", "#a", "a "+strings.Repeat("x", 512-len("PRIVMSG #a :a \r\n")+1))
		}, ErrLineTooLong},
		{"bad tag name", func() error { return c.SendTagged(map[string]string{"bad tag": "x"}, "TAGMSG", "#a") }, ErrUnsafeParam},
		{"NUL in tag value", func() error { return c.SendTagged(map[string]string{"+reply": "a\x00"}, "TAGMSG", "#a") }, ErrUnsafeParam},
		{"tags too long", func() error { return c.SendTagged(map[string]string{"+x": strings.Repeat("y", 9000)}, "TAGMSG", "#a") }, ErrLineTooLong},
	} {
		if err := tc.send(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	fc.expectNothing()

	// Exactly 512 bytes is fine; tag values with CR/LF are escaped.
	max := "a " + strings.Repeat("x", 512-len("PRIVMSG #a :a \r\n"))
	if err := c.Send("PRIVMSG", "#a", max); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #a :" + max)
	if err := c.SendTagged(map[string]string{"+draft/reply": "a b;c\r\nd"}, "PRIVMSG", "#a", ":) hi"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw(`@+draft/reply=a\sb\:c\r\nd PRIVMSG #a ::) hi`)
}

func TestCheckLine(t *testing.T) {
	for _, bad := range []string{
		"", "\r\n", "PRIVMSG #a :x", "PRIVMSG #a :x\n", "PRIVMSG #a :x\ry\r\n", "PRIVMSG #a :x\ny\r\n",
		"PRIVMSG #a :\x00\r\n", "@tag PRIVMSG\r\n\r\n", "PRIVMSG #a :" + strings.Repeat("x", 600) + "\r\n",
	} {
		if checkLine([]byte(bad)) == nil {
			t.Errorf("checkLine(%q) accepted", bad)
		}
	}
	if err := checkLine([]byte("@a=b PRIVMSG #a :x\r\n")); err != nil {
		t.Error(err)
	}
}

func TestNotConnected(t *testing.T) {
	c := New(Config{Addr: "127.0.0.1:1", Nick: "n"}, newRecHandler(), testLogger(t))
	if err := c.Send("PRIVMSG", "#a", "x"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("got %v", err)
	}
	// Validation comes first.
	if err := c.Send("PRIVMSG", "#a", "x\n"); !errors.Is(err, ErrUnsafeParam) {
		t.Fatalf("got %v", err)
	}
}

func TestFloodControl(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.Flood = FloodConfig{Burst: 3, LinesPerSecond: 20}
	c, fc, _ := connectedClient(t, srv, cfg)
	start := time.Now()
	const n = 9
	for i := 0; i < n; i++ {
		if err := c.Send("PRIVMSG", "#a", "line"); err != nil {
			t.Fatal(err)
		}
	}
	var at []time.Duration
	for i := 0; i < n; i++ {
		fc.expectRaw("PRIVMSG #a line")
		at = append(at, time.Since(start))
	}
	// The burst goes out at once, then one line every 50ms.
	if at[2] > 40*time.Millisecond {
		t.Fatalf("burst took %v", at[2])
	}
	if at[3] < 30*time.Millisecond {
		t.Fatalf("fourth line after %v, should wait for a token", at[3])
	}
	// 6 paced lines at 20/s take 300ms.
	if at[n-1] < 250*time.Millisecond || at[n-1] > 2*time.Second {
		t.Fatalf("%d lines took %v", n, at[n-1])
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(FloodConfig{Burst: 5, LinesPerSecond: 2}, now)
	for i := 0; i < 5; i++ {
		if d := b.take(now); d != 0 {
			t.Fatalf("burst line %d waited %v", i, d)
		}
	}
	if d := b.take(now); d != 500*time.Millisecond {
		t.Fatalf("wait %v", d)
	}
	now = now.Add(500 * time.Millisecond)
	if d := b.take(now); d != 0 {
		t.Fatalf("after refill waited %v", d)
	}
	// A long idle period refills only up to the burst.
	now = now.Add(time.Hour)
	for i := 0; i < 5; i++ {
		if d := b.take(now); d != 0 {
			t.Fatalf("burst line %d waited %v", i, d)
		}
	}
	if d := b.take(now); d == 0 {
		t.Fatal("bucket over burst")
	}
}

func TestSendPriorityJumpsQueue(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.Flood = FloodConfig{Burst: 1, LinesPerSecond: 5}
	c, fc, _ := connectedClient(t, srv, cfg)
	for i := 0; i < 3; i++ {
		if err := c.Send("PRIVMSG", "#a", "queued"); err != nil {
			t.Fatal(err)
		}
	}
	fc.expectRaw("PRIVMSG #a queued")
	start := time.Now()
	if err := c.SendPriority("NOTICE", "#a", "urgent"); err != nil {
		t.Fatal(err)
	}
	// PONG goes ahead through Send too.
	if err := c.Send("PONG", "tok"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("NOTICE #a urgent")
	fc.expectRaw("PONG tok")
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("priority line took %v", d)
	}
	fc.expectRaw("PRIVMSG #a queued")
	fc.expectRaw("PRIVMSG #a queued")
}

func TestMaxTextBytes(t *testing.T) {
	srv := newFakeServer(t)
	c := New(testConfig(srv), newRecHandler(), testLogger(t))
	defer c.Close()
	// Unknown user@host: 10-byte user, 63-byte host.
	want := 512 - len(":bridge!"+strings.Repeat("u", 10)+"@"+strings.Repeat("h", 63)+" PRIVMSG #chan :\r\n")
	if got := c.MaxTextBytes("PRIVMSG", "#chan"); got != want {
		t.Fatalf("unknown host: got %d want %d", got, want)
	}
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.registerNoCapsAfterOpening("bridge") // 001 says bridge!user@host.example
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	check := func(prefix string) {
		t.Helper()
		want := 512 - len(prefix+" PRIVMSG #chan :\r\n")
		got := c.MaxTextBytes("PRIVMSG", "#chan")
		if got != want {
			t.Fatalf("%s: got %d want %d", prefix, got, want)
		}
		// The relayed line is exactly 512 bytes at the limit.
		// A space forces the trailing ':' that servers relay.
		if err := c.Send("PRIVMSG", "#chan", " "+strings.Repeat("x", got-1)); err != nil {
			t.Fatal(err)
		}
		line := fc.readRaw()
		relayed := prefix + " " + line + "\r\n"
		if len(relayed) != 512 {
			t.Fatalf("relayed line is %d bytes", len(relayed))
		}
	}
	check(":bridge!user@host.example")
	// Host from RPL_HOSTHIDDEN.
	fc.send(":irc.test 396 bridge some.very.long.cloak.example :is now your displayed host")
	fc.barrier()
	check(":bridge!user@some.very.long.cloak.example")
	// user@host from our own JOIN echo.
	fc.send(":bridge!~bridge@10.0.0.1 JOIN #chan")
	fc.barrier()
	check(":bridge!~bridge@10.0.0.1")
	// CHGHOST.
	fc.send(":bridge!~bridge@10.0.0.1 CHGHOST newu new.host")
	fc.barrier()
	check(":bridge!newu@new.host")
	// WHO reply.
	fc.send(":irc.test 352 bridge #chan whou who.host irc.test bridge H :0 Real")
	fc.barrier()
	check(":bridge!whou@who.host")
	if c.MaxTextBytes("PRIVMSG", strings.Repeat("#", 600)) != 0 {
		t.Fatal("negative budget not clamped")
	}
}

// SendWith's Written callback runs once the line is written, and not for a line the connection never sent.
func TestSendWithCallsBackAfterTheWrite(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.Flood = FloodConfig{LinesPerSecond: 1, Burst: 1}
	c, fc, _ := connectedClient(t, srv, cfg)
	written := make(chan string, 2)
	for _, text := range []string{"first", "second"} {
		if err := c.SendWith(SendOptions{Written: func() { written <- text }}, "PRIVMSG", "#a", text); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-written:
		if got != "first" {
			t.Fatalf("first callback was for %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback for the first line")
	}
	fc.expectRaw("PRIVMSG #a first")
	// The second line waits for a token; close before it goes out.
	select {
	case got := <-written:
		t.Fatalf("callback for %q before its line was written", got)
	case <-time.After(100 * time.Millisecond):
	}
	_ = c.Close()
	select {
	case got := <-written:
		t.Fatalf("callback for %q, a line the connection never sent", got)
	case <-time.After(1500 * time.Millisecond):
	}
}

// An idle connection holds no writer goroutine; a line starts one, and paced lines keep it until
// they are written.
func TestWriterRunsOnlyWithLines(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.Flood = FloodConfig{Burst: 1, LinesPerSecond: 20}
	c, fc, _ := connectedClient(t, srv, cfg)
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	running := func() bool {
		s.writer.mu.Lock()
		defer s.writer.mu.Unlock()
		return s.writer.running
	}
	idle := func() {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); running(); {
			if time.Now().After(deadline) {
				t.Fatal("the writer still runs with nothing to write")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	idle()
	for i := 0; i < 3; i++ {
		if err := c.Send("PRIVMSG", "#a", "line"); err != nil {
			t.Fatal(err)
		}
	}
	if !running() {
		t.Fatal("paced lines wait with no writer")
	}
	for i := 0; i < 3; i++ {
		fc.expectRaw("PRIVMSG #a line")
	}
	idle()
	// A new line after the writer ended goes out.
	if err := c.SendPriority("PING", "x"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PING x")
}
