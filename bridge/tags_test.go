package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/config"
)

// A fake server that speaks message-tags and draft/message-redaction exactly as their specs say
// (InspIRCd 3 has no message-redaction), scripted line by line.
var tagCaps = []string{"message-tags", "echo-message", "draft/message-redaction"}

func serverLine(t *testing.T, cl *IRCClient, line string) {
	t.Helper()
	msg, err := ircmsg.ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	switch msg.Command {
	case "TAGMSG":
		cl.handleTagMsg(&msg, time.Now())
	case "REDACT":
		cl.handleRedact(&msg, time.Now())
	default:
		t.Fatalf("serverLine: %s", msg.Command)
	}
}

func TestTagsFromIRC(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: tagCaps})
	joinedChannel(cl, "#c", "me", "bob")
	cl.dmPeers.add("bob")                                     // a private chat with bob exists (typing to anyone else is dropped)
	serverLine(t, cl, "@+typing=active :carol!c@h TAGMSG me") // no chat with carol: dropped

	serverLine(t, cl, "@+typing=active :bob!b@h TAGMSG #c")
	serverLine(t, cl, "@+typing=done :bob!b@h TAGMSG #c")
	serverLine(t, cl, "@+draft/react=👍;+draft/reply=abc :bob!b@h TAGMSG #c")
	serverLine(t, cl, "@+draft/react=👍 :bob!b@h TAGMSG #c")     // no target: dropped
	serverLine(t, cl, "@+typing=active :me!u@h TAGMSG #c")      // our own typing echoed: dropped
	serverLine(t, cl, "@+typing=active :bob!b@h TAGMSG #other") // a channel we are not in
	serverLine(t, cl, "@+typing=active :bob!b@h TAGMSG me")     // private: bob's DM
	serverLine(t, cl, ":bob!b@h REDACT #c abc :oops")
	evts := queued(cl)
	if len(evts) != 5 {
		t.Fatalf("queued %d events, want 5: %#v", len(evts), evts)
	}
	if ty := evts[0].(*simplevent.Typing); ty.Timeout != typingTimeout || ty.PortalKey != cl.channelKey("#c") {
		t.Errorf("active typing = %+v", ty)
	}
	if ty := evts[1].(*simplevent.Typing); ty.Timeout != 0 {
		t.Errorf("done typing has timeout %s", ty.Timeout)
	}
	r := evts[2].(*simplevent.Reaction)
	if r.Emoji != "👍" || r.TargetMessage != "net/abc" || r.Sender.Sender != MakeUserID("net", "bob") {
		t.Errorf("reaction = %+v", r)
	}
	if ty := evts[3].(*simplevent.Typing); ty.PortalKey != cl.dmKey("bob") {
		t.Errorf("private typing went to %v", ty.PortalKey)
	}
	if rm := evts[4].(*simplevent.MessageRemove); rm.TargetMessage != "net/abc" || rm.PortalKey != cl.channelKey("#c") {
		t.Errorf("redaction = %+v", rm)
	}
}

func TestTagsToIRC(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: tagCaps})
	joinedChannel(cl, "#c", "me", "bob")
	ctx := context.Background()
	portal := portalFor(cl.channelKey("#c"))
	ircMsg := &database.Message{ID: "net/abc", Room: portal.PortalKey}

	// Typing: active at most every 3 s, then done.
	for i := 0; i < 3; i++ {
		must(t, cl.HandleMatrixTyping(ctx, &bridgev2.MatrixTyping{Portal: portal, IsTyping: true}))
	}
	must(t, cl.HandleMatrixTyping(ctx, &bridgev2.MatrixTyping{Portal: portal, IsTyping: false}))
	wantLines(t, w.barrier(), "@+typing=active TAGMSG #c", "@+typing=done TAGMSG #c")

	// A reaction names the message with +draft/reply.
	react := &bridgev2.MatrixReaction{TargetMessage: ircMsg}
	react.Portal, react.Content = portal, &event.ReactionEventContent{RelatesTo: event.RelatesTo{Key: "🎉"}}
	pre, err := cl.PreHandleMatrixReaction(ctx, react)
	must(t, err)
	react.PreHandleResp = &pre
	_, err = cl.HandleMatrixReaction(ctx, react)
	must(t, err)
	wantLines(t, w.barrier(), "@+draft/react=🎉;+draft/reply=abc TAGMSG #c")

	// A message IRC has no msgid for, or from another room, cannot be reacted to or deleted.
	for _, target := range []*database.Message{
		{ID: MakeMatrixMessageID("net", "$x"), Room: portal.PortalKey},
		{ID: "net/abc", Room: cl.channelKey("#elsewhere")},
	} {
		react.TargetMessage = target
		if _, err = cl.HandleMatrixReaction(ctx, react); !errors.Is(err, errNoMsgID) {
			t.Errorf("reaction to %+v: %v", target, err)
		}
		rm := &bridgev2.MatrixMessageRemove{TargetMessage: target}
		rm.Portal, rm.Content = portal, &event.RedactionEventContent{}
		if err = cl.HandleMatrixMessageRemove(ctx, rm); !errors.Is(err, errNoMsgID) {
			t.Errorf("redaction of %+v: %v", target, err)
		}
	}

	// Redaction with a reason that tries to break the line.
	rm := &bridgev2.MatrixMessageRemove{TargetMessage: ircMsg}
	rm.Portal, rm.Content = portal, &event.RedactionEventContent{Reason: "typo\r\nQUIT :x"}
	must(t, cl.HandleMatrixMessageRemove(ctx, rm))
	wantLines(t, w.barrier(), "REDACT #c abc :typo / QUIT :x")

	// An edit is a correction line.
	edit := &bridgev2.MatrixEdit{EditTarget: ircMsg}
	edit.Portal, edit.Event = portal, &event.Event{ID: "$edit"}
	edit.Content = &event.MessageEventContent{MsgType: event.MsgText, Body: "* fixed", NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "fixed"}}
	must(t, cl.HandleMatrixEdit(ctx, edit))
	wantLines(t, w.barrier(), "PRIVMSG #c :* fixed")
	cl.connector.Config.EditStyle = config.EditOff
	if err = cl.HandleMatrixEdit(ctx, edit); !errors.Is(err, errEditsOff) {
		t.Errorf("edit with edit_style off: %v", err)
	}
	if got := w.barrier(); len(got) != 0 {
		t.Errorf("edit with edit_style off wrote %q", got)
	}
}

func TestTagsWithoutCaps(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#c", "me")
	ctx := context.Background()
	portal := portalFor(cl.channelKey("#c"))
	ircMsg := &database.Message{ID: "net/abc", Room: portal.PortalKey}
	must(t, cl.HandleMatrixTyping(ctx, &bridgev2.MatrixTyping{Portal: portal, IsTyping: true}))
	react := &bridgev2.MatrixReaction{TargetMessage: ircMsg, PreHandleResp: &bridgev2.MatrixReactionPreResponse{EmojiID: "x"}}
	react.Portal = portal
	if _, err := cl.HandleMatrixReaction(ctx, react); !errors.Is(err, errNoTags) {
		t.Errorf("reaction without message-tags: %v", err)
	}
	rm := &bridgev2.MatrixMessageRemove{TargetMessage: ircMsg}
	rm.Portal, rm.Content = portal, &event.RedactionEventContent{}
	if err := cl.HandleMatrixMessageRemove(ctx, rm); !errors.Is(err, errNoRedaction) {
		t.Errorf("redaction without message-redaction: %v", err)
	}
	if got := w.barrier(); len(got) != 0 {
		t.Errorf("without the capabilities the bridge wrote %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	var canon []string
	for _, l := range got {
		canon = append(canon, canonLine(t, l))
	}
	if len(canon) != len(want) {
		t.Fatalf("wire %q, want %q", canon, want)
	}
	for i := range want {
		if canon[i] != canonLine(t, want[i]) {
			t.Errorf("line %d: %q, want %q", i, canon[i], want[i])
		}
	}
}

func TestReadMarker(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"draft/read-marker"}})
	joinedChannel(cl, "#c", "me", "bob")
	cl.dmPeers.add("bob")
	portal := portalFor(cl.channelKey("#c"))
	at := time.Date(2026, 11, 23, 12, 0, 1, 500e6, time.UTC)
	must(t, cl.HandleMatrixReadReceipt(context.Background(), &bridgev2.MatrixReadReceipt{Portal: portal, ReadUpTo: at}))
	must(t, cl.HandleMatrixReadReceipt(context.Background(), &bridgev2.MatrixReadReceipt{Portal: portal})) // no time: nothing
	wantLines(t, w.barrier(), "MARKREAD #c timestamp=2026-11-23T12:00:01.500Z")

	for _, line := range []string{
		":irc.test MARKREAD #c timestamp=2026-11-23T12:00:02.000Z",
		":irc.test MARKREAD #c *",
		":irc.test MARKREAD #other timestamp=2026-11-23T12:00:02.000Z",
		":irc.test MARKREAD bob timestamp=2026-11-23T12:00:03.000Z",
	} {
		msg, err := ircmsg.ParseLine(line)
		must(t, err)
		cl.handleMarkRead(&msg)
	}
	evts := queued(cl)
	if len(evts) != 2 {
		t.Fatalf("queued %d receipts, want 2", len(evts))
	}
	r := evts[0].(*simplevent.Receipt)
	if r.PortalKey != cl.channelKey("#c") || !r.Sender.IsFromMe || r.ReadUpTo.Second() != 2 {
		t.Errorf("channel receipt = %+v", r)
	}
	if r := evts[1].(*simplevent.Receipt); r.PortalKey != cl.dmKey("bob") {
		t.Errorf("private receipt went to %v", r.PortalKey)
	}
}
