package irc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

func TestServerTime(t *testing.T) {
	srv := newFakeServer(t)
	_, fc, h := connectedClient(t, srv, testConfig(srv))
	fc.send("@time=2021-03-04T05:06:07.890Z;msgid=abc :nick!u@h PRIVMSG #chan :hello")
	m := h.waitMessage(t, "PRIVMSG")
	want := time.Date(2021, 3, 4, 5, 6, 7, 890e6, time.UTC)
	if !m.at.Equal(want) {
		t.Fatalf("at %v, want %v", m.at, want)
	}
	if ok, id := m.msg.GetTag("msgid"); !ok || id != "abc" {
		t.Fatal("msgid tag lost")
	}
	before := time.Now()
	fc.send("@time=garbage :nick!u@h PRIVMSG #chan :hello")
	m = h.waitMessage(t, "PRIVMSG")
	if m.at.Before(before) || time.Since(m.at) > time.Minute {
		t.Fatalf("fallback time %v", m.at)
	}
}

func TestPingAfterRegistrationAndOrder(t *testing.T) {
	srv := newFakeServer(t)
	_, fc, h := connectedClient(t, srv, testConfig(srv))
	fc.send(":a!u@h PRIVMSG #c :1")
	fc.send("PING :abc def")
	fc.expectRaw("PONG :abc def")
	fc.send(":a!u@h PRIVMSG #c :2")
	if m := h.waitMessage(t, "PRIVMSG"); m.msg.Params[1] != "1" {
		t.Fatal("order")
	}
	h.waitMessage(t, "PING")
	if m := h.waitMessage(t, "PRIVMSG"); m.msg.Params[1] != "2" {
		t.Fatal("order")
	}
	// Unparseable lines are skipped, not fatal.
	fc.send("@bad=\xff\xfe :a!u@h PRIVMSG #c :x")
	fc.send(":a!u@h PRIVMSG #c :3")
	if m := h.waitMessage(t, "PRIVMSG"); m.msg.Params[1] != "3" {
		t.Fatalf("got %q", m.msg.Params)
	}
}

func TestKeepalive(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.PingInterval = 100 * time.Millisecond
	c, fc, h := connectedClient(t, srv, cfg)
	// Idle: the client pings; a reply keeps the link up.
	m := fc.expectMessage("PING")
	fc.send(":irc.test PONG irc.test :" + m.Params[0])
	fc.expectMessage("PING")
	if !c.Connected() {
		t.Fatal("dropped despite PONG")
	}
	// No reply: the client drops the link and reports it (no Run: no retry).
	d := h.waitDisconnected(t)
	if !errors.Is(d.err, ErrPingTimeout) || d.willRetry {
		t.Fatalf("got %+v", d)
	}
	if c.Connected() {
		t.Fatal("still connected")
	}
}

func TestCloseSendsQuit(t *testing.T) {
	srv := newFakeServer(t)
	c, fc, h := connectedClient(t, srv, testConfig(srv))
	go func() {
		fc.expectMessage("QUIT")
		fc.send("ERROR :Closing Link")
		_ = fc.conn.Close()
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d := h.waitDisconnected(t)
	if d.err != nil || d.willRetry {
		t.Fatalf("got %+v", d)
	}
	if c.Connected() {
		t.Fatal("connected after Close")
	}
	if err := c.Connect(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if err := c.Send("PRIVMSG", "#a", "x"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestRunReconnects(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	cfg := testConfig(srv)
	c := New(cfg, h, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	fc := srv.accept()
	fc.registerNoCaps("bridge")
	h.waitConnected(t)
	if err := c.Send("PRIVMSG", "#a", "one"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #a one")

	// The server drops us.
	start := time.Now()
	fc.send("ERROR :Closing Link: (Ping timeout)")
	_ = fc.conn.Close()
	d := h.waitDisconnected(t)
	if !d.willRetry || !errors.Is(d.err, ErrServerError) {
		t.Fatalf("got %+v", d)
	}
	// Reconnects use nick fallback.
	fc = srv.accept()
	if time.Since(start) < cfg.Backoff.Min {
		t.Fatalf("reconnected after %v, before Backoff.Min", time.Since(start))
	}
	fc.expectRegistration("bridge")
	fc.send(":irc.test 433 * bridge :Nickname is already in use")
	fc.expectMessage("NICK", "bridge_")
	fc.registerNoCapsAfterOpening("bridge_")
	h.waitConnected(t)
	if c.Nick() != "bridge_" {
		t.Fatalf("nick %q", c.Nick())
	}
	if err := c.Send("PRIVMSG", "#a", "two"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #a two")

	// A failed attempt is reported and retried too.
	fc = dropAndAccept(t, srv, fc, h)
	fc.expectRegistration("bridge")
	_ = fc.conn.Close()
	if d := h.waitDisconnected(t); !d.willRetry || d.err == nil {
		t.Fatalf("got %+v", d)
	}
	fc = srv.accept()
	fc.registerNoCaps("bridge")
	h.waitConnected(t)

	// Cancelling the context stops Run politely.
	closeOnQuit(fc)
	cancel()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
	}
	if d := h.waitDisconnected(t); d.willRetry || d.err != nil {
		t.Fatalf("got %+v", d)
	}
	srv.expectNoConn(100 * time.Millisecond)
}

// Start runs the loop of Run in the background with no goroutine of its own while connected, and
// reconnects from the ended connection's reader.
func TestStartHoldsNoGoroutineWhileConnected(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	c := New(testConfig(srv), h, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	fc := srv.accept()
	fc.registerNoCaps("bridge")
	h.waitConnected(t)
	loopWaits := func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		return strings.Contains(b.String(), "irc.(*Client).runLoop") || strings.Contains(b.String(), "irc.(*Client).Run+")
	}
	deadline := time.Now().Add(testTimeout)
	for loopWaits() {
		if time.Now().After(deadline) {
			t.Fatal("a goroutine waits in the connection loop while connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !c.Running() {
		t.Fatal("not running while connected")
	}

	fc = dropAndAccept(t, srv, fc, h)
	fc.registerNoCaps("bridge")
	h.waitConnected(t)

	closeOnQuit(fc)
	cancel()
	if d := h.waitDisconnected(t); d.willRetry || d.err != nil {
		t.Fatalf("got %+v", d)
	}
	for deadline := time.Now().Add(testTimeout); c.Running(); {
		if time.Now().After(deadline) {
			t.Fatal("still running after the context ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.expectNoConn(100 * time.Millisecond)
}

func TestRunStopsOnBan(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	c := New(testConfig(srv), h, testLogger(t))
	defer c.Close()
	done := make(chan struct{})
	go func() { c.Run(context.Background()); close(done) }()
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test 465 bridge :You are banned from this server- spam")
	d := h.waitDisconnected(t)
	if !errors.Is(d.err, ErrBanned) || d.willRetry {
		t.Fatalf("got %+v", d)
	}
	<-done
	srv.expectNoConn(100 * time.Millisecond)
}

func TestRunAfterConnectAndClose(t *testing.T) {
	srv := newFakeServer(t)
	c, fc, h := connectedClient(t, srv, testConfig(srv))
	done := make(chan struct{})
	go func() { c.Run(context.Background()); close(done) }()
	time.Sleep(20 * time.Millisecond)
	srv.expectNoConn(50 * time.Millisecond) // Run adopts the connection
	closeOnQuit(fc)
	c.Close()
	<-done
	if d := h.waitDisconnected(t); d.willRetry || d.err != nil {
		t.Fatalf("got %+v", d)
	}
}

func TestBackoffDelay(t *testing.T) {
	cfg := BackoffConfig{Min: 2 * time.Second, Max: 5 * time.Minute}
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	for attempt, wantMax := range []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second} {
		if d := backoffDelay(cfg, attempt, lowest); d != cfg.Min {
			t.Fatalf("attempt %d lowest %v", attempt, d)
		}
		if d := backoffDelay(cfg, attempt, highest); d != wantMax {
			t.Fatalf("attempt %d highest %v, want %v", attempt, d, wantMax)
		}
	}
	if d := backoffDelay(cfg, 100, highest); d != cfg.Max {
		t.Fatalf("capped %v", d)
	}
	// Real randomness stays within [Min, Max] and is spread out.
	seen := map[time.Duration]bool{}
	for i := 0; i < 1000; i++ {
		for _, attempt := range []int{0, 1, 5, 20, 1000} {
			d := backoffDelay(cfg, attempt, nil)
			if d < cfg.Min || d > cfg.Max {
				t.Fatalf("attempt %d: %v out of bounds", attempt, d)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays", len(seen))
	}
	// The first retry is spread too, so logins dropped together do not all come back at Min.
	first := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		first[backoffDelay(cfg, 0, nil)] = true
	}
	if len(first) < 50 {
		t.Fatalf("the first retry takes only %d distinct delays", len(first))
	}
	if d := backoffDelay(BackoffConfig{Min: time.Second, Max: time.Second}, 3, nil); d != time.Second {
		t.Fatalf("min == max: %v", d)
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 and localhost.
func testCA(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sealbridge test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "irc.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLS(t *testing.T) {
	pool, cert := testCA(t)
	srv := newFakeServerTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	cfg := testConfig(srv)
	cfg.TLS = true
	cfg.TLSConfig = &tls.Config{RootCAs: pool}
	c, fc, _ := connectedClient(t, srv, cfg)
	if err := c.Send("PRIVMSG", "#a", "over TLS"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #a :over TLS")
	if cfg.TLSConfig.ServerName != "" {
		t.Fatal("caller's TLSConfig was modified")
	}

	// Without the CA the handshake fails and nothing is registered.
	cfg.TLSConfig = nil
	c2 := New(cfg, newRecHandler(), testLogger(t))
	go func() {
		if fc, ok := <-srv.conns; ok {
			// Drive the server side of the handshake so the client sees the
			// certificate and rejects it.
			_ = fc.conn.Conn.(*tls.Conn).Handshake()
			_ = fc.conn.Close()
		}
	}()
	err := c2.Connect(context.Background())
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("got %v", err)
	}
	if IsFatal(err) {
		t.Fatal("TLS error should not be fatal")
	}
}

// Run asks Pace before every connection attempt, the first included, and stops when Pace fails.
func TestRunPacesConnections(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	cfg := testConfig(srv)
	paced := make(chan struct{}, 10)
	release := make(chan struct{})
	cfg.Pace = func(ctx context.Context) error {
		paced <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := New(cfg, h, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	<-paced
	srv.expectNoConn(100 * time.Millisecond) // held by the pacer: no dial yet
	release <- struct{}{}
	fc := srv.accept()
	fc.registerNoCaps("bridge")
	h.waitConnected(t)
	fc.send("ERROR :Closing Link: (Ping timeout)")
	_ = fc.conn.Close()
	h.waitDisconnected(t)
	select {
	case <-paced: // the reconnect asks the pacer again
	case <-time.After(10 * time.Second):
		t.Fatal("reconnect did not go through Pace")
	}
	cancel() // Pace returns ctx's error: Run stops without dialing
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop while waiting in Pace")
	}
}

// Close ends a connection attempt at once, with ErrClosed, however long the connect timeout:
// while it dials (a connect or TLS handshake that hangs) and while it registers.
func TestCloseAbortsAConnectionAttempt(t *testing.T) {
	t.Run("dialing", func(t *testing.T) {
		dialing := make(chan struct{})
		cfg := Config{Addr: "192.0.2.1:6667", Nick: "bridge", ConnectTimeout: time.Hour,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				close(dialing)
				<-ctx.Done()
				return nil, ctx.Err()
			}}
		c := New(cfg, newRecHandler(), testLogger(t))
		result := connectAsync(c)
		<-dialing
		expectClosedAttempt(t, c, result)
	})
	t.Run("registering", func(t *testing.T) {
		srv := newFakeServer(t)
		cfg := testConfig(srv)
		cfg.ConnectTimeout = time.Hour
		c := New(cfg, newRecHandler(), testLogger(t))
		result := connectAsync(c)
		srv.accept().expectMessage("CAP") // the server never answers
		expectClosedAttempt(t, c, result)
	})
}

// expectClosedAttempt closes c and expects its Connect (result) to end with ErrClosed.
func expectClosedAttempt(t *testing.T, c *Client, result chan error) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Connect ended with %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Connect still waiting after Close")
	}
}
