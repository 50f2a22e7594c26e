package bridge

// Regression tests for the known attack classes, one named TestAttack<Class> each. They run the
// real IRCClient against a scripted IRC server (harness_test.go) and assert on the exact bytes written
// to the socket, or call the bridge's functions directly. docs/security.md ("Attack map") lists
// every class with the tests that cover it, here and in other files.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

// wantWire compares what the bridge wrote with want, line by line, after checking the socket
// invariant on every line.
func wantWire(t *testing.T, what string, got, want []string) {
	t.Helper()
	var g, w []string
	for _, l := range got {
		checkWireLine(t, l)
		g = append(g, canonLine(t, l))
	}
	for _, l := range want {
		w = append(w, canonLine(t, l))
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s: wire\n  got  %q\n  want %q", what, got, want)
	}
}

// A Matrix reply carries the replied-to text as a fallback (<mx-reply> and "> " lines). In
// matrix-appservice-irc a CR inside that quote ended the PRIVMSG and the rest ran as a raw command.
// Here the quote is never sent, CRs the sender typed only ever start another PRIVMSG to the same
// target, and the reply is one line with the nick prefix and the +draft/reply tag.
func TestAttackCRInReplyQuote(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags"}})
	joinedChannel(cl, "#here", "Bob")
	here := cl.channelKey("#here")
	portal := portalFor(here)
	target := &database.Message{ID: "net/abc", Room: here, SenderID: MakeUserID("net", "bob")}
	ctx := context.Background()

	for _, tc := range []struct {
		name, body, formatted string
		want                  []string
	}{
		{
			name:      "CR and CRLF in the HTML quote",
			body:      "> <@bob:example.org> secret\r\nQUIT :pwned\n\nmy answer",
			formatted: "<mx-reply><blockquote>secret\r\nQUIT :pwned<br>\rPRIVMSG NickServ :DROP</blockquote></mx-reply>my answer",
			want:      []string{"@+draft/reply=abc PRIVMSG #here :Bob: my answer"},
		},
		{
			// bridgev2 strips only a fallback at the very start; one further in is still dropped.
			name:      "quote not at the start",
			body:      "x",
			formatted: "my answer<mx-reply>secret\rQUIT :pwned</mx-reply>",
			want:      []string{"@+draft/reply=abc PRIVMSG #here :Bob: my answer"},
		},
		{
			// A CR typed by the sender: two PRIVMSGs to #here, never a QUIT.
			name: "CR in the plain body",
			body: "ok\rQUIT :pwned\r\nJOIN #x\x00",
			want: []string{
				"@+draft/reply=abc PRIVMSG #here :Bob: ok",
				"PRIVMSG #here :QUIT :pwned",
				"PRIVMSG #here :JOIN #x",
			},
		},
	} {
		if _, err := cl.sendToIRC(ctx, matrixMessage(portal, event.MsgText, tc.body, tc.formatted, target)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		got := w.barrier()
		wantWire(t, tc.name, got, tc.want)
		for _, l := range got {
			if msg := checkWireLine(t, l); msg.Command != "PRIVMSG" || msg.Params[0] != "#here" || strings.Contains(l, "secret") {
				t.Errorf("%s: line %q", tc.name, l)
			}
		}
	}
	// The emote path wraps every line in CTCP ACTION; a CR still only splits it.
	if _, err := cl.sendToIRC(ctx, matrixMessage(portal, event.MsgEmote, "waves\rQUIT :x", "", nil)); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "emote", w.barrier(), []string{"PRIVMSG #here :\x01ACTION waves\x01", "PRIVMSG #here :\x01ACTION QUIT :x\x01"})
}

var injections = []string{
	"#a\r\nPRIVMSG NickServ :DROP",
	"#a\nQUIT",
	"#a\rQUIT",
	"#a\x00",
	"#a b",
	"#a,#b",
	"#a\x07",
	"#a\r",
	"",
}

// matrix-appservice-irc passed the argument of its `join` command to the socket as is, so
// "!join #a\r\nPRIVMSG NickServ :DROP" ran a second command as the bridge's IRC user. fnJoin and
// fnPart check every argument with safeArg; the nick of `login`/`pm` goes through validateNick. And
// even past those checks, the function fnJoin calls (IRCClient.join) puts nothing on the wire.
func TestAttackNewlineInJoinArgument(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	for _, bad := range injections {
		if safeArg(bad) == nil {
			t.Errorf("safeArg(%q) accepted: fnJoin/fnPart would send it", bad)
		}
		if _, err := validateNick(bad); err == nil && strings.ContainsAny(bad, "\r\n\x00") {
			t.Errorf("validateNick(%q) accepted", bad)
		}
		if strings.ContainsAny(bad, "\r\n\x00") {
			if err := cl.join(bad, ""); err == nil {
				t.Errorf("join(%q) accepted", bad)
			}
			if err := cl.join("#ok", bad); err == nil {
				t.Errorf("join with key %q accepted", bad)
			}
		}
	}
	for _, nick := range []string{"bob\r\nQUIT", "bob\nJOIN #x", "bob\x00", "bob QUIT"} {
		if _, err := validateNick(nick); err == nil {
			t.Errorf("validateNick(%q) accepted", nick)
		}
	}
	wantWire(t, "after refused joins", w.barrier(), nil)

	// The checks do not refuse real channel names and keys, and one JOIN is one line.
	for _, ok := range []string{"#ok[chan]", "#c++", "&local", "#é"} {
		if err := safeArg(ok); err != nil {
			t.Errorf("safeArg(%q): %v", ok, err)
		}
	}
	if err := cl.join("#ok[chan]", "k:ey"); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "join", w.barrier(), []string{"JOIN #ok[chan] k:ey"})
}

// Two channels that the server's casemapping keeps apart must never share a portal (room), and a
// message from the room must reach the channel it belongs to. Under rfc1459 "#foo[" and "#foo{" are
// one channel (the server says so); under ascii they are two. Characters that look like separators
// in our IDs ("/", ":", "%") or are not ASCII must not fold channels together either.
func TestAttackChannelNameCharsDoNotMergeRooms(t *testing.T) {
	for _, mapping := range []string{"ascii", "rfc1459", "rfc1459-strict"} {
		t.Run(mapping, func(t *testing.T) {
			cl, w := newWireClient(t, wireOpts{isupport: "CASEMAPPING=" + mapping})
			names := []string{
				"#foo", "#Foo", "#foo[", "#foo{", "#FOO[", "#foo]", "#foo}", "#foo\\", "#foo|", "#foo~", "#foo^",
				"#a/b", "#a", "#a%2Fb", "#a:b", "#a/", "#é", "#É", "#e", "#ﬀ", "#ff", "&foo", "##foo",
			}
			keyOf := map[string]networkid.PortalKey{}
			for _, name := range names {
				joinedChannel(cl, name) // the bridge takes lines only from channels it is in
				incoming(t, cl, ":Bob!b@h PRIVMSG "+name+" :hi")
				evts := queued(cl)
				if len(evts) != 1 {
					t.Fatalf("%q: %d events queued", name, len(evts))
				}
				keyOf[name] = evts[0].GetPortalKey()
			}
			for _, a := range names {
				for _, b := range names {
					sameChannel := irc.Casefold(mapping, a) == irc.Casefold(mapping, b)
					if samePortal := keyOf[a] == keyOf[b]; samePortal != sameChannel {
						t.Errorf("%q and %q: same portal %v, same channel on the server %v", a, b, samePortal, sameChannel)
					}
				}
			}
			if mapping == "ascii" && keyOf["#foo["] == keyOf["#foo{"] {
				t.Error("ascii: #foo[ and #foo{ merged")
			}
			if mapping == "rfc1459" && keyOf["#foo["] != keyOf["#foo{"] {
				t.Error("rfc1459: #foo[ and #foo{ split into two portals")
			}
			// A private chat with nick "foo" is not the channel #foo's room.
			incoming(t, cl, ":foo!f@h PRIVMSG me :hi")
			if dm := queued(cl)[0].GetPortalKey(); dm == keyOf["#foo"] || dm.Receiver == "" {
				t.Errorf("DM portal %+v vs channel %+v", dm, keyOf["#foo"])
			}

			// Matrix -> IRC: each room sends to its own channel, as the server spells it.
			joinedChannel(cl, "#foo[")
			joinedChannel(cl, "#a/b")
			joinedChannel(cl, "#a")
			if mapping == "ascii" {
				joinedChannel(cl, "#foo{")
			}
			ctx := context.Background()
			for _, name := range []string{"#foo{", "#foo[", "#a", "#a/b"} {
				if _, err := cl.sendToIRC(ctx, matrixMessage(portalFor(keyOf[name]), event.MsgText, "to "+name, "", nil)); err != nil {
					t.Fatal(err)
				}
			}
			wantFoo := "PRIVMSG #foo{ :to #foo{"
			if mapping != "ascii" {
				wantFoo = "PRIVMSG #foo[ :to #foo{" // one channel; the server's spelling
			}
			wantWire(t, "room -> channel", w.barrier(), []string{wantFoo, "PRIVMSG #foo[ :to #foo[", "PRIVMSG #a :to #a", "PRIVMSG #a/b :to #a/b"})
		})
	}
}

// bridgev2 hands the connector the replied-to message as found by event ID, whatever room it is in.
// A Matrix user who names an event of a room they are not in (or of another user's private chat)
// must not get anything of it onto IRC: no text, no nick prefix, no +draft/reply tag with its msgid.
func TestAttackReplyToInvisibleEventNotLeaked(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags"}})
	joinedChannel(cl, "#here", "Bob")
	joinedChannel(cl, "#secret", "Carol")
	here := portalFor(cl.channelKey("#here"))
	ctx := context.Background()
	otherLogin := MakeUserLoginID("net", "@other:example.org")
	for _, tc := range []struct {
		name string
		room networkid.PortalKey
	}{
		{"a channel the sender is not in", cl.channelKey("#secret")},
		{"the same channel on another network", MakeChannelPortalKey("othernet", "#here")},
		{"another login's private chat", MakeDMPortalKey("net", "carol", otherLogin)},
		{"a portal ID that is not ours", networkid.PortalKey{ID: "#here"}},
	} {
		target := &database.Message{ID: "net/secretmsgid", Room: tc.room, SenderID: MakeUserID("net", "carol")}
		msg := matrixMessage(here, event.MsgText, "> <@carol:example.org> the secret\n\nyes",
			"<mx-reply><blockquote>the secret</blockquote></mx-reply>yes", target)
		if _, err := cl.sendToIRC(ctx, msg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		wantWire(t, tc.name, w.barrier(), []string{"PRIVMSG #here :yes"})
	}
	// The same reply to a message of this room is a reply (what makes the cases above meaningful).
	target := &database.Message{ID: "net/heremsgid", Room: here.PortalKey, SenderID: MakeUserID("net", "bob")}
	if _, err := cl.sendToIRC(ctx, matrixMessage(here, event.MsgText, "yes", "", target)); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "visible reply", w.barrier(), []string{"@+draft/reply=heremsgid PRIVMSG #here :Bob: yes"})
	// The old helper-level assertion, kept under its own name.
	t.Run("replyContext", TestReplyContextStaysInItsPortal)
}

// Per-room state must be keyed by room, never by event ID (or text) alone.
//   - reply targets: bridgev2 looks them up by event ID alone; two logins' private chats with the same
//     nick differ only by receiver, and a target in the other one must be ignored;
//   - the echo-message cache: a line we sent to #a must not swallow the same text said to #b;
//   - fallback message IDs: the same text at the same time in two rooms are two messages.
func TestAttackEventIDCacheNotSharedAcrossRooms(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{caps: []string{"message-tags", "echo-message"}})
	ctx := context.Background()

	// Reply target in another login's DM with the same nick.
	mine := portalFor(cl.dmKey("carol"))
	theirs := MakeDMPortalKey("net", "carol", MakeUserLoginID("net", "@other:example.org"))
	if mine.ID != theirs.ID {
		t.Fatal("test assumption: the two DM portals share an ID and differ by receiver")
	}
	cl.mu.Lock()
	cl.nicks["carol"] = "Carol"
	cl.mu.Unlock()
	target := &database.Message{ID: "net/theirmsg", Room: theirs, SenderID: MakeUserID("net", "carol")}
	if _, err := cl.sendToIRC(ctx, matrixMessage(mine, event.MsgText, "hello", "", target)); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "reply across receivers", w.barrier(), []string{"PRIVMSG Carol :hello"})

	// Echo cache: a line sent to #a; the server echoes it to #a (dropped), and someone using our nick
	// from another client says the same in #b (bridged, as ours).
	joinedChannel(cl, "#a")
	joinedChannel(cl, "#b")
	if _, err := cl.sendToIRC(ctx, matrixMessage(portalFor(cl.channelKey("#a")), event.MsgText, "same text", "", nil)); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "to #a", w.barrier(), []string{"PRIVMSG #a :same text"})
	incoming(t, cl, ":me!u@h PRIVMSG #b :same text")
	if evts := queued(cl); len(evts) != 1 || evts[0].GetPortalKey() != cl.channelKey("#b") {
		t.Fatalf("the echo of #a swallowed a line in #b: %d events", len(evts))
	}
	incoming(t, cl, ":me!u@h PRIVMSG #a :same text")
	if evts := queued(cl); len(evts) != 0 {
		t.Fatalf("echo in #a bridged again: %d events", len(evts))
	}

	// Fallback IDs (no msgid): same sender, text and time in two channels.
	incoming(t, cl, "@time=2026-01-02T03:04:05.000Z :Bob!b@h PRIVMSG #a :hi")
	incoming(t, cl, "@time=2026-01-02T03:04:05.000Z :Bob!b@h PRIVMSG #b :hi")
	evts := queued(cl)
	if len(evts) != 2 {
		t.Fatalf("%d events", len(evts))
	}
	idA := evts[0].(bridgev2.RemoteMessage).GetID()
	idB := evts[1].(bridgev2.RemoteMessage).GetID()
	if idA == idB {
		t.Errorf("one message ID %q for lines in two rooms", idA)
	}
}

// matrix-appservice-irc answered CTCP queries by default, which tells anyone on IRC which bridge and
// version a user is behind (and makes the bridge a reflector). sealbridge answers none unless the
// admin turns network.ctcp_replies on.
func TestAttackCTCPRepliesOffByDefault(t *testing.T) {
	var example config.Config
	if err := yaml.Unmarshal([]byte(config.ExampleYAML), &example); err != nil {
		t.Fatal(err)
	}
	if example.CTCPReplies {
		t.Error("the example config turns ctcp_replies on")
	}
	var zero config.Config
	if err := yaml.Unmarshal([]byte("networks: {lib: {address: x}}"), &zero); err != nil {
		t.Fatal(err)
	}
	if zero.CTCPReplies {
		t.Error("ctcp_replies defaults to on")
	}

	queries := []string{"\x01VERSION\x01", "\x01PING 123\x01", "\x01TIME\x01", "\x01CLIENTINFO\x01", "\x01version\x01", "\x01FINGER\x01", "\x01SOURCE\x01", "\x01USERINFO\x01"}
	cl, w := newWireClient(t, wireOpts{ctcp: example.CTCPReplies})
	for _, q := range queries {
		incoming(t, cl, ":Eve!e@h PRIVMSG me :"+q)
		incoming(t, cl, ":Eve!e@h PRIVMSG #chan :"+q)
	}
	wantWire(t, "CTCP with the default config", w.barrier(), nil)
	if n := len(queued(cl)); n != 0 {
		t.Errorf("%d CTCP queries bridged to Matrix", n)
	}

	// Turned on, VERSION is answered (so the silence above is the setting, not a broken test).
	cl, w = newWireClient(t, wireOpts{ctcp: true})
	incoming(t, cl, ":Eve!e@h PRIVMSG me :\x01VERSION\x01")
	wantWire(t, "CTCP VERSION with ctcp_replies on", w.barrier(), []string{"NOTICE Eve :\x01VERSION sealbridge\x01"})
	// Even then: no reply to a NOTICE (a reply loop between two bots), nothing unknown answered, and
	// the PING reply cannot smuggle a line.
	incoming(t, cl, ":Eve!e@h NOTICE me :\x01VERSION\x01")
	incoming(t, cl, ":Eve!e@h PRIVMSG me :\x01FINGER\x01")
	wantWire(t, "CTCP NOTICE and FINGER with ctcp_replies on", w.barrier(), nil)
}

// DCC offers a direct TCP connection to an address the sender chooses (file transfers, chats); a
// bridge that forwarded or answered it would expose the user's host or let IRC users reach
// arbitrary addresses through it. No form of DCC is ever bridged or answered, whatever the config.
func TestAttackDCCNeverBridged(t *testing.T) {
	for _, ctcp := range []bool{false, true} {
		cl, w := newWireClient(t, wireOpts{ctcp: ctcp})
		for _, dcc := range []string{
			"\x01DCC SEND evil.exe 2130706433 8080 1234\x01",
			"\x01DCC CHAT chat 2130706433 8080\x01",
			"\x01dcc send x 1 2 3\x01",
			"\x01DCC SEND unterminated 1 2 3",
			"\x01DCC\x01",
			"\x01Dcc RESUME x 1 2\x01",
		} {
			for _, line := range []string{
				":Eve!e@h PRIVMSG me :" + dcc,
				":Eve!e@h PRIVMSG #chan :" + dcc,
				":Eve!e@h NOTICE me :" + dcc,
			} {
				incoming(t, cl, line)
				if evts := queued(cl); len(evts) != 0 {
					t.Errorf("ctcp_replies=%v: %q bridged", ctcp, line)
				}
			}
		}
		wantWire(t, fmt.Sprintf("DCC with ctcp_replies=%v", ctcp), w.barrier(), nil)
		// A plain message right after is bridged: the queue is being watched.
		incoming(t, cl, ":Eve!e@h PRIVMSG me :DCC SEND is just text here")
		if evts := queued(cl); len(evts) != 1 {
			t.Errorf("plain message: %d events", len(evts))
		}
	}
}

// Whatever an IRC user types (HTML, entities, mIRC codes around tags) reaches formatted_body only
// as escaped text: the formatted body parses to the elements the converter emits and nothing else,
// and its text is the body.
func TestAttackHTMLFromIRCEscaped(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan", "Bob", "Eve")
	portal := portalFor(cl.channelKey("#chan"))
	allowed := map[string]bool{"strong": true, "em": true, "u": true, "del": true, "code": true, "font": true, "a": true, "br": true}
	for _, text := range []string{
		"<script>alert(1)</script>",
		"\x02<img src=x onerror=alert(1)>\x02",
		"\x0304<b onclick=alert(1)>red</b>",
		"Bob: <a href=\"javascript:alert(1)\">click</a>",
		"&lt;script&gt; &amp; &#60;b&#62;",
		"\x1d</em><script>x</script><em>\x1d",
		"<mx-reply><blockquote>fake quote</blockquote></mx-reply>",
		"\x11<pre>code</pre>\x11 <!-- comment --> <![CDATA[x]]>",
		"\"'><svg/onload=alert(1)>",
	} {
		incoming(t, cl, ":Eve!e@h PRIVMSG #chan :"+text)
		evts := queued(cl)
		if len(evts) != 1 {
			t.Fatalf("%q: %d events", text, len(evts))
		}
		evt, _ := asMessage(evts[0])
		conv, err := evt.ConvertMessageFunc(context.Background(), portal, nil, evt.Data)
		if err != nil {
			t.Fatal(err)
		}
		content := conv.Parts[0].Content
		if content.FormattedBody == "" {
			if strings.ContainsAny(text, "\x02\x03\x1d\x11") || strings.HasPrefix(text, "Bob:") {
				t.Errorf("%q: expected a formatted body", text)
			}
			continue
		}
		z := html.NewTokenizer(strings.NewReader(content.FormattedBody))
		var plain strings.Builder
	tokens:
		for {
			switch z.Next() {
			case html.ErrorToken:
				if z.Err() != io.EOF {
					t.Errorf("%q: %v", text, z.Err())
				}
				break tokens
			case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
				tok := z.Token()
				if !allowed[tok.Data] {
					t.Errorf("%q: element <%s> in formatted_body %q", text, tok.Data, content.FormattedBody)
				}
				for _, a := range tok.Attr {
					if a.Key != "href" && a.Key != "color" && a.Key != "data-mx-color" && a.Key != "data-mx-bg-color" {
						t.Errorf("%q: attribute %s in %q", text, a.Key, content.FormattedBody)
					}
					if a.Key == "href" && !strings.HasPrefix(a.Val, "https://matrix.to/#/@") {
						t.Errorf("%q: href %q", text, a.Val)
					}
				}
				if tok.Data == "br" {
					plain.WriteByte('\n')
				}
			case html.TextToken:
				plain.Write(z.Text())
			default:
				t.Errorf("%q: token %v in %q", text, z.Token(), content.FormattedBody)
			}
		}
		if plain.String() != content.Body {
			t.Errorf("%q: text of formatted_body %q is %q, body %q", text, content.FormattedBody, plain.String(), content.Body)
		}
	}
}

// The user's own IDENTIFY to NickServ (sent by the bridge, or by the user's other client through a
// bouncer) is never bridged, live or played back from history; other lines to services are.
func TestAttackOwnIdentifyNeverBridged(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	cl.dmPeers.add("nickserv")
	for _, line := range []string{
		"@batch=h1 :me!u@h PRIVMSG NickServ :IDENTIFY me hunter2",
		":me!u@h PRIVMSG NickServ :identify hunter2",
		":me!u@h PRIVMSG NickServ :SET PASSWORD newpass",
		":me!u@h PRIVMSG nickserv :GHOST me hunter2",
	} {
		incoming(t, cl, line)
	}
	if evts := queued(cl); len(evts) != 0 {
		m, _ := asMessage(evts[0])
		t.Fatalf("bridged %d of the user's services secrets, first %q", len(evts), m.Data.Text)
	}
	incoming(t, cl, ":me!u@h PRIVMSG NickServ :INFO me")
	if evts := queued(cl); len(evts) != 1 {
		t.Fatalf("an ordinary line to NickServ: %d events", len(evts))
	}
}
