//go:build e2e

package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// commandsStory: the IRC commands a user reaches for, from the management room, over alice's own
// connection: whois, list (paged), topic (shown and set), away, nick (and back), invite, mode
// (shown and set), ignore and unignore, and raw refused to a user who is no bridge admin. Then
// someone away: writing to them shows their away message in the private chat.
func commandsStory(t *testing.T, ctx context.Context, s loginScene, channel, chanRoom, aliceNick, bobNick, bobMXID string) {
	param := func(m *ircmsg.Message, i int) string {
		if i < len(m.Params) {
			return m.Params[i]
		}
		return ""
	}
	run := func(command, want string) string {
		t.Helper()
		from := s.mx.EventCount()
		s.command(t, command)
		return s.botSaysFrom(t, from, want)
	}
	if who := run("whois "+bobNick, "**"+bobNick+"**"); !strings.Contains(strings.ToLower(who), strings.ToLower(channel)) {
		t.Errorf("whois %s does not name the channel they are in:\n%s", bobNick, who)
	}
	run("whois nobody"+s.tag, "not on IRC")
	if list := run("list", "channel(s)"); !strings.Contains(strings.ToLower(list), strings.ToLower(channel)) {
		t.Errorf("list does not show %s:\n%s", channel, list)
	}
	run("list 99", "there is no page 99")
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
	// Someone takes alice's registered nick meanwhile: the services give it back (Anope's
	// RECOVER, after REGAIN, which Anope does not have) and rename the squatter.
	squatter := newIRCUser(t, ctx, s.ircd, aliceNick)
	seen = len(squatter.messages())
	run("nick "+aliceNick, "the network's services gave it back: you are now "+aliceNick)
	squatter.waitForAfter(t, seen, "the squatter renamed", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "NICK" && strings.EqualFold(m.Nick(), aliceNick)
	})

	other := "#inv2-" + s.tag
	s.command(t, "join "+other)
	waitRoomNamed(t, s.mx, other)
	seen = len(s.bob.messages())
	run("invite "+bobNick+" "+other, "Inviting")
	s.bob.waitForAfter(t, seen, "alice's invite", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "INVITE" && strings.EqualFold(m.Nick(), aliceNick) && len(m.Params) > 1 && strings.EqualFold(m.Params[1], other)
	})
	s.bob.send(t, "JOIN", other)
	s.bob.waitForAfter(t, seen, "bob in "+other, waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "366" && len(m.Params) > 1 && strings.EqualFold(m.Params[1], other)
	})

	// alice opened the channel, so she is its operator: she sets its topic and modes.
	seen = len(s.bob.messages())
	run("topic "+other+" set from the management room", "Setting the topic")
	s.bob.waitForAfter(t, seen, "alice's topic", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "TOPIC" && strings.EqualFold(m.Nick(), aliceNick) && param(m, 1) == "set from the management room"
	})
	if modes := run("mode "+other, "Modes of"); !strings.Contains(modes, "+") {
		t.Errorf("mode %s: %s", other, modes)
	}
	seen = len(s.bob.messages())
	run("mode "+other+" +m", "Sent `MODE")
	s.bob.waitForAfter(t, seen, "alice's mode change", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "MODE" && strings.EqualFold(m.Nick(), aliceNick) && param(m, 1) == "+m"
	})
	if modes := run("mode "+other, "Modes of"); !strings.Contains(modes, "m") {
		t.Errorf("after +m, mode %s: %s", other, modes)
	}
	run("raw PRIVMSG "+bobNick+" :not an admin", "limited to bridge administrators")

	// An ignored nick's private messages are not bridged (in a channel room other logins share,
	// they still bridge its lines: the Matrix client's own ignore hides those).
	run("ignore "+bobNick, "Ignoring")
	s.bob.send(t, "PRIVMSG", aliceNick, "ignored pm")
	run("unignore "+bobNick, "No longer ignoring")
	s.bob.send(t, "PRIVMSG", aliceNick, "after unignore")
	dm := waitMessage(t, s.mx, "", bobMXID, "after unignore").RoomID
	for _, e := range s.mx.Events() {
		if strings.Contains(e.Body(), "ignored pm") {
			t.Errorf("a private message from an ignored nick was bridged: %q", e.Body())
		}
	}

	// bob goes away: alice's next line to him brings his away message into their chat, once.
	seen = len(s.bob.messages())
	s.bob.send(t, "AWAY", "gone fishing")
	s.bob.waitForAfter(t, seen, "bob away", waitLong, func(m *ircmsg.Message) bool { return m.Command == "306" })
	from := s.mx.EventCount()
	for _, text := range []string{"are you there?", "hello?"} {
		_, err := s.mx.Send(ctx, dm, "m.text", text, "")
		must(t, err)
	}
	s.bob.waitForAfter(t, seen, "alice's second line", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && param(m, 1) == "hello?"
	})
	c, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	if _, err := s.mx.WaitEventFrom(c, from, func(e mxclient.Event) bool {
		return e.RoomID == dm && strings.Contains(e.Body(), bobNick+" is away: gone fishing")
	}); err != nil {
		t.Errorf("no away notice in the chat with bob: %v", err)
	}
	time.Sleep(time.Second) // the second line's RPL_AWAY, had it made a notice too
	notices := 0
	for _, e := range s.mx.Events()[from:] {
		if e.RoomID == dm && strings.Contains(e.Body(), "is away") {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d away notices for two lines to bob, want 1", notices)
	}
	s.bob.send(t, "AWAY")
}

// identityStory: how a network sees each login. On bindnet (bind_address 127.0.1.0/24,
// max_connections 1) alice connects from her own loopback address with the default real name, and
// dave is refused while she is on. On webnet (a WEBIRC gateway) alice shows a pseudonymous address.
// On identnet the server asks the bridge's identd (RFC 1413) for her username: it shows without
// the "~" InspIRCd puts before a username no identd vouched for.
func identityStory(t *testing.T, ctx context.Context, s loginScene, daveCommand func(*testing.T, string), daveSays func(*testing.T, int, string), daveEvents func() int) {
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
	s.command(t, "login nick bindnet "+nick)
	s.botSaysFrom(t, from, "Connected to bindnet")
	host, realname := whoisOf(nick)
	if !strings.HasPrefix(host, "127.0.1.") || realname != "Matrix user via sealbridge" {
		t.Errorf("on bindnet alice is %s (%q), want an address in 127.0.1.0/24 and the default real name", host, realname)
	}
	from = daveEvents()
	daveCommand(t, "login nick bindnet "+s.tag+"dbnd")
	daveSays(t, from, "at most 1 connections")
	from = s.mx.EventCount()
	s.command(t, "logout bindnet:"+s.userID)
	s.botSaysFrom(t, from, "Logged out")

	nick = s.tag + "web"
	from = s.mx.EventCount()
	s.command(t, "login nick webnet "+nick)
	s.botSaysFrom(t, from, "Connected to webnet")
	// InspIRCd ignores the host a gateway names and shows the IP (which it would resolve with
	// resolvehostnames): the login's pseudonymous address out of the WEBIRC prefix.
	if host, _ := whoisOf(nick); !strings.HasPrefix(host, "fd00:5ea1:b41d:") && !strings.HasSuffix(host, ".users.sealbridge.invalid") {
		t.Errorf("through WEBIRC alice's host is %q, want her pseudonymous address or host", host)
	}
	from = s.mx.EventCount()
	s.command(t, "logout webnet:"+s.userID)
	s.botSaysFrom(t, from, "Logged out")

	if os.Geteuid() != 0 {
		t.Log("identd: not root, port 113 unavailable; skipped")
		return
	}
	nick = s.tag + "idt"
	from = s.mx.EventCount()
	s.command(t, "login nick identnet "+nick)
	s.botSaysFrom(t, from, "Connected to identnet")
	if username, host, _ := whoisUser(nick); !regexp.MustCompile(`^sb[0-9a-f]{8}$`).MatchString(username) || host != "127.0.2.1" {
		t.Errorf("on identnet alice is %s@%s, want the identd's answer sb<8 hex digits> (no ~) from 127.0.2.1", username, host)
	}
	from = s.mx.EventCount()
	s.command(t, "logout identnet:"+s.userID)
	s.botSaysFrom(t, from, "Logged out")
}
