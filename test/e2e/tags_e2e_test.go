//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// tagsStory checks reactions both ways and edits on InspIRCd's message-tags: an IRC reaction to a
// line sent from Matrix (named by the msgid its echo carried) reaches that Matrix event; a Matrix
// reaction reaches IRC naming the IRC line; a Matrix edit reaches IRC as a "* correction".
func tagsStory(t *testing.T, ctx context.Context, s moderationScene, bobMXID string) {
	mx := s.mx
	// A line from Matrix; bob sees it with the msgid the server gave it.
	sent, err := mx.Send(ctx, s.chanRoom, "m.text", "react to me", "")
	must(t, err)
	line := s.bob.waitFor(t, "alice's line", waitLong, privmsgFrom(s.aliceNick, s.channel, "react to me"))
	_, msgid := line.GetTag("msgid")
	if msgid == "" {
		t.Fatal("the IRC server gave no msgid")
	}
	// bob reacts on IRC: the reaction lands on alice's Matrix event.
	must(t, s.bob.c.SendTagged(map[string]string{"+draft/react": "👍", "+draft/reply": msgid}, "TAGMSG", s.channel))
	c, cancel := context.WithTimeout(ctx, waitLong)
	reaction, err := mx.WaitEvent(c, func(e mxclient.Event) bool {
		rel := e.Relation // as Element reads it: the wire relation
		return e.RoomID == s.chanRoom && e.Type == "m.reaction" && e.Sender == bobMXID && rel["rel_type"] == "m.annotation" &&
			rel["event_id"] == sent && strings.TrimSuffix(fmt.Sprint(rel["key"]), "\uFE0F") == "👍"
	})
	cancel()
	if err != nil {
		t.Errorf("IRC reaction to a Matrix-sent line did not reach its event: %v", err)
	} else if !reaction.Encrypted {
		t.Errorf("the bridge sent a reaction unencrypted: %s", reaction)
	}

	// alice reacts in Matrix to bob's line: a TAGMSG naming it reaches bob.
	seen := len(s.bob.messages())
	s.bob.send(t, "PRIVMSG", s.channel, "pick one")
	echo := s.bob.waitForAfter(t, seen, "bob's echo", waitLong, privmsgFrom(s.bob.c.Nick(), s.channel, "pick one"))
	_, bobMsgID := echo.GetTag("msgid")
	pick := waitMessage(t, mx, s.chanRoom, bobMXID, "pick one")
	_, err = mx.SendEvent(ctx, s.chanRoom, "m.reaction", map[string]any{
		"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": pick.EventID, "key": "🎉"},
	})
	must(t, err)
	tag := s.bob.waitForAfter(t, seen, "alice's reaction", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "TAGMSG" && strings.EqualFold(m.Nick(), s.aliceNick)
	})
	if _, react := tag.GetTag("+draft/react"); react != "🎉" {
		t.Errorf("reaction tag %q, want 🎉", react)
	}
	if _, reply := tag.GetTag("+draft/reply"); reply != bobMsgID {
		t.Errorf("reaction names %q, want bob's line %q", reply, bobMsgID)
	}

	// An edit from Matrix is a correction line on IRC.
	_, err = mx.Edit(ctx, s.chanRoom, sent, "react to me, please")
	must(t, err)
	s.bob.waitFor(t, "alice's correction", waitLong, privmsgFrom(s.aliceNick, s.channel, "* react to me, please"))
}
