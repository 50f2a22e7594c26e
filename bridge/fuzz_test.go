package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/format"
)

// The fuzz targets of this package drive every path where a string from Matrix reaches the IRC
// socket through the real IRCClient and a scripted server (harness_test.go), and check the socket
// invariant on the bytes written: no CR, LF or NUL inside a line, at most 512
// bytes with CRLF (tags apart). The seed corpora are in testdata/fuzz/<Target>/.
//
//   FuzzMatrixToIRC   message body, formatted body, msgtype, reply context (replied-to nick and
//                     msgid), and the nick of a private chat opened from Matrix (validateNick)
//   FuzzJoinPartArgs  the arguments of the bot's join and part commands (safeArg, as fnJoin and
//                     fnPart use it) and the part reason
//   FuzzModeration    a room topic, a kick reason and the target nick of a kick and of a power
//                     level change (HandleMatrixRoomTopic, HandleMatrixMembership,
//                     HandleMatrixPowerLevels)
//   FuzzValidateNick  the nick given to login and pm/start-chat
//   FuzzMatrixTagsAndEdits (fuzz_tags_test.go)  a reaction key, a redaction reason, an edit

const maxFuzzInput = 20000

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func clip(s string) string {
	if len(s) > maxFuzzInput {
		return s[:maxFuzzInput]
	}
	return s
}

// resetFuzzClient forgets what an earlier input left in the client's state.
func resetFuzzClient(cl *IRCClient, w *wire, t *testing.T) {
	w.tb = t
	cl.mu.Lock()
	clear(cl.nicks)
	clear(cl.echoes)
	cl.mu.Unlock()
	queued(cl)
}

func FuzzMatrixToIRC(f *testing.F) {
	f.Add("hello", "", byte(0), "", "", "")
	f.Add("a\r\nQUIT :x", "<b>a</b>\r\nQUIT :x", byte(0), "", "bob", "msgid1")
	f.Add("", "<mx-reply><blockquote>q\rQUIT</blockquote></mx-reply>r", byte(2), "bob", "Bob", "a b;c\\d")
	f.Add(strings.Repeat("é", 400), "", byte(1), "[nick]", "", "")
	f.Add("\x01DCC SEND x 1 2 3\x01", "", byte(0), "a\x00b", "a\rb", "\x00")
	cl, w := newWireClient(f, wireOpts{caps: []string{"message-tags"}})
	joinedChannel(cl, "#chan")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body, formatted string, kind byte, dmNick, replyNick, replyMsgID string) {
		resetFuzzClient(cl, w, t)
		body, formatted = clip(body), clip(formatted)
		msgType := []event.MessageType{event.MsgText, event.MsgNotice, event.MsgEmote}[int(kind)%3]
		command := "PRIVMSG"
		if msgType == event.MsgNotice {
			command = "NOTICE"
		}
		target, key := "#chan", cl.channelKey("#chan")
		if nick, err := validateNick(dmNick); err == nil && !cl.ircConn.IsChannel(nick) {
			target, key = nick, cl.dmKey(nick)
			cl.mu.Lock()
			cl.nicks[cl.fold(nick)] = nick
			cl.mu.Unlock()
		}
		var replyTo *database.Message
		if replyNick != "" || replyMsgID != "" {
			replyTo = &database.Message{ID: MakeMessageID(nil, "net", "", "", replyMsgID, testTime, "x"), Room: key, SenderID: MakeUserID("net", cl.fold(replyNick))}
			if replyNick != "" {
				cl.mu.Lock()
				cl.nicks[cl.fold(replyNick)] = replyNick
				cl.mu.Unlock()
			}
		}
		_, err := cl.sendToIRC(ctx, matrixMessage(portalFor(key), msgType, body, formatted, replyTo))
		got := w.barrier()
		for _, raw := range got {
			msg := checkWireLine(t, raw)
			if msg.Command != command || len(msg.Params) != 2 || cl.fold(msg.Params[0]) != cl.fold(target) {
				t.Fatalf("sent %q to %q: wire line %q", command, target, raw)
			}
			text := msg.Params[1]
			if msgType == event.MsgEmote {
				inner, ok := strings.CutPrefix(text, "\x01ACTION ")
				if !ok || !strings.HasSuffix(inner, "\x01") {
					t.Fatalf("emote line %q", raw)
				}
				text = strings.TrimSuffix(inner, "\x01")
			}
			// (A \x01 may only come from the replied-to nick, which the IRC server supplied.)
			if strings.IndexByte(text, '\x01') >= 0 && strings.IndexByte(replyNick, '\x01') < 0 {
				t.Fatalf("a CTCP delimiter from Matrix reached IRC: %q", raw)
			}
		}
		if err != nil {
			if len(got) > 0 {
				t.Fatalf("sendToIRC failed (%v) after writing %q", err, got)
			}
			// The only refusal allowed is a message with nothing to send. A msgid that cannot be
			// repeated in a tag (NUL, invalid UTF-8, over the client tag limit once escaped) leaves the
			// tag out rather than failing the reply (seed testdata/fuzz/FuzzMatrixToIRC/14cf752753ae5f6e).
			if !strings.Contains(err.Error(), "empty on IRC") {
				t.Fatalf("sendToIRC(%q, %q) with reply msgid %q: %v", body, formatted, replyMsgID, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("sendToIRC succeeded and wrote nothing")
		}
	})
}

func FuzzJoinPartArgs(f *testing.F) {
	for _, s := range injections {
		f.Add(s, "", "")
		f.Add("#ok", s, s)
	}
	f.Add("#c", ":key", ":reason with spaces")
	f.Add("&c", "k", "bye\r\nQUIT")
	f.Add("#"+strings.Repeat("x", 600), "", "")
	f.Add("#é", "ключ", strings.Repeat("ü", 300))
	cl, w := newWireClient(f, wireOpts{})
	f.Fuzz(func(t *testing.T, channel, key, reason string) {
		resetFuzzClient(cl, w, t)
		channel, key, reason = clip(channel), clip(key), clip(reason)
		// fnJoin's checks, then what it sends.
		if safeArg(channel) == nil && cl.ircConn.IsChannel(channel) && (key == "" || safeArg(key) == nil) {
			want := []string{channel}
			if key != "" {
				want = append(want, key)
			}
			err := cl.join(channel, key)
			checkOneLine(t, w, err, "JOIN", want, len("JOIN "+channel+" :"+key) < 500)
		}
		// fnPart's checks, then what it sends.
		if safeArg(channel) == nil && cl.ircConn.IsChannel(channel) && !strings.ContainsAny(reason, "\r\n\x00") {
			var err error
			want := []string{channel}
			if reason == "" {
				err = cl.ircConn.Send("PART", channel)
			} else {
				err = cl.ircConn.Send("PART", channel, reason)
				want = append(want, reason)
			}
			checkOneLine(t, w, err, "PART", want, len("PART "+channel+" :"+reason) < 500)
		}
		wantWire(t, "after join/part", w.barrier(), nil)
	})
}

// checkOneLine checks that a send that returned err wrote nothing (err != nil) or exactly one line
// with the given command and parameters; mustWork says the send had no reason to fail.
func checkOneLine(t *testing.T, w *wire, err error, command string, params []string, mustWork bool) {
	t.Helper()
	got := w.barrier()
	if err != nil {
		if len(got) > 0 {
			t.Fatalf("%s %q failed (%v) but wrote %q", command, params, err, got)
		}
		if mustWork {
			t.Fatalf("%s %q refused: %v", command, params, err)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("%s %q: wrote %q", command, params, got)
	}
	msg := checkWireLine(t, got[0])
	if msg.Command != command || strings.Join(msg.Params, "\x00") != strings.Join(params, "\x00") {
		t.Fatalf("%s %q: wrote %q", command, params, got[0])
	}
}

func FuzzModeration(f *testing.F) {
	f.Add("topic", "reason", "bob", 50, false)
	f.Add("line one\r\nTOPIC #x :pwned\x00", "a\rKICK #chan me", "Bob", 10, true)
	f.Add(strings.Repeat("ü", 400), strings.Repeat("reason ", 100), "[x]", 25, true)
	f.Add("\n\n", "", "a b", 100, false)
	f.Add("", "", ":x", -1, false)
	f.Add(strings.Repeat("x", 600), "", "carol\r\nQUIT", 0, false)
	withLen, wl := newWireClient(f, wireOpts{isupport: "TOPICLEN=307 PREFIX=(ohv)@%+ MODES=4"})
	without, wo := newWireClient(f, wireOpts{})
	joinedChannel(withLen, "#chan", "me")
	joinedChannel(without, "#chan", "me")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, topic, reason, ghostNick string, level int, topicLen bool) {
		cl, w := without, wo
		if topicLen {
			cl, w = withLen, wl
		}
		resetFuzzClient(cl, w, t)
		topic, reason, ghostNick = clip(topic), clip(reason), clip(ghostNick)
		portal := portalFor(cl.channelKey("#chan"))

		// Topic: one TOPIC line, the topic made one line and cut to TOPICLEN.
		limit := cl.ircConn.MaxTextBytes("TOPIC", "#chan")
		if topicLen {
			limit = min(limit, 307)
		}
		tmsg := &bridgev2.MatrixRoomTopic{}
		tmsg.Portal, tmsg.Content = portal, &event.TopicEventContent{Topic: topic}
		_, err := cl.HandleMatrixRoomTopic(ctx, tmsg)
		want := format.OneLine(topic, limit)
		checkOneLine(t, w, err, "TOPIC", []string{"#chan", want}, topicLen)
		if topicLen && len(want) > limit {
			t.Fatalf("topic of %d bytes with TOPICLEN=%d", len(want), limit)
		}

		// Kick of a ghost with a reason.
		folded := cl.fold(ghostNick)
		cl.mu.Lock()
		cl.nicks[folded] = ghostNick
		cl.channels["#chan"].Members[folded] = &member{Nick: ghostNick} // on the channel: a kick is a KICK
		cl.mu.Unlock()
		ghost := &bridgev2.Ghost{Ghost: &database.Ghost{ID: MakeUserID("net", folded)}}
		kmsg := &bridgev2.MatrixMembershipChange{Target: ghost, Type: bridgev2.Kick}
		kmsg.Portal, kmsg.Content = portal, &event.MemberEventContent{Membership: event.MembershipLeave, Reason: reason}
		_, err = cl.HandleMatrixMembership(ctx, kmsg)
		checkOneLine(t, w, err, "KICK", []string{"#chan", ghostNick, format.OneLine(reason, min(maxReasonBytes, cl.ircConn.MaxTextBytes("KICK", "#chan "+ghostNick)))}, false)

		// A power level change of the same ghost: MODE lines only, to #chan.
		pmsg := &bridgev2.MatrixPowerLevelChange{Users: map[id.UserID]*bridgev2.UserPowerLevelChange{
			"@x:example.org": {Target: ghost, SinglePowerLevelChange: bridgev2.SinglePowerLevelChange{NewLevel: level, NewIsSet: true}},
		}}
		pmsg.Portal = portal
		_, err = cl.HandleMatrixPowerLevels(ctx, pmsg)
		got := w.barrier()
		if err != nil && len(got) > 0 {
			t.Fatalf("power levels failed (%v) after writing %q", err, got)
		}
		for _, raw := range got {
			msg := checkWireLine(t, raw)
			if msg.Command != "MODE" || len(msg.Params) < 3 || msg.Params[0] != "#chan" {
				t.Fatalf("power level change wrote %q", raw)
			}
			for _, p := range msg.Params[2:] {
				if p != ghostNick {
					t.Fatalf("power level change of %q wrote %q", ghostNick, raw)
				}
			}
		}
	})
}

// FuzzValidateNick: a nick validateNick accepts is safe as a middle parameter of any IRC command
// (NICK at registration, PRIVMSG target of a private chat): non-empty, no space, no leading ':', no
// CR, LF or NUL, at most 64 bytes, and not a channel.
func FuzzValidateNick(f *testing.F) {
	for _, s := range []string{"alice", " padded ", "a\r\nQUIT", "a\x00", ":x", "#c", "&c", "a b", "[x]|y^", "\u00a0x\u0085", strings.Repeat("n", 64), strings.Repeat("é", 40), "a\tb", "\x01VERSION\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		nick, err := validateNick(in)
		if err != nil {
			if nick != "" {
				t.Fatalf("validateNick(%q) returned %q with error %v", in, nick, err)
			}
			return
		}
		if nick == "" || len(nick) > 64 || nick[0] == ':' || nick[0] == '#' || nick[0] == '&' ||
			strings.ContainsAny(nick, " \r\n\x00\x01,!@*?") {
			t.Fatalf("validateNick(%q) accepted %q", in, nick)
		}
	})
}

// A Matrix topic longer than a line, on a server that does not advertise TOPICLEN, should still
// reach IRC cut to what fits in the TOPIC line (as it is cut to TOPICLEN when the server has one).
func TestLongTopicWithoutTOPICLEN(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan")
	msg := &bridgev2.MatrixRoomTopic{}
	msg.Portal, msg.Content = portalFor(cl.channelKey("#chan")), &event.TopicEventContent{Topic: strings.Repeat("word ", 200)}
	if _, err := cl.HandleMatrixRoomTopic(context.Background(), msg); err != nil {
		t.Fatalf("a 1000-byte topic was refused: %v", err)
	}
	got := w.barrier()
	if len(got) != 1 || !strings.HasPrefix(checkWireLine(t, got[0]).Params[1], "word word") {
		t.Fatalf("wire %q", got)
	}
}
