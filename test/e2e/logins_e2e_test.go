//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// loginScene is what the login stories need from the main story: alice's management room and a
// way to talk to the bot there.
type loginScene struct {
	ircd    *stack.IRC
	mx      *mxclient.Client
	userID  string
	tag     string
	bob     *ircUser
	command func(t *testing.T, text string)
	// botSaysFrom waits for a bot message in the management room containing substr, among the
	// events from index from on, and returns its body.
	botSaysFrom func(t *testing.T, from int, substr string) string
	// dbContains lists where secret is readable in the bridge database.
	dbContains func(secret string) []string
}

// certFPStory: `login certfp` makes a client certificate, adds it to alice's Anope account over a
// connection logged in with her password (NickServ CERT ADD), and from then on the login connects
// with SASL EXTERNAL; the password is not stored anywhere.
func certFPStory(t *testing.T, ctx context.Context, s loginScene) {
	nick := s.tag + "cfp"
	password := "cert-" + s.tag + "-Pw!42"
	must(t, s.ircd.RegisterAccount(ctx, nick, password))

	from := s.mx.EventCount()
	s.command(t, "login certfp testnet "+nick+" "+nick+" not-the-password")
	s.botSaysFrom(t, from, "rejected the SASL account name or password")

	from = s.mx.EventCount()
	s.command(t, "login certfp testnet "+nick+" "+nick+" "+password)
	done := s.botSaysFrom(t, from, "Connected to Test IRC as "+nick)
	if !strings.Contains(done, "client certificate (SHA-256 fingerprint") {
		t.Errorf("certfp login answer: %q", done)
	}
	// The connection is logged in to the account (WHOIS 330), which, with no password stored, only
	// the certificate can have done.
	seen := len(s.bob.messages())
	s.bob.send(t, "WHOIS", nick)
	s.bob.waitForAfter(t, seen, "WHOIS showing the account", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "330" && len(m.Params) > 2 && strings.EqualFold(m.Params[1], nick) && strings.EqualFold(m.Params[2], nick)
	})
	if hits := s.dbContains(password); len(hits) > 0 {
		t.Errorf("the certfp login's password is readable in the bridge database: %v", hits)
	}
	from = s.mx.EventCount()
	s.command(t, "certfp")
	fps := s.botSaysFrom(t, from, "SHA-256")
	if !strings.Contains(done, strings.Fields(strings.SplitN(fps, "SHA-256", 2)[1])[0]) {
		t.Errorf("certfp shows other fingerprints (%q) than the login did (%q)", fps, done)
	}
	from = s.mx.EventCount()
	s.command(t, "logout testnet:"+s.userID)
	s.botSaysFrom(t, from, "Logged out")
}

// userNetworkStory: with network.user_networks on (this run allows 127.0.0.2 and 127.0.0.3 on the
// IRC server's plain-text port, at most one such server per user), a user logs in to a server by
// its address; it becomes a network of its own with its own portals (the same IRC server as
// testnet, which is at 127.0.0.1, under another address). Hosts, ports and TLS outside
// the admin's rules are refused with the rule that refused them, and so is a second server.
func userNetworkStory(t *testing.T, ctx context.Context, s loginScene, cfg map[string]any, serverName, bobNick string) {
	port := s.ircd.Port
	for _, refused := range []struct{ server, says string }{
		{"irc.example.org", "does not allow connections to irc.example.org"},
		{"127.0.0.2:6697", "port 6697 is not allowed"},
		{"localhost", "is neither a network of this bridge"},
	} {
		from := s.mx.EventCount()
		s.command(t, "login nick "+refused.server+" "+s.tag+"un")
		s.botSaysFrom(t, from, refused.says)
	}

	nick := s.tag + "un"
	from := s.mx.EventCount()
	s.command(t, fmt.Sprintf("login nick irc://127.0.0.2:%d %s", port, nick))
	s.botSaysFrom(t, from, "Connected to 127.0.0.2 as "+nick)
	from = s.mx.EventCount()
	s.command(t, "networks")
	if list := s.botSaysFrom(t, from, "IRC networks on this bridge"); !strings.Contains(list, "`127.0.0.2` - a server of your choice") || !strings.Contains(list, "connect to a server of your choice") {
		t.Errorf("networks does not show the user network: %q", list)
	}
	from = s.mx.EventCount()
	s.command(t, fmt.Sprintf("login nick irc://127.0.0.3:%d %s2", port, nick))
	s.botSaysFrom(t, from, "the most this bridge allows")

	// Its channels are portals of their own, both ways.
	channel := "#un-" + s.tag
	s.bob.send(t, "JOIN", channel)
	s.command(t, "join "+channel)
	room := waitRoomNamed(t, s.mx, channel)
	s.bob.waitFor(t, "the user network login joining", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), nick) && strings.EqualFold(m.Params[0], channel)
	})
	s.bob.send(t, "PRIVMSG", channel, "hello user network")
	waitMessage(t, s.mx, room, ghostMXID(cfg, serverName, "127.0.0.2/"+bobNick), "hello user network")
	_, err := s.mx.Send(ctx, room, "m.text", "hello from matrix", "")
	must(t, err)
	s.bob.waitFor(t, "the user network login's line", waitLong, privmsgFrom(nick, channel, "hello from matrix"))
	s.bob.send(t, "PART", channel)

	from = s.mx.EventCount()
	s.command(t, "logout 127.0.0.2:"+s.userID)
	s.botSaysFrom(t, from, "Logged out")
}

// permissionsStory: bridge.permissions is enforced (this run: "*" relay, the homeserver's users
// user, @frank commands, @gina relay). A relay-level user's invite of the bot is refused; a
// commands-level user cannot log in; a user-level user cannot run an admin command.
func permissionsStory(t *testing.T, ctx context.Context, s loginScene, hsURL, dir, botMXID string) {
	gina, err := mxclient.New(ctx, filepath.Join(dir, "mxclient-gina.log"))
	must(t, err)
	defer gina.Close()
	_, _, err = gina.Login(ctx, hsURL, "gina", "gina-password", true)
	must(t, err)
	room, err := gina.CreateDM(ctx, botMXID)
	must(t, err)
	waitMembership(t, gina, room, botMXID, "leave") // the bot rejects the invite

	frank, err := mxclient.New(ctx, filepath.Join(dir, "mxclient-frank.log"))
	must(t, err)
	defer frank.Close()
	_, _, err = frank.Login(ctx, hsURL, "frank", "frank-password", true)
	must(t, err)
	mgmt, err := frank.CreateDM(ctx, botMXID)
	must(t, err)
	waitMembership(t, frank, mgmt, botMXID, "join")
	_, err = frank.Send(ctx, mgmt, "m.text", "login nick testnet "+s.tag+"frank", "")
	must(t, err)
	c, cancel := context.WithTimeout(ctx, waitLong)
	_, err = frank.WaitEvent(c, func(e mxclient.Event) bool {
		return e.RoomID == mgmt && e.Sender == botMXID && strings.Contains(e.Body(), "do not have permissions to log into")
	})
	cancel()
	if err != nil {
		t.Errorf("a commands-level user was not refused a login: %v", err)
	}

	from := s.mx.EventCount()
	s.command(t, "sudo @frank:localhost list-logins")
	s.botSaysFrom(t, from, "limited to bridge administrators")
}

// adminStory: a bridge admin (@admin) sees every login with `logins`, has alice's connection
// dropped and made again with `reconnect` (bob sees her quit and come back), and logs a login out
// with `logout-login`; `raw` sends a line of the admin's own over their own connection.
func adminStory(t *testing.T, ctx context.Context, s loginScene, hsURL, dir, botMXID, aliceNick, bobNick string) {
	admin, err := mxclient.New(ctx, filepath.Join(dir, "mxclient-admin.log"))
	must(t, err)
	defer admin.Close()
	adminID, _, err := admin.Login(ctx, hsURL, "admin", "admin-password", true)
	must(t, err)
	mgmt, err := admin.CreateDM(ctx, botMXID)
	must(t, err)
	waitMembership(t, admin, mgmt, botMXID, "join")
	say := func(command, want string) string {
		t.Helper()
		from := admin.EventCount()
		_, err := admin.Send(ctx, mgmt, "m.text", command, "")
		must(t, err)
		c, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		e, err := admin.WaitEventFrom(c, from, func(e mxclient.Event) bool {
			return e.RoomID == mgmt && e.Sender == botMXID && strings.Contains(e.Body(), want)
		})
		if err != nil {
			t.Fatalf("%s: the bot did not say %q: %v", command, want, err)
		}
		return e.Body()
	}
	aliceLogin := "testnet:" + s.userID
	table := say("logins", "IRC login(s)")
	if !strings.Contains(table, aliceLogin) || !strings.Contains(table, "connected") || !strings.Contains(table, s.userID) {
		t.Errorf("logins does not show alice's connected login:\n%s", table)
	}

	seen := len(s.bob.messages())
	say("reconnect "+aliceLogin, "Reconnecting")
	s.bob.waitForAfter(t, seen, "alice quitting", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "QUIT" && strings.EqualFold(m.Nick(), aliceNick)
	})
	s.bob.waitForAfter(t, seen, "alice back in the channel", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), aliceNick)
	})

	say("login nick testnet "+s.tag+"adm", "Connected to")
	// raw, for admins only, sends a line of their own over their own connection.
	seen = len(s.bob.messages())
	say("raw PRIVMSG "+bobNick+" :sent raw", "Sent.")
	s.bob.waitForAfter(t, seen, "the admin's raw line", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Nick(), s.tag+"adm") && len(m.Params) > 1 && m.Params[1] == "sent raw"
	})
	say("logout-login testnet:"+adminID, "out.")
	if table := say("logins "+adminID, "IRC login(s)"); strings.Contains(table, "testnet:"+adminID) {
		t.Errorf("the login is still listed after logout-login:\n%s", table)
	}
}
