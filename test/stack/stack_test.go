//go:build e2e

package stack

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	sbirc "github.com/sealbridge/sealbridge/bridge/irc"
)

// TestStack starts Dendrite, InspIRCd+Anope and PostgreSQL side by side
// and checks each the way the end-to-end tests will use it.
func TestStack(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	// A dummy appservice registration, to check Dendrite accepts the file.
	regPath := filepath.Join(dir, "registration.yaml")
	reg := `id: stacktest
url: http://127.0.0.1:9
as_token: as-token-stacktest
hs_token: hs-token-stacktest
sender_localpart: stacktestbot
rate_limited: false
namespaces:
  users:
  - regex: '@stacktest_.*:localhost'
    exclusive: true
`
	if err := os.WriteFile(regPath, []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		wg   sync.WaitGroup
		d    *Dendrite
		irc  *IRC
		pg   *Postgres
		errs = make([]error, 3)
	)
	start := func(i int, name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			errs[i] = f()
			t.Logf("%s started in %v", name, time.Since(s).Round(time.Millisecond))
		}()
	}
	start(0, "Dendrite", func() (err error) {
		d, err = StartDendrite(ctx, filepath.Join(dir, "dendrite"), regPath)
		return err
	})
	start(1, "InspIRCd+Anope", func() (err error) {
		irc, err = StartIRC(ctx, filepath.Join(dir, "irc"))
		return err
	})
	start(2, "PostgreSQL", func() (err error) {
		pg, err = StartPostgres(ctx, filepath.Join(dir, "postgres"))
		return err
	})
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range []interface{ Stop() error }{d, irc, pg} {
			if s != nil {
				if err := s.Stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("IRC", func(t *testing.T) {
		if err := irc.RegisterAccount(ctx, "stackuser", "correct-horse"); err != nil {
			t.Fatal(err)
		}
		rawSASL(t, irc, "stackuser2", "stackuser", "correct-horse", "903")
		rawSASL(t, irc, "stackuser3", "stackuser", "wrong-password", "904")
		if err := irc.SASLPlain(ctx, true, "stackuser4", "stackuser", "correct-horse"); err != nil {
			t.Fatalf("SASL over TLS with CAFile: %v", err)
		}
		// CertFP: a fingerprint added with NickServ CERT ADD logs the certificate in with EXTERNAL.
		checkSASLExternal(t, irc, "stackuser", "correct-horse")
		// The operator block works (tests may need KILL, SAJOIN...).
		c, err := dialIRC(ctx, irc.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.register(ctx, "stackoper", false); err != nil {
			t.Fatal(err)
		}
		c.send("OPER %s %s", irc.OperName, irc.OperPassword)
		if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
			if m.Command == "491" || m.Command == "464" {
				return false, fmt.Errorf("OPER: %s", m.Raw)
			}
			return m.Command == "381", nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ManyClients", func(t *testing.T) {
		// Several clients from 127.0.0.1 at once, each flooding a channel:
		// no clone limit, no excess-flood disconnects, all lines arrive.
		const clients, lines = 12, 100
		var wg sync.WaitGroup
		errc := make(chan error, clients)
		conns := make([]*ircConn, clients)
		for n := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialIRC(ctx, irc.Addr(), nil)
				if err != nil {
					errc <- err
					return
				}
				conns[n] = c
				if err := c.register(ctx, fmt.Sprintf("flood%d", n), false); err != nil {
					errc <- err
					return
				}
				c.send("JOIN #flood")
				_, err = c.until(ctx, func(m ircMsg) (bool, error) { return m.Command == "366", nil })
				errc <- err
			}()
		}
		wg.Wait()
		for range conns {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for n, c := range conns[1:] {
			go func() {
				for i := 0; i < lines; i++ {
					c.send("PRIVMSG #flood :line %d from %d", i, n+1)
				}
			}()
		}
		got := 0
		if _, err := conns[0].until(ctx, func(m ircMsg) (bool, error) {
			if m.Command == "PRIVMSG" {
				got++
			}
			if m.Command == "QUIT" {
				return false, fmt.Errorf("a client quit: %s", m.Raw)
			}
			return got == (clients-1)*lines, nil
		}); err != nil {
			t.Fatalf("after %d lines: %v", got, err)
		}
	})

	t.Run("Dendrite", func(t *testing.T) {
		if err := d.RegisterUser(ctx, "alice", "alice-password", false); err != nil {
			t.Fatal(err)
		}
		token, err := d.Login(ctx, "alice", "alice-password")
		if err != nil {
			t.Fatal(err)
		}
		// Open registration through the client API works too.
		var reg struct {
			UserID string `json:"user_id"`
		}
		mx(t, d, "", "POST", "/_matrix/client/v3/register", map[string]any{
			"username": "bob", "password": "bob-password", "auth": map[string]string{"type": "m.login.dummy"},
		}, &reg)
		if reg.UserID != d.UserID("bob") {
			t.Fatalf("registered %q", reg.UserID)
		}
		// The appservice's bot exists (Dendrite registers sender_localpart).
		var who struct {
			UserID string `json:"user_id"`
		}
		mx(t, d, "as-token-stacktest", "GET", "/_matrix/client/v3/account/whoami", nil, &who)
		if who.UserID != d.UserID("stacktestbot") {
			t.Fatalf("appservice whoami: %q", who.UserID)
		}

		var room struct {
			RoomID string `json:"room_id"`
		}
		mx(t, d, token, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}, &room)
		for i, typ := range []string{"m.room.message", "m.room.encrypted", "m.room.encrypted"} {
			path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/%s/txn%d", url.PathEscape(room.RoomID), typ, i)
			mx(t, d, token, "PUT", path, map[string]any{"msgtype": "m.text", "body": "hi"}, nil)
		}
		counts, err := d.EventTypesInRoom(room.RoomID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("event types in %s: %v", room.RoomID, counts)
		if counts["m.room.create"] != 1 || counts["m.room.message"] != 1 || counts["m.room.encrypted"] != 2 {
			t.Fatalf("unexpected counts %v", counts)
		}
		if none, err := d.EventTypesInRoom("!unknown:localhost"); err != nil || len(none) != 0 {
			t.Fatalf("unknown room: %v %v", none, err)
		}
	})

	t.Run("Postgres", func(t *testing.T) {
		u, err := pg.CreateDatabase(ctx, "sealbridge_test")
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("postgres", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		var x int
		if err := db.QueryRowContext(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
			t.Fatalf("select: %d %v", x, err)
		}
	})

	t.Run("Restart", func(t *testing.T) {
		// Same directories again: accounts survive (documented behaviour).
		if err := irc.Stop(); err != nil {
			t.Fatal(err)
		}
		var err error
		if irc, err = StartIRC(ctx, irc.Dir); err != nil {
			t.Fatal(err)
		}
		if err := irc.SASLPlain(ctx, false, "stackuser5", "stackuser", "correct-horse"); err != nil {
			t.Fatalf("SASL after restart: %v", err)
		}
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		if d, err = StartDendrite(ctx, d.Dir, regPath); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Login(ctx, "alice", "alice-password"); err != nil {
			t.Fatalf("login after restart: %v", err)
		}
	})

	t.Run("Stop", func(t *testing.T) {
		for _, s := range []interface{ Stop() error }{d, irc, pg} {
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil { // twice is fine
				t.Fatal(err)
			}
		}
		if _, err := dialIRC(ctx, irc.Addr(), nil); err == nil {
			t.Fatal("IRC still accepts connections after Stop")
		}
		if _, err := http.Get(d.URL + "/_matrix/client/versions"); err == nil {
			t.Fatal("Dendrite still answers after Stop")
		}
		if _, err := os.Stat(pg.DataDir); !os.IsNotExist(err) {
			t.Fatalf("postgres data dir left behind: %v", err)
		}
	})
}

// rawSASL does CAP LS 302, CAP REQ :sasl, AUTHENTICATE PLAIN by hand and
// expects the numeric want (903 success, 904 failure).
func rawSASL(t *testing.T, irc *IRC, nick, account, password, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := dialIRC(ctx, irc.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step := func(send string, wantCmd string, wantIn string) ircMsg {
		t.Helper()
		if send != "" {
			if err := c.send("%s", send); err != nil {
				t.Fatal(err)
			}
		}
		m, err := c.until(ctx, func(m ircMsg) (bool, error) {
			return m.Command == wantCmd && strings.Contains(m.Raw, wantIn), nil
		})
		if err != nil {
			t.Fatalf("after %q waiting for %s: %v", send, wantCmd, err)
		}
		return m
	}
	ls := step("CAP LS 302", "CAP", "sasl=")
	if !strings.Contains(ls.Raw, "PLAIN") {
		t.Fatalf("no PLAIN mechanism: %s", ls.Raw)
	}
	step("CAP REQ :sasl", "CAP", "ACK")
	step("AUTHENTICATE PLAIN", "AUTHENTICATE", "+")
	payload := base64.StdEncoding.EncodeToString([]byte(account + "\x00" + account + "\x00" + password))
	got := step("AUTHENTICATE "+payload, want, "")
	t.Logf("%s", got.Raw)
	_ = c.send("QUIT")
}

// mx calls the client-server API and decodes the JSON answer into out.
func mx(t *testing.T, d *Dendrite, token, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, d.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// checkSASLExternal adds a new client certificate's fingerprint to account and connects with it
// through the bridge's engine, which must be logged in to account by SASL EXTERNAL.
func checkSASLExternal(t *testing.T, ircd *IRC, account, password string) {
	t.Helper()
	certDER, keyDER, err := sbirc.NewClientCert("stack-certfp")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sbirc.ClientCert(certDER, keyDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := ircd.AddCertFingerprint(t.Context(), account, password, cert); err != nil {
		t.Fatal(err)
	}
	tc, err := ircd.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	connect := func(tc *tls.Config) error {
		c := sbirc.New(sbirc.Config{Addr: ircd.TLSAddr(), TLS: true, TLSConfig: tc, Nick: "stackcertfp", SASLExternal: true}, nopHandler{}, zerolog.Nop())
		defer c.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return c.Connect(ctx)
	}
	tc.Certificates = []tls.Certificate{cert}
	if err := connect(tc); err != nil {
		t.Fatalf("SASL EXTERNAL with a registered fingerprint: %v", err)
	}
	other, otherKey, err := sbirc.NewClientCert("stack-unknown")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Certificates[0], err = sbirc.ClientCert(other, otherKey); err != nil {
		t.Fatal(err)
	}
	if err := connect(tc); !errors.Is(err, sbirc.ErrSASLFailed) {
		t.Fatalf("SASL EXTERNAL with an unknown certificate: got %v, want a SASL failure", err)
	}
}

type nopHandler struct{}

func (nopHandler) OnConnected(*sbirc.Client)                           {}
func (nopHandler) OnDisconnected(*sbirc.Client, error, bool)           {}
func (nopHandler) OnMessage(*sbirc.Client, *ircmsg.Message, time.Time) {}
