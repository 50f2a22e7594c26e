package bridge

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

func relayed(portal *bridgev2.Portal, msgType event.MessageType, body, name string) *bridgev2.MatrixMessage {
	msg := matrixMessage(portal, msgType, body, "", nil)
	msg.OrigSender = &bridgev2.OrigSender{UserID: "@erin:example.org", DisambiguatedName: name}
	return msg
}

// Without draft/relaymsg a relayed Matrix user speaks through the relay's nick with a "<name>"
// prefix; an emote reads "* name text". The name cannot smuggle a line break or fake a prefix.
func TestRelayPrefixWithoutRelayMsg(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags"}})
	joinedChannel(cl, "#here", "me", "bob")
	portal := portalFor(cl.channelKey("#here"))
	ctx := context.Background()
	for _, tc := range []struct {
		msgType    event.MessageType
		body, name string
		want       []string
	}{
		{event.MsgText, "hello", "Erin", []string{"PRIVMSG #here :<Erin> hello"}},
		{event.MsgEmote, "waves", "Erin", []string{"PRIVMSG #here :* Erin waves"}},
		{event.MsgNotice, "fyi", "Erin", []string{"NOTICE #here :<Erin> fyi"}},
		{event.MsgText, "hi", "Er\r\nin> QUIT <x", []string{"PRIVMSG #here :<Erin QUIT x> hi"}},
	} {
		if _, err := cl.sendToIRC(ctx, relayed(portal, tc.msgType, tc.body, tc.name)); err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		wantWire(t, tc.body, w.barrier(), tc.want)
	}
}

// With draft/relaymsg, a relay that is a channel operator sends RELAYMSG under the user's own
// nick (with the server's separator); its echo, tagged relaymsg=<our nick>, is never bridged back
// as a ghost. A relay without op falls back to the prefix, since the server would refuse.
func TestRelayMsgWhereOffered(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags", "draft/relaymsg=/"}})
	joinedChannel(cl, "#here", "me", "bob")
	portal := portalFor(cl.channelKey("#here"))
	ctx := context.Background()
	if _, err := cl.sendToIRC(ctx, relayed(portal, event.MsgText, "no op yet", "Erin")); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "not op", w.barrier(), []string{"PRIVMSG #here :<Erin> no op yet"})

	cl.mu.Lock()
	cl.channels[cl.fold("#here")].Members[cl.fold("me")].Modes = "o"
	cl.mu.Unlock()
	if _, err := cl.sendToIRC(ctx, relayed(portal, event.MsgText, "hello there", "Erin Example!")); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "op", w.barrier(), []string{"RELAYMSG #here ErinExample/m :hello there"})
	if _, err := cl.sendToIRC(ctx, relayed(portal, event.MsgEmote, "waves", "Erin")); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "op emote", w.barrier(), []string{"RELAYMSG #here Erin/m :\x01ACTION waves\x01"})

	// The server's echo of our relayed line, and another client's relayed line.
	incoming(t, cl, "@relaymsg=me;msgid=e1 :ErinExample/m!relay@host PRIVMSG #here :hello there")
	incoming(t, cl, "@relaymsg=otherbot;msgid=e2 :dc/d!relay@host PRIVMSG #here :from discord")
	evts := queued(cl)
	if len(evts) != 1 {
		t.Fatalf("queued %d events, want only the other bot's line", len(evts))
	}
	if m, _ := asMessage(evts[0]); m.Data.Nick != "dc/d" || m.Data.Text != "from discord" {
		t.Fatalf("bridged %+v", m.Data)
	}
}

func TestRelayNick(t *testing.T) {
	for _, tc := range []struct{ name, seps, want string }{
		{"Erin", "/", "Erin/m"},
		{"Erin Example (@erin:example.org)", "|/", "ErinExampleerinexampleorg|m"},
		{"日本語", "/", ""},
		{"a:b,c*d!e@f", "", "abcdef/m"},
	} {
		if got := relayNick(tc.name, tc.seps, 30); got != tc.want {
			t.Errorf("relayNick(%q, %q) = %q, want %q", tc.name, tc.seps, got, tc.want)
		}
	}
	if got := relayNick(strings.Repeat("x", 100), "/", 16); len(got) > 16 {
		t.Errorf("long name gave %q", got)
	}
}
