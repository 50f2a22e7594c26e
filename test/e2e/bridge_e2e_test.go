//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	_ "github.com/lib/pq"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

const waitLong = 90 * time.Second

// homeserver is what the story needs of Dendrite or Synapse.
type homeserver interface {
	Stop() error
	EventTypesInRoom(roomID string) (map[string]int, error)
}

// startHomeserver starts the named homeserver with the bridge's registration.
func startHomeserver(ctx context.Context, kind, dir string, registrations ...string) (hs homeserver, url, serverName string, err error) {
	switch kind {
	case "dendrite":
		d, err := stack.StartDendrite(ctx, dir, registrations...)
		if err != nil {
			return nil, "", "", err
		}
		return d, d.URL, d.ServerName, nil
	case "synapse":
		s, err := stack.StartSynapse(ctx, dir, registrations...)
		if err != nil {
			return nil, "", "", err
		}
		return s, s.URL, s.ServerName, nil
	}
	return nil, "", "", fmt.Errorf("unknown homeserver %q", kind)
}

// TestBridge runs the whole user story on each homeserver (Dendrite and Synapse) and each database
// (SQLite and PostgreSQL): an admin sets the bridge up, a Matrix user logs in through the bot (with
// and without SASL), joins a channel, talks both ways with plain IRC users, opens DMs from both
// sides; then the homeserver's own database must hold no plaintext message in any room, and the
// SASL password must be in neither the bridge database nor its log.
func TestBridge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	base := os.Getenv("SEALBRIDGE_E2E_DIR") // kept for inspection when set
	if base == "" {
		base = t.TempDir()
	} else {
		must(t, os.RemoveAll(base))
	}
	ircd, err := stack.StartIRC(ctx, filepath.Join(base, "irc"))
	if err != nil {
		t.Fatal(err)
	}
	defer ircd.Stop()
	pg, err := stack.StartPostgres(ctx, filepath.Join(base, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()

	for _, hsKind := range []string{"dendrite", "synapse"} {
		for _, db := range []string{"sqlite", "postgres"} {
			// a per-run tag keeps nicks and channels of the runs apart on the shared IRC server
			tag := hsKind[:1] + db[:1]
			t.Run(hsKind+"/"+db, func(t *testing.T) {
				dir := filepath.Join(base, hsKind+"-"+db)
				must(t, os.MkdirAll(dir, 0o700))
				if db == "sqlite" {
					dbPath := filepath.Join(dir, "sealbridge.db")
					runBridgeStory(t, ctx, ircd, hsKind, dir, "sqlite3-fk-wal", stack.SQLiteURI(dbPath), tag, func(secret string) []string {
						var hits []string
						for _, f := range []string{dbPath, dbPath + "-wal"} {
							if strings.Contains(readFile(f), secret) {
								hits = append(hits, f)
							}
						}
						return hits
					})
					return
				}
				uri, err := pg.CreateDatabase(ctx, "sealbridge_"+tag)
				if err != nil {
					t.Fatal(err)
				}
				runBridgeStory(t, ctx, ircd, hsKind, dir, "postgres", uri, tag, func(secret string) []string {
					return postgresTablesContaining(t, uri, secret)
				})
			})
		}
	}
}

func runBridgeStory(t *testing.T, ctx context.Context, ircd *stack.IRC, hsKind, dir, dbType, dbURI, tag string, dbContains func(string) []string) {
	configPath, regPath, err := stack.WriteBridgeConfig(stack.BridgeSetup{
		Binary: bridgeBinary, Dir: dir, DBType: dbType, DBURI: dbURI, ServerName: "localhost",
		IRCAddr: "127.0.0.1", IRCPort: ircd.TLSPort, IRCTLS: true, IRCCAFile: ircd.CAFile,
		MetricsListen: fmt.Sprintf("127.0.0.1:%d", deadPort(t)),
		ExtraNetworks: map[string]any{
			// nobody listens there: logins to it must fail cleanly
			"deadnet": map[string]any{"address": "127.0.0.1", "port": deadPort(t), "tls": false},
			// the real server's TLS port, but without trusting its CA: verification must fail
			"untrusted": map[string]any{"address": "127.0.0.1", "port": ircd.TLSPort, "tls": true},
			// the real server again: each login from its own loopback address, at most one at a time
			"bindnet": map[string]any{"address": "127.0.0.1", "port": ircd.Port, "tls": false,
				"bind_address": "127.0.1.0/24", "max_connections": 1},
			// and through its WEBIRC gateway: each login with its own pseudonymous host
			"webnet": map[string]any{"address": "127.0.0.1", "port": ircd.Port, "tls": false,
				"webirc": map[string]any{"password": ircd.WebIRCPassword}},
			// and from 127.0.2.1, where the server asks the bridge's identd for each login's username
			"identnet": map[string]any{"address": "127.0.0.1", "port": ircd.Port, "tls": false,
				"bind_address": "127.0.2.1", "username": "sb{id}"},
		},
	})
	must(t, err)
	hs, hsURL, serverName, err := startHomeserver(ctx, hsKind, filepath.Join(dir, hsKind), regPath)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Stop()
	must(t, stack.SetHomeserver(configPath, hsURL, serverName))
	// Public media links (for files sent to IRC) are served by the appservice listener.
	must(t, stack.EditYAML(configPath, func(m map[string]any) {
		// The identd on port 113 of identnet's source address (a privileged port: as root only).
		stack.SetYAML(m, map[string]any{"enabled": os.Geteuid() == 0, "listen": "127.0.2.1:113"}, "network", "identd")
		port := stack.GetYAML(m, "appservice", "port")
		stack.SetYAML(m, fmt.Sprintf("http://127.0.0.1:%v", port), "appservice", "public_address")
		stack.SetYAML(m, true, "public_media", "enabled")
		// Permission levels below user, for permissionsStory.
		stack.SetYAML(m, "commands", "bridge", "permissions", "@frank:localhost")
		stack.SetYAML(m, "relay", "bridge", "permissions", "@gina:localhost")
		// Servers of the user's choice: the IRC server's plain-text port by address (userNetworkStory).
		stack.SetYAML(m, map[string]any{
			"enabled": true, "allow": []string{"127.0.0.2", "127.0.0.3"}, "deny": []string{"*.internal"},
			"ports": []int{ircd.Port}, "allow_plaintext": true, "allow_private_addresses": true, "max_per_user": 1,
		}, "network", "user_networks")
	}))
	cfg, err := stack.ReadYAML(configPath)
	must(t, err)
	br, err := stack.StartBridge(ctx, bridgeBinary, configPath)
	must(t, err)
	defer br.Stop()
	defer func() {
		if t.Failed() {
			t.Log(failureLog(br.LogPath))
			t.Log("Matrix client log, last 40 lines:\n" + tail(filepath.Join(dir, "mxclient.log"), 40))
			keepLogs(t, br.LogPath, filepath.Join(dir, "mxclient.log"))
		}
	}()

	st := &stories{t: t}
	// Nicks are per run so that the two runs never meet on the shared IRC server.
	bobNick, carolNick, aliceNick, saslNick := tag+"bob", tag+"carol", tag+"alice", tag+"sasl"
	channel := "#seal-" + tag
	saslPassword := "s3cret-" + tag + "-Pw!" + time.Now().Format("150405.000")
	must(t, ircd.RegisterAccount(ctx, saslNick, saslPassword))

	bob := newIRCUser(t, ctx, ircd, bobNick)
	carol := newIRCUser(t, ctx, ircd, carolNick)
	bob.send(t, "JOIN", channel)
	bob.waitFor(t, "JOIN echo", waitLong, func(m *ircmsg.Message) bool { return m.Command == "JOIN" && strings.EqualFold(m.Nick(), bobNick) })

	mx, err := mxclient.New(ctx, filepath.Join(dir, "mxclient.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer mx.Close()
	userID, _, err := mx.Login(ctx, hsURL, "alice", "alice-password", true)
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := mx.CreateDM(ctx, br.BotMXID)
	if err != nil {
		t.Fatal(err)
	}
	// Homeservers send an appservice the events of rooms its users have joined, so (like a person)
	// wait for the bot to accept the invite before talking to it.
	waitMembership(t, mx, mgmt, br.BotMXID, "join")
	waitCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, waitLong) }
	command := func(t *testing.T, text string) {
		t.Helper()
		if _, err := mx.Send(ctx, mgmt, "m.text", text, ""); err != nil {
			t.Fatalf("sending %q: %v", strings.Fields(text)[0], err)
		}
	}
	botSays := func(t *testing.T, substr string) string {
		t.Helper()
		c, cancel := waitCtx()
		defer cancel()
		ev, err := mx.WaitEvent(c, func(e mxclient.Event) bool {
			return e.RoomID == mgmt && e.Sender == br.BotMXID && e.Type == "m.room.message" && strings.Contains(e.Body(), substr)
		})
		if err != nil {
			t.Fatalf("the bot never said %q: %v\nbridge log:\n%s", substr, err, tail(br.LogPath, 30))
		}
		return ev.Body()
	}
	// The bot joins the DM and answers help with the bridge's commands.
	command(t, "help")
	botSays(t, "join")

	// A wrong SASL password is refused with a clear message and leaves no login behind.
	command(t, "login sasl testnet "+saslNick+" "+saslNick+" wrong-password")
	botSays(t, "rejected the SASL account name or password")
	command(t, "list-logins")
	botSays(t, "You're not logged in")

	// On networks without SASL a registered nick identifies to NickServ: a wrong password is refused
	// with NickServ's answer, the right one connects only once NickServ has accepted it.
	botSaysFrom := func(t *testing.T, from int, substr string) string {
		t.Helper()
		c, cancel := waitCtx()
		defer cancel()
		ev, err := mx.WaitEventFrom(c, from, func(e mxclient.Event) bool {
			return e.RoomID == mgmt && e.Sender == br.BotMXID && e.Type == "m.room.message" && strings.Contains(e.Body(), substr)
		})
		if err != nil {
			var said []string
			for _, e := range mx.Events()[from:] {
				if e.RoomID == mgmt && e.Sender == br.BotMXID {
					said = append(said, e.Body())
				}
			}
			t.Fatalf("the bot never said %q: %v; it said:\n%s", substr, err, strings.Join(said, "\n"))
		}
		return ev.Body()
	}
	from := mx.EventCount()
	command(t, "login nickserv testnet "+saslNick+" wrong-password")
	botSaysFrom(t, from, "NickServ on Test IRC refused the password")
	from = mx.EventCount()
	command(t, "login nickserv testnet "+saslNick+" "+saslPassword)
	botSaysFrom(t, from, "Connected to Test IRC as "+saslNick)
	from = mx.EventCount()
	command(t, "logout testnet:"+userID)
	botSaysFrom(t, from, "Logged out")

	logins := loginScene{
		ircd: ircd, mx: mx, userID: userID, tag: tag, bob: bob,
		command: command, botSaysFrom: botSaysFrom, dbContains: dbContains,
	}
	st.story("certfp", func(t *testing.T) { certFPStory(t, ctx, logins) })
	st.story("user-networks", func(t *testing.T) { userNetworkStory(t, ctx, logins, cfg, serverName, bobNick) })

	// Unreachable servers, untrusted certificates and nicks in use are refused with a clear message.
	command(t, "login nick deadnet "+aliceNick)
	botSays(t, "could not connect to deadnet")
	command(t, "login nick untrusted "+aliceNick)
	botSays(t, "certificate")
	command(t, "login nick testnet "+bobNick)
	botSays(t, "already in use")
	command(t, "list-logins")
	botSays(t, "You're not logged in")

	// Log in with a plain nick.
	command(t, "login nick testnet "+aliceNick)
	botSays(t, "Connected to Test IRC as "+aliceNick)

	// Join a channel: the bridge creates an encrypted portal and invites us.
	command(t, "join "+channel)
	chanRoom := waitRoomNamed(t, mx, channel)
	c, cancel := waitCtx()
	_, err = mx.WaitEvent(c, func(e mxclient.Event) bool { return e.RoomID == chanRoom && e.Type == "m.room.encryption" })
	cancel()
	if err != nil {
		t.Fatalf("channel portal is not encrypted: %v", err)
	}
	plaintextNotice := func(room string) {
		t.Helper()
		c, cancel := waitCtx()
		defer cancel()
		if _, err := mx.WaitEvent(c, func(e mxclient.Event) bool {
			return e.RoomID == room && e.Sender == br.BotMXID && e.MsgType() == "m.notice" && strings.Contains(e.Body(), "plaintext")
		}); err != nil {
			t.Errorf("no plaintext notice in new portal %s: %v", room, err)
		}
	}
	plaintextNotice(chanRoom)
	bob.waitFor(t, "alice joining", waitLong, func(m *ircmsg.Message) bool { return m.Command == "JOIN" && strings.EqualFold(m.Nick(), aliceNick) })
	bobMXID := ghostMXID(cfg, serverName, "testnet/"+bobNick)

	// IRC -> Matrix: formatting and /me survive.
	bob.send(t, "PRIVMSG", channel, "hello \x02bold\x02 and \x1ditalic\x1d")
	ev := waitMessage(t, mx, chanRoom, bobMXID, "hello bold and italic")
	if f := ev.FormattedBody(); !strings.Contains(f, "<strong>bold</strong>") || !strings.Contains(f, "<em>italic</em>") {
		t.Errorf("formatting lost IRC->Matrix: %q", f)
	}
	bob.send(t, "PRIVMSG", channel, "\x01ACTION waves\x01")
	if ev = waitMessage(t, mx, chanRoom, bobMXID, "waves"); ev.MsgType() != "m.emote" {
		t.Errorf("IRC /me arrived as %s, want m.emote", ev.MsgType())
	}

	// Matrix -> IRC: formatting as mIRC codes, emote as CTCP ACTION.
	_, err = mx.Send(ctx, chanRoom, "m.text", "hi bold there", "hi <strong>bold</strong> there")
	must(t, err)
	bob.waitFor(t, "formatted message from alice", waitLong, privmsgFrom(aliceNick, channel, "hi \x02bold\x02 there"))
	_, err = mx.Send(ctx, chanRoom, "m.emote", "dances", "")
	must(t, err)
	bob.waitFor(t, "emote from alice", waitLong, privmsgFrom(aliceNick, channel, "\x01ACTION dances\x01"))

	// Mentions both ways: an IRC nick mention of us becomes a pill; a pill becomes the nick.
	bob.send(t, "PRIVMSG", channel, aliceNick+": look here")
	ev = waitMessage(t, mx, chanRoom, bobMXID, aliceNick+": look here")
	if !strings.Contains(ev.FormattedBody(), "https://matrix.to/#/"+userID) {
		t.Errorf("mention of our nick is not a pill: %q", ev.FormattedBody())
	}
	_, err = mx.Send(ctx, chanRoom, "m.text", bobNick+": pinged", `<a href="https://matrix.to/#/`+bobMXID+`">`+bobNick+`</a>: pinged`)
	must(t, err)
	bob.waitFor(t, "pill as nick", waitLong, privmsgFrom(aliceNick, channel, bobNick+": pinged"))

	// Replies both ways: a Matrix reply reaches IRC as "nick: text" with the +draft/reply tag naming
	// the IRC message; an IRC reply tag becomes a Matrix reply to the right event.
	bob.send(t, "PRIVMSG", channel, "question one")
	echo := bob.waitFor(t, "echo with msgid", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Nick(), bobNick) && m.Params[len(m.Params)-1] == "question one"
	})
	_, questionMsgID := echo.GetTag("msgid")
	question := waitMessage(t, mx, chanRoom, bobMXID, "question one")
	_, err = mx.SendEvent(ctx, chanRoom, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "answer one",
		"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": question.EventID}},
	})
	must(t, err)
	answer := bob.waitFor(t, "the reply", waitLong, privmsgFrom(aliceNick, channel, bobNick+": answer one"))
	if _, tag := answer.GetTag("+draft/reply"); questionMsgID == "" || tag != questionMsgID {
		t.Errorf("reply tag = %q, want the question's msgid %q", tag, questionMsgID)
	}
	must(t, bob.c.SendTagged(map[string]string{"+draft/reply": questionMsgID}, "PRIVMSG", channel, "follow up"))
	followUp := waitMessage(t, mx, chanRoom, bobMXID, "follow up")
	if followUp.ReplyTo != question.EventID {
		t.Errorf("IRC reply arrived as a reply to %q on the wire (as Element reads it), want %s", followUp.ReplyTo, question.EventID)
	}

	// Topic, joins, nick changes and parts show in the room.
	bob.send(t, "TOPIC", channel, "the new topic")
	c, cancel = waitCtx()
	_, err = mx.WaitEvent(c, func(e mxclient.Event) bool {
		topic, _ := e.Content["topic"].(string)
		return e.RoomID == chanRoom && e.Type == "m.room.topic" && topic == "the new topic"
	})
	cancel()
	if err != nil {
		t.Errorf("topic change not bridged: %v", err)
	}
	carolMXID := ghostMXID(cfg, serverName, "testnet/"+carolNick)
	carol2 := carolNick + "2"
	carol2MXID := ghostMXID(cfg, serverName, "testnet/"+carol2)
	carol.send(t, "JOIN", channel)
	waitMembership(t, mx, chanRoom, carolMXID, "join")
	carol.send(t, "NICK", carol2)
	waitMembership(t, mx, chanRoom, carolMXID, "leave")
	waitMembership(t, mx, chanRoom, carol2MXID, "join")
	carol.send(t, "PART", channel, "bye")
	waitMembership(t, mx, chanRoom, carol2MXID, "leave")
	carol.send(t, "NICK", carolNick)
	carol.waitFor(t, "nick back", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "NICK" && len(m.Params) > 0 && m.Params[0] == carolNick
	})
	scene := moderationScene{
		mx: mx, bob: bob, carol: carol, channel: channel, chanRoom: chanRoom,
		aliceNick: aliceNick, carolNick: carolNick, aliceMXID: userID, carolMXID: carolMXID,
	}
	st.story("moderation", func(t *testing.T) { moderationStory(t, ctx, scene) })
	st.story("tags", func(t *testing.T) { tagsStory(t, ctx, scene, bobMXID) })
	st.story("invite", func(t *testing.T) { inviteStory(t, ctx, scene, logins) })

	// A private message from IRC opens a new encrypted DM whose first message decrypts.
	bob.send(t, "PRIVMSG", aliceNick, "psst, first message")
	dmEv := waitMessage(t, mx, "", bobMXID, "psst, first message")
	if first, _ := mx.FirstReport(dmEv.EventID); first.DecryptionError != "" {
		t.Logf("first DM message was at first undecryptable (%s), decrypted later", first.DecryptionError)
	}
	bobDM := dmEv.RoomID
	if bobDM == chanRoom || !dmEv.Encrypted {
		t.Fatalf("the IRC private message arrived in room %s (encrypted=%v), not in a new encrypted DM", bobDM, dmEv.Encrypted)
	}
	plaintextNotice(bobDM)
	_, err = mx.Send(ctx, bobDM, "m.text", "reply in private", "")
	must(t, err)
	bob.waitFor(t, "private reply", waitLong, privmsgFrom(aliceNick, bobNick, "reply in private"))

	// CTCP: DCC is never bridged, and CTCP queries get no reply (ctcp_replies is off by default).
	bob.send(t, "PRIVMSG", aliceNick, "\x01DCC SEND evil.exe 2130706433 4444 1000\x01")
	bob.send(t, "PRIVMSG", aliceNick, "\x01VERSION\x01")
	bob.send(t, "PRIVMSG", aliceNick, "after ctcp")
	waitMessage(t, mx, bobDM, bobMXID, "after ctcp")
	for _, e := range mx.Events() {
		if e.RoomID == bobDM && (strings.Contains(e.Body(), "DCC") || strings.Contains(e.Body(), "VERSION")) {
			t.Errorf("a CTCP request reached Matrix: %s", e)
		}
	}
	for _, m := range bob.messages() {
		if m.Command == "NOTICE" && strings.EqualFold(m.Nick(), aliceNick) && strings.Contains(m.Params[len(m.Params)-1], "VERSION") {
			t.Errorf("the bridge answered CTCP VERSION although ctcp_replies is off: %q", m.Params)
		}
	}

	// A DM opened from Matrix with `pm`.
	command(t, "pm "+carolNick)
	carolDM := waitRoomWithMember(t, mx, carolMXID, chanRoom, bobDM, mgmt)
	// Like a person, talk once the room has shown up with its notice (sending in the same instant
	// as the join sometimes left the bot without the room key, see the test notes).
	plaintextNotice(carolDM)
	_, err = mx.Send(ctx, carolDM, "m.text", "hello carol", "")
	must(t, err)
	carol.waitFor(t, "DM from alice", waitLong, privmsgFrom(aliceNick, carolNick, "hello carol"))
	carol.send(t, "PRIVMSG", aliceNick, "hi alice")
	waitMessage(t, mx, carolDM, carolMXID, "hi alice")

	// Health and metrics for the admin: liveness and readiness answer 200, and the Prometheus
	// endpoint counts what this test bridged both ways and the connected login.
	for _, path := range []string{"/_matrix/mau/live", "/_matrix/mau/ready"} {
		if code, _ := httpGet(t, br.AppserviceURL+path); code != 200 {
			t.Errorf("%s answered %d", path, code)
		}
	}
	_, scrape := httpGet(t, br.MetricsURL)
	for _, want := range []string{
		`sealbridge_messages_bridged_total{direction="irc_to_matrix",network="testnet"}`,
		`sealbridge_messages_bridged_total{direction="matrix_to_irc",network="testnet"}`,
		`sealbridge_send_latency_seconds_count{direction="irc_to_matrix"}`,
		`sealbridge_irc_connections{state="connected"}`,
	} {
		if v := metricValue(scrape, want); v < 1 {
			t.Errorf("metric %s = %v, want at least 1", want, v)
		}
	}
	if !regexp.MustCompile(`(?m)^sealbridge_build_info\{commit="[^"]+",goversion="go[^"]+",version="v[^"]+"\} 1$`).MatchString(scrape) {
		t.Errorf("no sealbridge_build_info with the version and commit in the scrape")
	}

	// Log out and in again with SASL: the account registered in Anope.
	from = mx.EventCount()
	command(t, "logout testnet:"+userID)
	botSaysFrom(t, from, "Logged out")
	from = mx.EventCount()
	command(t, "login sasl testnet "+saslNick+" "+saslNick+" "+saslPassword)
	botSaysFrom(t, from, "Connected to Test IRC as "+saslNick)
	command(t, "join "+channel)
	bob.waitFor(t, "the SASL login joining", waitLong, func(m *ircmsg.Message) bool { return m.Command == "JOIN" && strings.EqualFold(m.Nick(), saslNick) })
	bob.send(t, "PRIVMSG", channel, "welcome back")
	waitMessage(t, mx, chanRoom, bobMXID, "welcome back")

	// relogin replaces the connection of the same login: a wrong password keeps the old one, the
	// right one reconnects and rejoins the login's channels.
	loginID := "testnet:" + userID
	from = mx.EventCount()
	command(t, "relogin "+loginID+" sasl testnet "+saslNick+" "+saslNick+" not-the-password")
	botSaysFrom(t, from, "rejected the SASL account name or password")
	seenBefore := len(bob.messages())
	fromEvent := mx.EventCount()
	command(t, "relogin "+loginID+" sasl testnet "+saslNick+" "+saslNick+" "+saslPassword)
	c, cancel = waitCtx()
	_, err = mx.WaitEventFrom(c, fromEvent, func(e mxclient.Event) bool {
		return e.RoomID == mgmt && e.Sender == br.BotMXID && strings.Contains(e.Body(), "Connected to Test IRC as "+saslNick)
	})
	cancel()
	if err != nil {
		t.Fatalf("relogin with the right password did not connect: %v", err)
	}
	bob.waitForAfter(t, seenBefore, "the relogin rejoining", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), saslNick) && strings.EqualFold(m.Params[0], channel)
	})
	bob.send(t, "PRIVMSG", channel, "after relogin")
	waitMessage(t, mx, chanRoom, bobMXID, "after relogin")

	// A second Matrix user shares the channel portal: every IRC line shows once, and alice's own
	// lines are not bridged back as her IRC ghost by dave's connection.
	mx2, err := mxclient.New(ctx, filepath.Join(dir, "mxclient-dave.log"))
	must(t, err)
	defer mx2.Close()
	_, _, err = mx2.Login(ctx, hsURL, "dave", "dave-password", true)
	must(t, err)
	mgmt2 := botLogin(t, ctx, mx2, br.BotMXID, "login nick testnet "+tag+"dave")
	_, err = mx2.Send(ctx, mgmt2, "m.text", "join "+channel, "")
	must(t, err)
	c, cancel = waitCtx()
	_, err = mx2.WaitInvite(c, func(inv mxclient.Invite) bool { return inv.RoomID == chanRoom })
	cancel()
	if err != nil {
		t.Fatalf("dave was not invited to the shared channel portal: %v", err)
	}
	waitMembership(t, mx2, chanRoom, mx2.UserID(), "join")
	// One user can never drive or log out another user's login.
	daveSays := func(t *testing.T, from int, substr string) {
		t.Helper()
		c, cancel := waitCtx()
		defer cancel()
		if _, err := mx2.WaitEventFrom(c, from, func(e mxclient.Event) bool {
			return e.RoomID == mgmt2 && e.Sender == br.BotMXID && strings.Contains(e.Body(), substr)
		}); err != nil {
			t.Fatalf("the bot never told dave %q: %v", substr, err)
		}
	}
	from = mx2.EventCount()
	_, err = mx2.Send(ctx, mgmt2, "m.text", "logout "+loginID, "")
	must(t, err)
	daveSays(t, from, "not found")
	from = mx2.EventCount()
	_, err = mx2.Send(ctx, mgmt2, "m.text", "relogin "+loginID+" nick testnet "+tag+"hijack", "")
	must(t, err)
	daveSays(t, from, "not found")
	if !alicesLoginAlive(t, bob, saslNick) {
		t.Fatal("alice's IRC connection did not survive dave's attempts")
	}
	for _, auth := range []string{"", "Bearer wrong-secret-0123456789"} {
		req, _ := http.NewRequest(http.MethodGet, br.AppserviceURL+"/_matrix/provision/v3/logins?user_id="+userID, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("provisioning API with auth %q answered %d, want 401", auth, resp.StatusCode)
		}
	}
	// With Matrix auth (provisioning.allow_matrix_auth, on by default) dave's own access token
	// speaks for dave only: not as alice, and not for alice's login.
	daveToken, err := stack.PasswordLogin(ctx, hsURL, "dave", "dave-password")
	must(t, err)
	provision := func(method, path, asUser string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, br.AppserviceURL+"/_matrix/provision/v3/"+path+"?user_id="+url.QueryEscape(asUser), nil)
		req.Header.Set("Authorization", "Bearer "+daveToken)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := provision(http.MethodGet, "logins", userID); code != http.StatusUnauthorized {
		t.Errorf("dave's token as alice: logins answered %d %s, want 401", code, body)
	}
	if code, body := provision(http.MethodGet, "logins", mx2.UserID()); code != http.StatusOK || strings.Contains(body, loginID) {
		t.Errorf("dave's own logins: %d %s (want 200, without alice's %s)", code, body, loginID)
	}
	if code, body := provision(http.MethodPost, "logout/"+url.PathEscape(loginID), mx2.UserID()); code != http.StatusNotFound {
		t.Errorf("dave logging out alice's login through the API: %d %s, want 404", code, body)
	}
	if code, body := provision(http.MethodPost, "logout/"+url.PathEscape(loginID), userID); code != http.StatusUnauthorized {
		t.Errorf("dave's token logging out alice's login as alice: %d %s, want 401", code, body)
	}
	if !alicesLoginAlive(t, bob, saslNick) {
		t.Fatal("alice's IRC connection did not survive dave's provisioning requests")
	}

	bob.send(t, "PRIVMSG", channel, "shared hello")
	waitMessage(t, mx2, chanRoom, bobMXID, "shared hello")
	_, err = mx.Send(ctx, chanRoom, "m.text", "from alice to all", "")
	must(t, err)
	bob.waitFor(t, "alice's line", waitLong, privmsgFrom(saslNick, channel, "from alice to all"))
	bob.send(t, "PRIVMSG", channel, "barrier")
	waitMessage(t, mx2, chanRoom, bobMXID, "barrier")
	waitMessage(t, mx, chanRoom, bobMXID, "barrier")
	for who, client := range map[string]*mxclient.Client{"alice": mx, "dave": mx2} {
		counts := map[string]int{}
		for _, e := range client.Events() {
			if e.RoomID == chanRoom && e.Type == "m.room.message" {
				counts[e.Sender+" "+e.Body()]++
			}
		}
		if counts[bobMXID+" shared hello"] != 1 || counts[userID+" from alice to all"] != 1 {
			t.Errorf("%s sees in the shared portal: %v (want each line once, from its author)", who, counts)
		}
		saslGhost := ghostMXID(cfg, serverName, "testnet/"+saslNick)
		if counts[saslGhost+" from alice to all"] != 0 {
			t.Errorf("%s sees alice's own line echoed back by her IRC ghost", who)
		}
	}

	st.story("permissions", func(t *testing.T) { permissionsStory(t, ctx, logins, hsURL, dir, br.BotMXID) })
	st.story("admin", func(t *testing.T) { adminStory(t, ctx, logins, hsURL, dir, br.BotMXID, saslNick, bobNick) })
	st.story("commands", func(t *testing.T) {
		commandsStory(t, ctx, logins, channel, chanRoom, saslNick, bobNick, bobMXID)
	})
	st.story("identity", func(t *testing.T) {
		identityStory(t, ctx, logins, func(t *testing.T, text string) {
			_, err := mx2.Send(ctx, mgmt2, "m.text", text, "")
			must(t, err)
		}, daveSays, mx2.EventCount)
	})
	st.story("relay", func(t *testing.T) {
		relayStory(t, ctx, relayScene{
			hsURL: hsURL, dir: dir, botMXID: br.BotMXID, alice: mx, aliceNick: saslNick,
			chanRoom: chanRoom, channel: channel, bob: bob, bobMXID: bobMXID,
		})
	})

	// A line the IRC server refuses (a moderated channel, without voice) fails for its sender with
	// the server's reason: labeled-response ties the 404 to the message.
	modChannel := "#mod-" + tag
	bob.send(t, "JOIN", modChannel)
	bob.waitFor(t, "JOIN of the moderated channel", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), bobNick) && strings.EqualFold(m.Params[0], modChannel)
	})
	bob.send(t, "MODE", modChannel, "+m")
	bob.waitFor(t, "MODE +m", waitLong, func(m *ircmsg.Message) bool { return m.Command == "MODE" && strings.EqualFold(m.Params[0], modChannel) })
	command(t, "join "+modChannel)
	modRoom := waitRoomNamed(t, mx, modChannel)
	from = mx.EventCount()
	_, err = mx.Send(ctx, modRoom, "m.text", "can anyone hear me", "")
	must(t, err)
	c, cancel = waitCtx()
	refused, err := mx.WaitEventFrom(c, from, func(e mxclient.Event) bool {
		return e.RoomID == modRoom && e.Sender == br.BotMXID && strings.Contains(e.Body(), "not sent to IRC")
	})
	cancel()
	if err != nil {
		t.Fatalf("a line refused by the IRC server did not fail for its sender: %v", err)
	}
	if !strings.Contains(refused.Body(), "refused it") {
		t.Errorf("refusal notice: %q", refused.Body())
	}
	// The admin's metrics count it as undelivered, for that reason.
	_, scrape = httpGet(t, br.MetricsURL)
	if series := `sealbridge_undelivered_messages_total{direction="matrix_to_irc",reason="refused"}`; metricValue(scrape, series) < 1 {
		t.Errorf("metric %s = %v after the refusal, want at least 1", series, metricValue(scrape, series))
	}

	// Files from Matrix: refused (with the reason) until a room admin turns media links on, which
	// posts a warning; then a file reaches IRC as a link that serves it decrypted.
	fileData := []byte("sealbridge attachment for " + tag + "\n")
	from = mx.EventCount()
	_, err = mx.SendFile(ctx, chanRoom, "m.file", "notes.txt", "text/plain", fileData)
	must(t, err)
	botSaysIn := func(room, substr string) {
		t.Helper()
		c, cancel := waitCtx()
		defer cancel()
		if _, err := mx.WaitEventFrom(c, from, func(e mxclient.Event) bool {
			return e.RoomID == room && e.Sender == br.BotMXID && strings.Contains(e.Body(), substr)
		}); err != nil {
			t.Fatalf("the bot never said %q in the room: %v", substr, err)
		}
	}
	botSaysIn(chanRoom, "files are not sent to IRC")
	from = mx.EventCount()
	_, err = mx.Send(ctx, chanRoom, "m.text", "!sb media-links on", "")
	must(t, err)
	botSaysIn(chanRoom, "Media links are on")
	seen := len(bob.messages())
	_, err = mx.SendFile(ctx, chanRoom, "m.file", "notes.txt", "text/plain", fileData)
	must(t, err)
	fileLine := bob.waitForAfter(t, seen, "the file as a link", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Nick(), saslNick) && strings.HasPrefix(m.Params[len(m.Params)-1], "notes.txt http")
	})
	link := strings.Fields(fileLine.Params[len(fileLine.Params)-1])[1]
	if code, body := httpGet(t, link); code != 200 || body != string(fileData) {
		t.Errorf("the file link %s answered %d with %q, want the decrypted file", link, code, body)
	}

	// A keyed (+k) channel: the key is sealed at rest and used again on rejoin.
	keyChannel, channelKey := "#key-"+tag, "chan-key-"+tag+"-42"
	bob.send(t, "JOIN", keyChannel)
	bob.waitFor(t, "JOIN of the keyed channel", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), bobNick) && strings.EqualFold(m.Params[0], keyChannel)
	})
	bob.send(t, "MODE", keyChannel, "+k", channelKey)
	bob.waitFor(t, "MODE +k", waitLong, func(m *ircmsg.Message) bool { return m.Command == "MODE" && strings.EqualFold(m.Params[0], keyChannel) })
	joinCommand, err := mx.Send(ctx, mgmt, "m.text", "join "+keyChannel+" "+channelKey, "")
	must(t, err)
	joinedKeyed := func(m *ircmsg.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Nick(), saslNick) && strings.EqualFold(m.Params[0], keyChannel)
	}
	bob.waitFor(t, "alice joining the keyed channel", waitLong, joinedKeyed)
	keyRoom := waitRoomNamed(t, mx, keyChannel)
	// The command that carried the key is redacted like a password, and no answer repeats it.
	c, cancel = waitCtx()
	if _, err := mx.WaitEvent(c, func(e mxclient.Event) bool { return e.RoomID == mgmt && e.Redacts == joinCommand }); err != nil {
		t.Errorf("the join command with the channel key was not redacted: %v", err)
	}
	cancel()
	for _, e := range mx.Events() {
		if e.RoomID == mgmt && e.Sender == br.BotMXID && strings.Contains(e.Body(), channelKey) {
			t.Errorf("the bot repeated the channel key: %q", e.Body())
		}
	}

	// A restart of the bridge: the login reconnects from the database and rejoins its channels,
	// the keyed one with its unsealed key, and the portals carry on.
	fromRestart := mx.EventCount()
	br.Stop()
	bob.waitFor(t, "alice quitting", waitLong, func(m *ircmsg.Message) bool { return m.Command == "QUIT" && strings.EqualFold(m.Nick(), saslNick) })
	seen = len(bob.messages())
	br, err = stack.StartBridge(ctx, bridgeBinary, configPath)
	must(t, err)
	defer br.Stop()
	bob.waitForAfter(t, seen, "alice rejoining the keyed channel after restart", waitLong, joinedKeyed)
	// Alice and dave share a channel: whichever login is back in it first lists it without the
	// other, and the other's user stays in the room all the same.
	for _, nick := range []string{saslNick, tag + "dave"} {
		bob.waitForAfter(t, seen, nick+" rejoining the shared channel after restart", waitLong, func(m *ircmsg.Message) bool {
			return m.Command == "JOIN" && strings.EqualFold(m.Nick(), nick) && strings.EqualFold(m.Params[0], channel)
		})
	}
	bob.send(t, "PRIVMSG", channel, "shared after the restart")
	waitMessage(t, mx, chanRoom, bobMXID, "shared after the restart")
	for _, e := range mx.Events()[fromRestart:] {
		if e.RoomID == chanRoom && e.Type == "m.room.member" && e.StateKey != nil &&
			(*e.StateKey == userID || *e.StateKey == mx2.UserID()) && e.Content["membership"] != "join" {
			t.Errorf("after the restart %s became %v in the shared room (%v)", *e.StateKey, e.Content["membership"], e.Content["reason"])
		}
	}
	waitMessage(t, mx2, chanRoom, bobMXID, "shared after the restart")
	bob.send(t, "PRIVMSG", keyChannel, "after the restart")
	waitMessage(t, mx, keyRoom, bobMXID, "after the restart")
	_, err = mx.Send(ctx, keyRoom, "m.text", "still here", "")
	must(t, err)
	bob.waitFor(t, "alice after restart", waitLong, privmsgFrom(saslNick, keyChannel, "still here"))

	// The promise: the homeserver holds no plaintext message in any room.
	for _, room := range []string{mgmt, chanRoom, bobDM, carolDM, keyRoom, mgmt2} {
		types, err := hs.EventTypesInRoom(room)
		if err != nil {
			t.Fatal(err)
		}
		// (m.reaction is not counted: Matrix clients, Element and matrix-js-sdk alike, send their
		// own reactions unencrypted; the tags story checks that the bridge's are encrypted.)
		if types["m.room.message"] != 0 || types["m.room.encrypted"] == 0 {
			t.Errorf("room %s on the homeserver: %v (want no m.room.message, some m.room.encrypted)", room, types)
		}
	}
	// The SASL password is sealed in the database and absent from the log.
	for what, secret := range map[string]string{"SASL password": saslPassword, "channel key": channelKey} {
		if hits := dbContains(secret); len(hits) > 0 {
			t.Errorf("the %s is readable in the bridge database: %v", what, hits)
		}
	}
	bridgeLog := readFile(br.LogPath)
	if strings.Contains(bridgeLog, saslPassword) {
		t.Error("the SASL password appears in the bridge log")
	}
	// Neither do the bridge's own secrets, at any log level.
	finalCfg, err := stack.ReadYAML(configPath)
	must(t, err)
	for _, path := range [][]string{
		{"appservice", "as_token"}, {"appservice", "hs_token"}, {"encryption", "pickle_key"},
		{"network", "credentials_key"}, {"provisioning", "shared_secret"},
	} {
		secret, _ := stack.GetYAML(finalCfg, path...).(string)
		if len(secret) < 16 {
			t.Errorf("config %v is not a real secret: %q", path, secret)
		} else if strings.Contains(bridgeLog, secret) {
			t.Errorf("config %v appears in the bridge log", path)
		}
	}
	for _, body := range []string{"psst, first message", "reply in private", "hello carol", "hi bold there"} {
		for _, line := range infoLines(br.LogPath) {
			if strings.Contains(line, body) {
				t.Errorf("a message body appears in the log at info level: %s", line)
			}
		}
	}
}

// stories runs the stories of one bridge run as subtests, so that a failure names its story and
// `-run` (e.g. 'TestBridge/dendrite/sqlite/commands') picks one: the run's setup, and what it does
// between stories, still runs up to the story picked, and the run ends after it (what follows
// builds on the stories left out). A story that fails ends the run too.
type stories struct {
	t      *testing.T
	picked bool // a story ran
}

func (s *stories) story(name string, fn func(t *testing.T)) {
	s.t.Helper()
	ran := false
	ok := s.t.Run(name, func(t *testing.T) {
		ran = true
		fn(t)
	})
	switch {
	case !ok:
		s.t.FailNow()
	case ran:
		s.picked = true
	case s.picked:
		s.t.SkipNow() // -run left this story out after picking one: the rest needs what it does
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricValue finds "name{labels} value" in a Prometheus text scrape (-1 when absent).
func metricValue(scrape, series string) float64 {
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// alicesLoginAlive checks, over IRC, that nick is still connected (WHOIS answers 311, not 401).
func alicesLoginAlive(t *testing.T, bob *ircUser, nick string) bool {
	t.Helper()
	seen := len(bob.messages())
	bob.send(t, "WHOIS", nick)
	m := bob.waitForAfter(t, seen, "WHOIS reply", waitLong, func(m *ircmsg.Message) bool {
		return (m.Command == "311" || m.Command == "401") && len(m.Params) > 1 && strings.EqualFold(m.Params[1], nick)
	})
	return m.Command == "311"
}

// deadPort is a loopback port nobody listens on.
func deadPort(t *testing.T) int {
	port, err := stack.FreePort()
	must(t, err)
	return port
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ghostMXID formats a ghost's Matrix ID the way the bridge's username template does.
func ghostMXID(cfg map[string]any, serverName, ghostID string) string {
	tpl := stack.GetYAML(cfg, "appservice", "username_template").(string)
	return "@" + strings.Replace(tpl, "{{.}}", id.EncodeUserLocalpart(ghostID), 1) + ":" + serverName
}

func waitMessage(t *testing.T, mx *mxclient.Client, room, sender, body string) mxclient.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev, err := mx.WaitEvent(ctx, mxclient.Message(room, sender, body))
	if err != nil {
		var seen []string
		for _, e := range mx.Events() {
			if e.Type == "m.room.message" || e.DecryptionError != "" {
				seen = append(seen, e.String())
			}
		}
		t.Fatalf("no message %q from %s in %q: %v\nseen:\n%s", body, sender, room, err, strings.Join(seen, "\n"))
	}
	return ev
}

func waitMembership(t *testing.T, mx *mxclient.Client, room, userID, membership string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := mx.WaitEvent(ctx, mxclient.Membership(room, userID, membership)); err != nil {
		t.Fatalf("no %s of %s in %s: %v", membership, userID, room, err)
	}
}

// waitRoomNamed waits for a room whose m.room.name is name.
func waitRoomNamed(t *testing.T, mx *mxclient.Client, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev, err := mx.WaitEvent(ctx, func(e mxclient.Event) bool {
		n, _ := e.Content["name"].(string)
		return e.Type == "m.room.name" && strings.EqualFold(n, name)
	})
	if err != nil {
		t.Fatalf("no room named %s: %v", name, err)
	}
	return ev.RoomID
}

// waitRoomWithMember waits for a room (other than the excluded ones) where userID is a member.
func waitRoomWithMember(t *testing.T, mx *mxclient.Client, userID string, exclude ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev, err := mx.WaitEvent(ctx, func(e mxclient.Event) bool {
		for _, x := range exclude {
			if e.RoomID == x {
				return false
			}
		}
		return mxclient.Membership("", userID, "join")(e)
	})
	if err != nil {
		t.Fatalf("no room with %s: %v", userID, err)
	}
	return ev.RoomID
}

// postgresTablesContaining names the tables of the bridge database whose text contains secret.
func postgresTablesContaining(t *testing.T, uri, secret string) []string {
	t.Helper()
	db, err := sql.Open("postgres", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("the bridge database has no tables")
	}
	var hits []string
	for _, table := range tables {
		var found bool
		q := `SELECT EXISTS (SELECT 1 FROM "` + table + `" t WHERE position($1 in t::text) > 0)`
		if err := db.QueryRow(q, secret).Scan(&found); err != nil {
			t.Fatalf("scanning %s: %v", table, err)
		}
		if found {
			hits = append(hits, table)
		}
	}
	return hits
}
