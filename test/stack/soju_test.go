//go:build e2e

package stack

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoju starts soju in front of InspIRCd, checks that it offers
// CHATHISTORY (CAP LS and ISUPPORT), that a client logging in as
// user/network over SASL PLAIN reaches the upstream network, sees a
// direct InspIRCd user's message, and that the message is in soju's
// history after a soju restart.
func TestSoju(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	irc, err := StartIRC(ctx, filepath.Join(dir, "irc"))
	if err != nil {
		t.Fatal(err)
	}
	defer irc.Stop()
	s, err := StartSoju(ctx, filepath.Join(dir, "soju"), irc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	login := func() (*ircConn, map[string]string) {
		t.Helper()
		c, err := dialIRC(ctx, s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		caps, err := c.capLS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"sasl", "draft/chathistory", "server-time", "batch"} {
			if _, ok := caps[want]; !ok {
				t.Errorf("soju CAP LS has no %s: %v", want, caps)
			}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%v\n%s", err, c.recent())
			}
		}
		must(c.send("CAP REQ :sasl draft/chathistory server-time batch message-tags"))
		_, err = c.until(ctx, func(m ircMsg) (bool, error) {
			return m.Command == "CAP" && len(m.Params) > 1 && m.Params[1] == "ACK", nil
		})
		must(err)
		must(c.send("AUTHENTICATE PLAIN"))
		plain := base64.StdEncoding.EncodeToString([]byte("\x00" + s.LoginName() + "\x00" + s.Password))
		must(c.send("AUTHENTICATE %s", plain))
		_, err = c.until(ctx, func(m ircMsg) (bool, error) { return m.Command == "903", nil })
		must(err)
		must(c.register(ctx, s.User, true))
		isupport := map[string]string{}
		_, err = c.until(ctx, func(m ircMsg) (bool, error) {
			if m.Command == "005" {
				for _, p := range m.Params[1 : len(m.Params)-1] {
					k, v, _ := strings.Cut(p, "=")
					isupport[k] = v
				}
			}
			return m.Command == "376" || m.Command == "422", nil
		})
		must(err)
		return c, isupport
	}

	c, isupport := login()
	if _, ok := isupport["CHATHISTORY"]; !ok {
		t.Errorf("no CHATHISTORY in soju's ISUPPORT: %v", isupport)
	}
	if got := isupport["NETWORK"]; got != irc.Network {
		t.Errorf("bound to network %q, want the upstream's %q", got, irc.Network)
	}
	if err := c.send("JOIN #sojutest"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) { return m.Command == "366", nil }); err != nil {
		t.Fatalf("join through soju: %v\n%s", err, c.recent())
	}

	direct, err := dialIRC(ctx, irc.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if err := direct.register(ctx, "sojupeer", false); err != nil {
		t.Fatal(err)
	}
	_ = direct.send("JOIN #sojutest")
	_ = direct.send("PRIVMSG #sojutest :hello through soju")
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
		return m.Command == "PRIVMSG" && m.Last() == "hello through soju", nil
	}); err != nil {
		t.Fatalf("message from InspIRCd not seen through soju: %v\n%s", err, c.recent())
	}
	c.Close()

	// History survives a restart and comes back with CHATHISTORY LATEST.
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitConnected(ctx, s.User); err != nil {
		t.Fatal(err)
	}
	c, _ = login()
	defer c.Close()
	if err := c.send("CHATHISTORY LATEST #sojutest * 10"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command == "FAIL" {
			t.Fatalf("CHATHISTORY failed: %s", m.Raw)
		}
		return m.Command == "PRIVMSG" && m.Last() == "hello through soju", nil
	}); err != nil {
		t.Fatalf("CHATHISTORY after restart: %v\n%s", err, c.recent())
	}
}
