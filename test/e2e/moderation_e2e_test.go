//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// moderationScene is what the moderation part of the story needs: bob is the channel's op on IRC,
// alice is the Matrix user (logged in as aliceNick), carol an IRC user outside the channel.
type moderationScene struct {
	mx                   *mxclient.Client
	bob, carol           *ircUser
	channel, chanRoom    string
	aliceNick, carolNick string
	aliceMXID, carolMXID string
}

// moderationStory checks moderation both ways: IRC prefix modes (from a multi-mode line) become
// Matrix power levels; a Matrix op's power level change, topic, kick, ban and unban reach IRC over
// the op's own connection; a secret (+s) channel never shows in the room directory.
func moderationStory(t *testing.T, ctx context.Context, s moderationScene) {
	mx := s.mx
	powerOf := func(user string, want float64) func(mxclient.Event) bool {
		return func(e mxclient.Event) bool {
			users, _ := e.Content["users"].(map[string]any)
			level, _ := users[user].(float64)
			return e.RoomID == s.chanRoom && e.Type == "m.room.power_levels" && level == want
		}
	}
	wait := func(what string, from int, match func(mxclient.Event) bool) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		if _, err := mx.WaitEventFrom(c, from, match); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	fromAlice := func(command string) func(*ircmsg.Message) bool {
		return func(m *ircmsg.Message) bool { return m.Command == command && strings.EqualFold(m.Nick(), s.aliceNick) }
	}

	// IRC -> Matrix: a multi-mode line, where the ban mask is +b's parameter, makes alice op (50).
	from := mx.EventCount()
	s.bob.send(t, "MODE", s.channel, "+bo", "*!*@nowhere.invalid", s.aliceNick)
	wait("alice's op as power level 50", from, powerOf(s.aliceMXID, 50))
	s.bob.send(t, "MODE", s.channel, "-b", "*!*@nowhere.invalid")

	// Matrix -> IRC: alice, now an op, gives carol voice by raising her power level to 10.
	from = mx.EventCount()
	s.carol.send(t, "JOIN", s.channel)
	wait("carol joining", from, mxclient.Membership(s.chanRoom, s.carolMXID, "join"))
	c, cancel := context.WithTimeout(ctx, waitLong)
	pl, err := mx.GetState(c, s.chanRoom, "m.room.power_levels")
	cancel()
	must(t, err)
	users, _ := pl["users"].(map[string]any)
	if users == nil {
		t.Fatalf("no users in the power levels: %v", pl)
	}
	users[s.carolMXID] = 10
	_, err = mx.SendState(ctx, s.chanRoom, "m.room.power_levels", pl)
	must(t, err)
	voice := s.carol.waitFor(t, "voice from alice's power level change", waitLong, fromAlice("MODE"))
	if got := strings.Join(voice.Params, " "); !strings.EqualFold(got, s.channel+" +v "+s.carolNick) {
		t.Errorf("power level 10 became MODE %q, want +v %s", got, s.carolNick)
	}

	// The topic, set in Matrix with a line break, reaches IRC as one line.
	_, err = mx.SendState(ctx, s.chanRoom, "m.room.topic", map[string]any{"topic": "set in matrix\nsecond line"})
	must(t, err)
	topic := s.bob.waitFor(t, "topic from alice", waitLong, fromAlice("TOPIC"))
	if got := topic.Params[len(topic.Params)-1]; got != "set in matrix / second line" {
		t.Errorf("Matrix topic reached IRC as %q", got)
	}

	// Kick, ban and unban of carol's ghost in Matrix go out as KICK and MODE +b/-b from alice.
	must(t, mx.Moderate(ctx, s.chanRoom, "kick", s.carolMXID, "out you go"))
	kick := s.carol.waitFor(t, "KICK from alice", waitLong, fromAlice("KICK"))
	if len(kick.Params) < 3 || !strings.EqualFold(kick.Params[1], s.carolNick) || kick.Params[2] != "out you go" {
		t.Errorf("Matrix kick reached IRC as KICK %v", kick.Params)
	}
	seen := len(s.bob.messages())
	must(t, mx.Moderate(ctx, s.chanRoom, "ban", s.carolMXID, "and stay out"))
	ban := s.bob.waitForAfter(t, seen, "ban from alice", waitLong, fromAlice("MODE"))
	if got := strings.Join(ban.Params[1:], " "); !strings.EqualFold(got, "+b "+s.carolNick+"!*@*") {
		t.Errorf("Matrix ban reached IRC as MODE %q", got)
	}
	seen = len(s.carol.messages())
	s.carol.send(t, "JOIN", s.channel)
	s.carol.waitForAfter(t, seen, "banned from the channel", waitLong, func(m *ircmsg.Message) bool { return m.Command == "474" })
	seen = len(s.bob.messages())
	must(t, mx.Moderate(ctx, s.chanRoom, "unban", s.carolMXID, ""))
	unban := s.bob.waitForAfter(t, seen, "unban from alice", waitLong, fromAlice("MODE"))
	if got := strings.Join(unban.Params[1:], " "); !strings.EqualFold(got, "-b "+s.carolNick+"!*@*") {
		t.Errorf("Matrix unban reached IRC as MODE %q", got)
	}
	from = mx.EventCount()
	s.carol.send(t, "JOIN", s.channel)
	wait("carol back after the unban", from, mxclient.Membership(s.chanRoom, s.carolMXID, "join"))
	from = mx.EventCount()
	s.carol.send(t, "PART", s.channel)
	wait("carol leaving", from, mxclient.Membership(s.chanRoom, s.carolMXID, "leave"))

	// Regression for "secret (+s) channel details leaked to the room directory": the portal of a
	// secret channel is invite-only and absent from the homeserver's public room directory.
	seen = len(s.bob.messages())
	s.bob.send(t, "MODE", s.channel, "+s")
	s.bob.waitForAfter(t, seen, "+s set", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "MODE" && len(m.Params) > 1 && m.Params[1] == "+s"
	})
	c, cancel = context.WithTimeout(ctx, waitLong)
	defer cancel()
	rules, err := mx.GetState(c, s.chanRoom, "m.room.join_rules")
	must(t, err)
	if rules["join_rule"] != "invite" {
		t.Errorf("the portal's join rule is %v, want invite", rules["join_rule"])
	}
	rooms, err := mx.PublicRooms(c)
	must(t, err)
	for _, r := range rooms {
		if r.RoomID == s.chanRoom || strings.Contains(strings.ToLower(r.Name), strings.ToLower(s.channel)) {
			t.Errorf("the secret channel's portal is in the room directory: %+v", r)
		}
	}
}

// inviteStory: invites both ways. A Matrix invite of an IRC user's ghost goes out as INVITE from
// the inviter's connection; an IRC invite of the user's nick to an invite-only (+i) channel is told
// in the management room, and `join` then gets in where it would otherwise be refused (473).
func inviteStory(t *testing.T, ctx context.Context, s moderationScene, l loginScene) {
	seen := len(s.carol.messages())
	must(t, s.mx.Invite(ctx, s.chanRoom, s.carolMXID))
	s.carol.waitForAfter(t, seen, "alice's invite", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "INVITE" && strings.EqualFold(m.Nick(), s.aliceNick) && len(m.Params) > 1 &&
			strings.EqualFold(m.Params[0], s.carolNick) && strings.EqualFold(m.Params[1], s.channel)
	})

	closed := "#inv-" + l.tag
	s.bob.send(t, "JOIN", closed)
	seen = len(s.bob.messages())
	s.bob.send(t, "MODE", closed, "+i")
	s.bob.waitForAfter(t, seen, "+i set", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "MODE" && strings.EqualFold(m.Params[0], closed) && len(m.Params) > 1 && m.Params[1] == "+i"
	})
	from := s.mx.EventCount()
	s.bob.send(t, "INVITE", s.aliceNick, closed)
	notice := l.botSaysFrom(t, from, "invited you to "+closed)
	if !strings.Contains(notice, "join testnet "+closed) {
		t.Errorf("invite notice %q does not say how to join", notice)
	}
	seen = len(s.bob.messages())
	l.command(t, "join "+closed)
	s.bob.waitForAfter(t, seen, "alice joining the invite-only channel", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), s.aliceNick) && strings.EqualFold(m.Params[0], closed)
	})
	waitRoomNamed(t, s.mx, closed)
}
