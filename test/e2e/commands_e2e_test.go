//go:build e2e

package e2e

import (
	"context"
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
