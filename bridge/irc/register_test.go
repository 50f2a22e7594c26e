package irc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestRegistrationWithoutCaps(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	cfg := testConfig(srv)
	cfg.Username = "bridgeuser"
	cfg.RealName = "Sealbridge user"
	c := New(cfg, h, testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectMessage("CAP", "LS", "302")
	fc.expectMessage("NICK", "bridge")
	fc.expectMessage("USER", "bridgeuser", "0", "*", "Sealbridge user")
	// An old server: CAP is an unknown command.
	fc.send(":irc.test 421 * CAP :Unknown command")
	if c.Connected() {
		t.Fatal("connected before welcome")
	}
	if err := c.Send("PRIVMSG", "#a", "hi"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send during registration: %v", err)
	}
	fc.send(":irc.test 001 bridge2 :Welcome bridge2!bu@real.host")
	fc.send(":irc.test 005 bridge2 CASEMAPPING=ascii CHANTYPES=#& NETWORK=Test\\x20Net :are supported")
	fc.send(":irc.test 422 bridge2 :MOTD File is missing")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(t)
	defer c.Close()
	if !c.Connected() {
		t.Fatal("not connected")
	}
	if c.Nick() != "bridge2" {
		t.Fatalf("nick %q", c.Nick())
	}
	if u, host := c.UserHost(); u != "bu" || host != "real.host" {
		t.Fatalf("userhost %q %q", u, host)
	}
	is := c.ISupport()
	if is.CaseMapping != "ascii" || is.Network != "Test Net" || is.ChanTypes != "#&" {
		t.Fatalf("isupport %+v", is)
	}
	if c.HasCap("server-time") {
		t.Fatal("caps without CAP")
	}
	// Lines after registration reach OnMessage.
	fc.send(":nick!u@h PRIVMSG #chan :hello")
	m := h.waitMessage(t, "PRIVMSG")
	if m.msg.Params[1] != "hello" {
		t.Fatalf("%+v", m.msg)
	}
	// Sending works now.
	if err := c.Send("PRIVMSG", "#chan", "hi there"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw("PRIVMSG #chan :hi there")
}

func TestCapNegotiation(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	c := New(testConfig(srv), h, testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL server-time unknown-cap")
	fc.send(":irc.test CAP * LS * :draft/multiline=max-bytes=4096,max-lines=24 echo-message")
	fc.send(":irc.test CAP * LS :message-tags batch")
	req := fc.expectMessage("CAP", "REQ")
	got := strings.Fields(req.Params[1])
	want := []string{"server-time", "message-tags", "echo-message", "multi-prefix", "batch", "draft/multiline"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("REQ %q, want %q (no sasl without credentials, no unknown caps)", got, want)
	}
	// NAK refuses the whole request; the client retries one by one.
	fc.send(":irc.test CAP bridge NAK :" + req.Params[1])
	for _, name := range want {
		fc.expectMessage("CAP", "REQ", name)
	}
	for _, name := range want {
		if name == "echo-message" {
			fc.send(":irc.test CAP bridge NAK :echo-message")
		} else {
			fc.send(":irc.test CAP bridge ACK :" + name)
		}
	}
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range want {
		if c.HasCap(name) != (name != "echo-message") {
			t.Fatalf("HasCap(%s) = %v", name, c.HasCap(name))
		}
	}
	if v, _ := c.CapValue("draft/multiline"); v != "max-bytes=4096,max-lines=24" {
		t.Fatalf("multiline value %q", v)
	}

	// cap-notify after registration.
	fc.send(":irc.test CAP bridge NEW :away-notify foo")
	fc.expectMessage("CAP", "REQ", "away-notify")
	fc.send(":irc.test CAP bridge ACK :away-notify")
	fc.send(":irc.test CAP bridge DEL :server-time")
	fc.barrier()
	if !c.HasCap("away-notify") || c.HasCap("server-time") {
		t.Fatalf("away-notify %v server-time %v", c.HasCap("away-notify"), c.HasCap("server-time"))
	}
}

func saslConfig(srv *fakeServer) Config {
	cfg := testConfig(srv)
	cfg.SASLUser = "alice"
	cfg.SASLPassword = "s3cret pass"
	return cfg
}

func TestSASLPlainSuccess(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	c := New(saslConfig(srv), h, testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :sasl=PLAIN,EXTERNAL server-time")
	fc.expectMessage("CAP", "REQ", "sasl server-time")
	fc.send(":irc.test CAP bridge ACK :sasl server-time")
	fc.expectMessage("AUTHENTICATE", "PLAIN")
	fc.send("AUTHENTICATE +")
	m := fc.expectMessage("AUTHENTICATE")
	payload, err := base64.StdEncoding.DecodeString(m.Params[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(payload) != "\x00alice\x00s3cret pass" {
		t.Fatalf("payload %q", payload)
	}
	fc.send(":irc.test 900 bridge bridge!u@h alice :You are now logged in as alice")
	fc.send(":irc.test 903 bridge :SASL authentication successful")
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestSASLFailureIsFatalInRun(t *testing.T) {
	srv := newFakeServer(t)
	h := newRecHandler()
	c := New(saslConfig(srv), h, testLogger(t))
	defer c.Close()
	done := make(chan struct{})
	go func() { c.Run(context.Background()); close(done) }()
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :sasl")
	fc.expectMessage("CAP", "REQ", "sasl")
	fc.send(":irc.test CAP bridge ACK :sasl")
	fc.expectMessage("AUTHENTICATE", "PLAIN")
	fc.send("AUTHENTICATE +")
	fc.expectMessage("AUTHENTICATE")
	fc.send(":irc.test 904 bridge :SASL authentication failed")
	fc.expectClosed()
	d := h.waitDisconnected(t)
	if !errors.Is(d.err, ErrSASLFailed) || d.willRetry {
		t.Fatalf("got %+v", d)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
	}
	srv.expectNoConn(100 * time.Millisecond)
}

func TestSASLUnavailable(t *testing.T) {
	srv := newFakeServer(t)
	c := New(saslConfig(srv), newRecHandler(), testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :server-time")
	fc.expectMessage("CAP", "REQ", "server-time")
	fc.send(":irc.test CAP bridge ACK :server-time")
	if err := waitErr(t, res); !errors.Is(err, ErrSASLFailed) {
		t.Fatalf("got %v", err)
	}
	// Mechanism list without PLAIN.
	res = connectAsync(c)
	fc = srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :sasl=EXTERNAL")
	fc.expectMessage("CAP", "REQ", "sasl")
	fc.send(":irc.test CAP bridge ACK :sasl")
	if err := waitErr(t, res); !errors.Is(err, ErrSASLFailed) {
		t.Fatalf("got %v", err)
	}
}

func TestNickInUse(t *testing.T) {
	srv := newFakeServer(t)
	c := New(testConfig(srv), newRecHandler(), testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test 433 * bridge :Nickname is already in use")
	if err := waitErr(t, res); !errors.Is(err, ErrNickInUse) {
		t.Fatalf("got %v", err)
	}
	fc.expectMessage("QUIT")
}

func TestNickFallback(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.NickFallback = true
	c := New(cfg, newRecHandler(), testLogger(t))
	defer c.Close()
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test 433 * bridge :Nickname is already in use")
	fc.expectMessage("NICK", "bridge_")
	fc.send(":irc.test 433 * bridge_ :Nickname is already in use")
	fc.expectMessage("NICK", "bridge__")
	fc.send(":irc.test CAP * LS :")
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge__")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	if c.Nick() != "bridge__" {
		t.Fatalf("nick %q", c.Nick())
	}
	// Our own NICK change is tracked, casemapping-insensitively.
	fc.send(":BRIDGE__!u@h NICK :newnick")
	fc.barrier()
	if c.Nick() != "newnick" {
		t.Fatalf("nick %q", c.Nick())
	}
	fc.send(":other!u@h NICK :other2")
	fc.barrier()
	if c.Nick() != "newnick" {
		t.Fatalf("nick %q", c.Nick())
	}

	// After three fallbacks it gives up.
	c2 := New(cfg, newRecHandler(), testLogger(t))
	res = connectAsync(c2)
	fc = srv.accept()
	fc.expectRegistration("bridge")
	for _, n := range []string{"bridge_", "bridge__", "bridge___"} {
		fc.send(":irc.test 433 * x :Nickname is already in use")
		fc.expectMessage("NICK", n)
	}
	fc.send(":irc.test 433 * x :Nickname is already in use")
	if err := waitErr(t, res); !errors.Is(err, ErrNickInUse) {
		t.Fatalf("got %v", err)
	}
}

func TestRegistrationErrors(t *testing.T) {
	for _, tc := range []struct {
		line string
		want error
	}{
		{":irc.test 464 * :Password incorrect", ErrBadPassword},
		{":irc.test 465 * :You are banned from this server", ErrBanned},
		{"ERROR :Closing Link: 127.0.0.1 (K-Lined: spam)", ErrBanned},
		{"ERROR :Closing Link: 127.0.0.1 (G-lined)", ErrBanned},
		{"ERROR :Closing Link: 127.0.0.1 (Server shutting down)", ErrServerError},
		{":irc.test 432 * bridge :Erroneous nickname", ErrErroneousNick},
	} {
		t.Run(tc.line, func(t *testing.T) {
			srv := newFakeServer(t)
			cfg := testConfig(srv)
			cfg.ServerPassword = "wrong"
			c := New(cfg, newRecHandler(), testLogger(t))
			res := connectAsync(c)
			fc := srv.accept()
			fc.expectMessage("PASS", "wrong")
			fc.expectRegistration("bridge")
			fc.send(tc.line)
			err := waitErr(t, res)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if IsFatal(err) != (tc.want != ErrServerError) {
				t.Fatalf("IsFatal(%v) = %v", err, IsFatal(err))
			}
			if c.Connected() {
				t.Fatal("connected")
			}
		})
	}
}

func TestPingDuringRegistration(t *testing.T) {
	srv := newFakeServer(t)
	c := New(testConfig(srv), newRecHandler(), testLogger(t))
	defer c.Close()
	res := connectAsync(c)
	fc := srv.accept()
	fc.send("PING :12345")
	fc.expectRegistration("bridge")
	fc.expectMessage("PONG", "12345")
	fc.registerNoCapsAfterOpening("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
}

func TestConnectTimeout(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.ConnectTimeout = 200 * time.Millisecond
	c := New(cfg, newRecHandler(), testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	if err := waitErr(t, res); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	// A cancelled context is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Connect(ctx); err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
}

func TestDialError(t *testing.T) {
	srv := newFakeServer(t)
	addr := srv.addr()
	_ = srv.ln.Close()
	cfg := testConfig(srv)
	cfg.Addr = addr
	c := New(cfg, newRecHandler(), testLogger(t))
	if err := c.Connect(context.Background()); err == nil || IsFatal(err) {
		t.Fatalf("got %v", err)
	}
}

// Without SASL, a NickServ password makes registration wait for IDENTIFY to be accepted (900);
// NickServ's refusal is ErrNickServFailed (fatal), and the password never reaches the trace log.
func TestNickServIdentify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		want   error
	}{
		{"accepted", ":irc.test 900 bridge bridge!u@h bridge :You are now logged in as bridge", nil},
		{"refused", ":NickServ!services@services.test NOTICE bridge :Password incorrect.", ErrNickServFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			cfg := testConfig(srv)
			cfg.NickServPassword = "s3cret pw"
			logged := &syncWriter{}
			c := New(cfg, newRecHandler(), zerolog.New(logged).Level(zerolog.TraceLevel))
			t.Cleanup(func() { _ = c.Close() })
			res := connectAsync(c)
			fc := srv.accept()
			fc.registerNoCaps("bridge")
			fc.expectMessage("WHOIS", "NickServ")
			fc.send(":irc.test 311 bridge NickServ services services.test * :Nickname Service")
			fc.send(":irc.test 313 bridge NickServ :is a Network Service")
			fc.send(":irc.test 318 bridge NickServ :End of /WHOIS list.")
			fc.expectMessage("PRIVMSG", "NickServ", "IDENTIFY bridge s3cret pw")
			fc.send(":bridge!u@h PRIVMSG NickServ :IDENTIFY bridge s3cret pw") // echo-message
			fc.send(":NickServ!services@services.test NOTICE bridge :This nickname is registered. Please identify.")
			select {
			case err := <-res:
				t.Fatalf("Connect returned before NickServ answered: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			fc.send(tc.answer)
			err := waitErr(t, res)
			if !errors.Is(err, tc.want) || (tc.want != nil && !IsFatal(err)) {
				t.Fatalf("Connect: %v, want %v", err, tc.want)
			}
			_ = c.Close()
			if strings.Contains(logged.String(), "s3cret") || !strings.Contains(logged.String(), "<redacted>") {
				t.Errorf("the trace log shows the NickServ password, or no redacted line: %s", logged.String())
			}
		})
	}
}

// syncWriter collects log output from the client's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// SASL EXTERNAL: the client presents its certificate in the TLS handshake, asks for EXTERNAL and
// answers the server's "+" with an empty response ("+"); nothing secret goes over the wire.
func TestSASLExternal(t *testing.T) {
	pool, serverCert := testCA(t)
	certDER, keyDER, err := NewClientCert("bridge")
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := ClientCert(certDER, keyDER)
	if err != nil {
		t.Fatal(err)
	}
	srv := newFakeServerTLS(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert})
	cfg := testConfig(srv)
	cfg.TLS = true
	cfg.TLSConfig = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}}
	cfg.SASLExternal = true
	c := New(cfg, newRecHandler(), testLogger(t))
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectRegistration("bridge")
	state := fc.conn.Conn.(*tls.Conn).ConnectionState()
	if len(state.PeerCertificates) != 1 {
		t.Fatalf("client presented %d certificates", len(state.PeerCertificates))
	}
	fp := CertFingerprints(state.PeerCertificates[0].Raw)
	if want := CertFingerprints(certDER); fp != want || len(fp.SHA256) != 64 {
		t.Fatalf("fingerprint on the wire %v, want %v", fp, want)
	}
	fc.send(":irc.test CAP * LS :sasl=PLAIN,EXTERNAL")
	fc.expectMessage("CAP", "REQ", "sasl")
	fc.send(":irc.test CAP bridge ACK :sasl")
	fc.expectMessage("AUTHENTICATE", "EXTERNAL")
	fc.send("AUTHENTICATE +")
	fc.expectMessage("AUTHENTICATE", "+")
	fc.send(":irc.test 900 bridge bridge!u@h alice :You are now logged in as alice")
	fc.send(":irc.test 903 bridge :SASL authentication successful")
	fc.expectMessage("CAP", "END")
	fc.welcome("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A server that offers only PLAIN cannot log a certificate in: fatal, not retried.
	c = New(cfg, newRecHandler(), testLogger(t))
	defer c.Close()
	res = connectAsync(c)
	fc = srv.accept()
	fc.expectRegistration("bridge")
	fc.send(":irc.test CAP * LS :sasl=PLAIN")
	fc.expectMessage("CAP", "REQ", "sasl")
	fc.send(":irc.test CAP bridge ACK :sasl")
	if err := waitErr(t, res); !errors.Is(err, ErrSASLFailed) || !IsFatal(err) {
		t.Fatalf("EXTERNAL not offered: got %v", err)
	}

	// Without TLS there is no certificate to present: refused before anything is sent.
	cfg.TLS = false
	if err := New(cfg, newRecHandler(), testLogger(t)).Connect(context.Background()); !errors.Is(err, ErrSASLFailed) {
		t.Fatalf("EXTERNAL over plain text: got %v", err)
	}
}

// The password goes only to a NickServ that is the network's service: on a network where a user
// holds the nick NickServ (or nobody does), nothing is sent and the login fails with the reason.
func TestNickServImpostorGetsNoPassword(t *testing.T) {
	for name, whois := range map[string][]string{
		"a user": {":irc.test 311 bridge NickServ ~evil evil.example.net * :not services",
			":irc.test 312 bridge NickServ irc.test :Test server", ":irc.test 318 bridge NickServ :End of /WHOIS list."},
		"nobody": {":irc.test 401 bridge NickServ :No such nick", ":irc.test 318 bridge NickServ :End of /WHOIS list."},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(t)
			cfg := testConfig(srv)
			cfg.NickServPassword = "s3cret"
			c := New(cfg, newRecHandler(), testLogger(t))
			t.Cleanup(func() { _ = c.Close() })
			res := connectAsync(c)
			fc := srv.accept()
			fc.registerNoCaps("bridge")
			fc.expectMessage("WHOIS", "NickServ")
			for _, l := range whois {
				fc.send(l)
			}
			err := waitErr(t, res)
			if !errors.Is(err, ErrNickServFailed) || !strings.Contains(err.Error(), "not a network service") {
				t.Fatalf("Connect: %v, want a refusal to identify", err)
			}
			_ = fc.conn.SetReadDeadline(time.Now().Add(testTimeout))
			for {
				raw, err := fc.conn.ReadLine()
				if err != nil {
					break // closed after QUIT
				}
				if strings.Contains(raw, "s3cret") {
					t.Fatalf("the password went out: %q", raw)
				}
			}
		})
	}
}

// WEBIRC opens the connection, before PASS and CAP, and never reaches the trace log.
func TestWebIRCComesFirst(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig(srv)
	cfg.ServerPassword = "serverpw"
	cfg.WebIRC = &WebIRC{Password: "gatewaypw", Gateway: "sealbridge", Hostname: "ab12cd34.users.example", IP: "fd00::1"}
	logged := &syncWriter{}
	c := New(cfg, newRecHandler(), zerolog.New(logged).Level(zerolog.TraceLevel))
	t.Cleanup(func() { _ = c.Close() })
	res := connectAsync(c)
	fc := srv.accept()
	fc.expectMessage("WEBIRC", "gatewaypw", "sealbridge", "ab12cd34.users.example", "fd00::1")
	fc.expectMessage("PASS", "serverpw")
	fc.registerNoCaps("bridge")
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "gatewaypw") {
		t.Errorf("the WEBIRC password reached the trace log")
	}
}
