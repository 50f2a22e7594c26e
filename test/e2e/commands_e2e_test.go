//go:build e2e

package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// commandsStory: the IRC commands a user reaches for, from the management room, over alice's own
// connection: whois, list, topic, nick (and back), invite, ignore and unignore.
func commandsStory(t *testing.T, ctx context.Context, s loginScene, channel, chanRoom, aliceNick, bobNick, bobMXID string) {
	run := func(command, want string) string {
		t.Helper()
		from := s.mx.EventCount()
		s.command(command)
		return s.botSaysFrom(from, want)
	}
	if who := run("whois "+bobNick, "**"+bobNick+"**"); !strings.Contains(strings.ToLower(who), strings.ToLower(channel)) {
		t.Errorf("whois %s does not name the channel they are in:\n%s", bobNick, who)
	}
	run("whois nobody"+s.tag, "not on IRC")
	if list := run("list", "channel(s)"); !strings.Contains(strings.ToLower(list), strings.ToLower(channel)) {
		t.Errorf("list does not show %s:\n%s", channel, list)
	}
	run("topic "+channel, channel)
	run("away at lunch", "You are away")
	if who := run("whois "+aliceNick, "**"+aliceNick+"**"); !strings.Contains(who, "away: at lunch") {
		t.Errorf("whois of alice after away does not show it:\n%s", who)
	}
	run("away", "You are back")

	seen := len(s.bob.messages())
	run("nick "+aliceNick+"x", "You are now "+aliceNick+"x")
	s.bob.waitForAfter(t, seen, "alice's nick change", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "NICK" && strings.EqualFold(m.Nick(), aliceNick)
	})
	run("nick "+bobNick, "is in use")
	run("nick "+aliceNick, "You are now "+aliceNick)

	other := "#inv2-" + s.tag
	s.command("join " + other)
	waitRoomNamed(t, s.mx, other)
	seen = len(s.bob.messages())
	run("invite "+bobNick+" "+other, "Inviting")
	s.bob.waitForAfter(t, seen, "alice's invite", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "INVITE" && strings.EqualFold(m.Nick(), aliceNick) && len(m.Params) > 1 && strings.EqualFold(m.Params[1], other)
	})

	// An ignored nick's private messages are not bridged (in a channel room other logins share,
	// they still bridge its lines: the Matrix client's own ignore hides those).
	run("ignore "+bobNick, "Ignoring")
	s.bob.send(t, "PRIVMSG", aliceNick, "ignored pm")
	run("unignore "+bobNick, "No longer ignoring")
	s.bob.send(t, "PRIVMSG", aliceNick, "after unignore")
	waitMessage(t, s.mx, "", bobMXID, "after unignore")
	for _, e := range s.mx.Events() {
		if strings.Contains(e.Body(), "ignored pm") {
			t.Errorf("a private message from an ignored nick was bridged: %q", e.Body())
		}
	}
}

// identityStory: how a network sees each login. On bindnet (bind_address 127.0.1.0/24,
// max_connections 1) alice connects from her own loopback address with the default real name, and
// dave is refused while she is on. On webnet (a WEBIRC gateway) alice shows a pseudonymous address.
// On identnet the server asks the bridge's identd (RFC 1413) for her username: it shows without
// the "~" InspIRCd puts before a username no identd vouched for.
func identityStory(t *testing.T, ctx context.Context, s loginScene, daveCommand func(string), daveSays func(int, string), daveEvents func() int) {
	whoisUser := func(nick string) (username, host, realname string) {
		t.Helper()
		seen := len(s.bob.messages())
		s.bob.send(t, "WHOIS", nick)
		m := s.bob.waitForAfter(t, seen, "WHOIS "+nick, waitLong, func(m *ircmsg.Message) bool {
			return m.Command == "311" && len(m.Params) > 5 && strings.EqualFold(m.Params[1], nick)
		})
		return m.Params[2], m.Params[3], m.Params[5]
	}
	whoisOf := func(nick string) (host, realname string) {
		t.Helper()
		_, host, realname = whoisUser(nick)
		return host, realname
	}
	nick := s.tag + "bnd"
	from := s.mx.EventCount()
	s.command("login nick bindnet " + nick)
	s.botSaysFrom(from, "Connected to bindnet")
	host, realname := whoisOf(nick)
	if !strings.HasPrefix(host, "127.0.1.") || realname != "Matrix user via sealbridge" {
		t.Errorf("on bindnet alice is %s (%q), want an address in 127.0.1.0/24 and the default real name", host, realname)
	}
	from = daveEvents()
	daveCommand("login nick bindnet " + s.tag + "dbnd")
	daveSays(from, "at most 1 connections")
	from = s.mx.EventCount()
	s.command("logout bindnet:" + s.userID)
	s.botSaysFrom(from, "Logged out")

	nick = s.tag + "web"
	from = s.mx.EventCount()
	s.command("login nick webnet " + nick)
	s.botSaysFrom(from, "Connected to webnet")
	// InspIRCd ignores the host a gateway names and shows the IP (which it would resolve with
	// resolvehostnames): the login's pseudonymous address out of the WEBIRC prefix.
	if host, _ := whoisOf(nick); !strings.HasPrefix(host, "fd00:5ea1:b41d:") && !strings.HasSuffix(host, ".users.sealbridge.invalid") {
		t.Errorf("through WEBIRC alice's host is %q, want her pseudonymous address or host", host)
	}
	from = s.mx.EventCount()
	s.command("logout webnet:" + s.userID)
	s.botSaysFrom(from, "Logged out")

	if os.Geteuid() != 0 {
		t.Log("identd: not root, port 113 unavailable; skipped")
		return
	}
	nick = s.tag + "idt"
	from = s.mx.EventCount()
	s.command("login nick identnet " + nick)
	s.botSaysFrom(from, "Connected to identnet")
	if username, host, _ := whoisUser(nick); !regexp.MustCompile(`^sb[0-9a-f]{8}$`).MatchString(username) || host != "127.0.2.1" {
		t.Errorf("on identnet alice is %s@%s, want the identd's answer sb<8 hex digits> (no ~) from 127.0.2.1", username, host)
	}
	from = s.mx.EventCount()
	s.command("logout identnet:" + s.userID)
	s.botSaysFrom(from, "Logged out")
}
