//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// relayScene is what the relay story needs from the main story.
type relayScene struct {
	hsURL, dir, botMXID string
	alice               *mxclient.Client // logged in, an op in the channel (set-relay needs room power)
	aliceNick           string           // her IRC nick now
	chanRoom, channel   string
	bob                 *ircUser
	bobMXID             string
}

// relayStory checks relay mode: alice, a room admin with a login, runs `set-relay` in the channel
// portal; erin, a Matrix user without a login, then speaks through alice's connection as
// "<erin> text" (InspIRCd has no draft/relaymsg), her line shows once in Matrix, and she reads the
// IRC side, encrypted like everyone else.
func relayStory(t *testing.T, ctx context.Context, s relayScene) {
	// alice's current nick is an op again (she came back under another nick), which makes her a
	// room admin in Matrix (power level 50).
	s.bob.send(t, "MODE", s.channel, "+o", s.aliceNick)
	deadline := time.Now().Add(waitLong)
	for {
		pl, err := s.alice.GetState(ctx, s.chanRoom, "m.room.power_levels")
		must(t, err)
		users, _ := pl["users"].(map[string]any)
		if level, _ := users[s.alice.UserID()].(float64); level >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's power level did not follow +o: %v", users)
		}
		time.Sleep(200 * time.Millisecond)
	}
	from := s.alice.EventCount()
	_, err := s.alice.Send(ctx, s.chanRoom, "m.text", "!sb set-relay", "")
	must(t, err)
	c, cancel := context.WithTimeout(ctx, waitLong)
	reply, err := s.alice.WaitEventFrom(c, from, func(e mxclient.Event) bool {
		return e.RoomID == s.chanRoom && e.Sender == s.botMXID && strings.Contains(e.Body(), "relay")
	})
	cancel()
	if err != nil {
		t.Fatalf("the bot did not answer set-relay: %v", err)
	}
	if !strings.Contains(reply.Body(), "will now be relayed") {
		t.Fatalf("set-relay was refused: %q", reply.Body())
	}

	erin, err := mxclient.New(ctx, filepath.Join(s.dir, "mxclient-erin.log"))
	must(t, err)
	defer erin.Close()
	_, _, err = erin.Login(ctx, s.hsURL, "erin", "erin-password", true)
	must(t, err)
	must(t, s.alice.Invite(ctx, s.chanRoom, erin.UserID()))
	c, cancel = context.WithTimeout(ctx, waitLong)
	_, err = erin.WaitInvite(c, func(inv mxclient.Invite) bool { return inv.RoomID == s.chanRoom })
	cancel()
	must(t, err)
	must(t, erin.Join(ctx, s.chanRoom))
	waitMembership(t, s.alice, s.chanRoom, erin.UserID(), "join")

	seen := len(s.bob.messages())
	_, err = erin.Send(ctx, s.chanRoom, "m.text", "relayed hello", "")
	must(t, err)
	line := s.bob.waitForAfter(t, seen, "erin's line through the relay", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.HasSuffix(m.Params[len(m.Params)-1], "relayed hello")
	})
	if got := line.Params[len(line.Params)-1]; !strings.EqualFold(line.Nick(), s.aliceNick) || !strings.HasPrefix(got, "<") || !strings.Contains(got, "erin") || !strings.HasSuffix(got, "> relayed hello") {
		t.Errorf("relayed line on IRC: %s %q, want <erin...> relayed hello from %s", line.Nick(), got, s.aliceNick)
	}

	// erin reads IRC; her own line is in the room once (not echoed back by the relay's connection).
	s.bob.send(t, "PRIVMSG", s.channel, "hello erin")
	waitMessage(t, erin, s.chanRoom, s.bobMXID, "hello erin")
	waitMessage(t, s.alice, s.chanRoom, erin.UserID(), "relayed hello")
	waitMessage(t, s.alice, s.chanRoom, s.bobMXID, "hello erin") // after erin's line in the room
	n := 0
	for _, e := range s.alice.Events() {
		if e.RoomID == s.chanRoom && e.Type == "m.room.message" && strings.Contains(e.Body(), "relayed hello") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("alice sees erin's relayed line %d times, want once", n)
	}

	// Only messages are relayed: erin, given room power by alice, changes the topic; the relay's
	// connection does not carry it to IRC, the room is told why, and the topic is put back as IRC
	// has it.
	pl, err := s.alice.GetState(ctx, s.chanRoom, "m.room.power_levels")
	must(t, err)
	users, _ := pl["users"].(map[string]any)
	users[erin.UserID()] = 50
	_, err = s.alice.SendState(ctx, s.chanRoom, "m.room.power_levels", pl)
	must(t, err)
	seen = len(s.bob.messages())
	from = s.alice.EventCount()
	_, err = erin.SendState(ctx, s.chanRoom, "m.room.topic", map[string]any{"topic": "relayed topic"})
	must(t, err)
	c, cancel = context.WithTimeout(ctx, waitLong)
	refusal, err := s.alice.WaitEventFrom(c, from, func(e mxclient.Event) bool {
		return e.RoomID == s.chanRoom && e.Sender == s.botMXID && strings.Contains(e.Body(), "Not done on IRC")
	})
	cancel()
	if err != nil {
		t.Fatalf("no refusal of erin's topic change in the room: %v", err)
	}
	if !strings.Contains(refusal.Body(), "change the topic") {
		t.Errorf("refusal %q does not say what was refused", refusal.Body())
	}
	s.bob.send(t, "PING", "relay-barrier")
	s.bob.waitForAfter(t, seen, "the barrier", waitLong, func(m *ircmsg.Message) bool { return m.Command == "PONG" })
	for _, m := range s.bob.messages()[seen:] {
		if m.Command == "TOPIC" {
			t.Errorf("erin's topic reached IRC through the relay: %v", m.Params)
		}
	}
	deadline = time.Now().Add(waitLong)
	for {
		topic, err := s.alice.GetState(ctx, s.chanRoom, "m.room.topic")
		must(t, err)
		if got, _ := topic["topic"].(string); got != "relayed topic" && got != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room's topic stayed %q after the refusal, want IRC's topic back", topic["topic"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
