package bridge

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/internal/ircfake"
	"github.com/sealbridge/sealbridge/sbdb"
)

// The test harness of this package: an IRCClient against a scripted IRC server on loopback, so
// that a test sees the exact bytes the bridge writes to the socket, and the fakes and helpers the
// tests share (a Matrix side that is never called, portals, queued events).

const wireTimeout = 5 * time.Second

// wire is the server side of one connection.
type wire struct {
	tb    testing.TB
	conn  *ircfake.Conn
	lines chan string // raw lines from the client, CRLF stripped
	errs  chan error
	// mark is the client's Send, for the barrier line.
	mark  func(command string, params ...string) error
	marks int
	// ln is the server's listener, for a reconnection (connectWire).
	ln *ircfake.Listener
}

func (w *wire) send(line string) {
	w.tb.Helper()
	if err := w.conn.Send(line); err != nil {
		w.tb.Fatalf("server write %q: %v", line, err)
	}
}

func (w *wire) next() string {
	w.tb.Helper()
	select {
	case l := <-w.lines:
		return l
	case err := <-w.errs:
		w.tb.Fatalf("server read: %v", err)
	case <-time.After(wireTimeout):
		w.tb.Fatal("timed out waiting for a line from the bridge")
	}
	return ""
}

// barrier returns every line the client wrote before it: it queues a marker line behind whatever
// the code under test queued (the send queue is FIFO and has one writer) and reads up to it. A PING
// would not do: PONG jumps the queue, even ahead of a line the writer has already taken.
func (w *wire) barrier() []string {
	w.tb.Helper()
	w.marks++
	mark := fmt.Sprintf("wire-barrier-%d", w.marks)
	if err := w.mark("BARRIER", mark); err != nil {
		w.tb.Fatalf("queueing the barrier: %v", err)
	}
	var before []string
	for {
		l := w.next()
		if l == "BARRIER "+mark {
			return before
		}
		before = append(before, l)
	}
}

// wireClient is a registered IRCClient on network "net" whose server is w.
type wireOpts struct {
	isupport string           // ISUPPORT tokens, e.g. "CASEMAPPING=ascii"
	caps     []string         // capabilities the server offers and ACKs
	ctcp     bool             // network.ctcp_replies
	flood    *irc.FloodConfig // the client's flood control (default: none to speak of)
}

func newWireClient(tb testing.TB, opts wireOpts) (*IRCClient, *wire) {
	tb.Helper()
	ln, err := ircfake.Listen("127.0.0.1:0", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	conn := NewConnector()
	conn.Config.CTCPReplies = opts.ctcp
	conn.Bridge = &bridgev2.Bridge{Matrix: fakeMatrix{}}
	conn.db = noBridgeDB{}
	network := &config.Network{ID: "net"}
	cl := &IRCClient{
		connector: conn,
		loginID:   MakeUserLoginID("net", "@me:example.org"),
		network:   network,
		meta:      &sbdb.UserLoginMetadata{Network: "net", Nick: "me"},
		log:       zerolog.Nop(),
		channels:  make(map[string]*channelState),
		nicks:     make(map[string]string),
		echoes:    make(map[string][]string),
		remote:    spool.NewQueue(),
		attached:  true, // as after attach: lines are handled, not held for the login flow
	}
	flood := irc.FloodConfig{Burst: 1 << 30, LinesPerSecond: 1e9}
	if opts.flood != nil {
		flood = *opts.flood
	}
	cl.ircConn = irc.New(irc.Config{
		Addr:           ln.Addr(),
		Nick:           "me",
		Flood:          flood,
		ConnectTimeout: wireTimeout,
		PingInterval:   time.Hour,
	}, cl, zerolog.Nop())
	tb.Cleanup(func() { _ = cl.ircConn.Close() })
	return cl, connectWire(tb, ln, cl, opts)
}

// connectWire connects cl (again) to the scripted server listening on ln and registers it: CAP LS
// 302, NICK, USER; CAP REQ/ACK for what we offer; CAP END; welcome.
func connectWire(tb testing.TB, ln *ircfake.Listener, cl *IRCClient, opts wireOpts) *wire {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- cl.ircConn.Connect(context.Background()) }()
	accepted := make(chan *ircfake.Conn, 1)
	go func() {
		if sc, err := ln.Accept(); err == nil {
			accepted <- sc
		}
	}()
	var sc *ircfake.Conn
	select {
	case sc = <-accepted:
	case <-time.After(wireTimeout):
		tb.Fatal("the bridge did not connect")
	}
	w := &wire{tb: tb, conn: sc, lines: make(chan string, 4096), errs: make(chan error, 1), mark: cl.ircConn.Send, ln: ln}
	// Cleanups run last first: this connection closes before the client's Close (registered
	// earlier), so that Close does not wait for the server to end it.
	tb.Cleanup(func() { _ = sc.Close() })
	go func() {
		for {
			l, err := sc.ReadLine()
			if err != nil {
				w.errs <- err
				return
			}
			w.lines <- l
		}
	}()
	reg := ircfake.Registration{Server: "irc.test", Caps: opts.caps, Welcome: "Welcome %s!user@host.example",
		ISupport: "CHANTYPES=#& PREFIX=(ov)@+ " + opts.isupport + " :are supported", MOTD: true, CapEnd: true}
	for !sc.Welcomed() {
		l := w.next()
		msg, err := ircmsg.ParseLine(l)
		if err != nil {
			tb.Fatalf("registration line %q: %v", l, err)
		}
		if _, err := reg.Answer(sc, &msg); err != nil {
			tb.Fatalf("registration: %v", err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(wireTimeout):
		tb.Fatal("registration did not finish")
	}
	for _, c := range opts.caps {
		if c, _, _ = strings.Cut(c, "="); !cl.ircConn.HasCap(c) {
			tb.Fatalf("cap %s not enabled", c)
		}
	}
	return w
}

// fakeMatrix is the little of bridgev2.MatrixConnector that the code under test calls: ghost MXIDs
// are @irc_<ghost ID>:example.org. Anything else panics (the embedded interface is nil), which
// proves the code under test does not reach the homeserver.
type fakeMatrix struct{ bridgev2.MatrixConnector }

func (fakeMatrix) ParseGhostMXID(userID id.UserID) (networkid.UserID, bool) {
	local, server, err := userID.Parse()
	if err != nil || server != "example.org" || !strings.HasPrefix(local, "irc_") {
		return "", false
	}
	return networkid.UserID(strings.TrimPrefix(local, "irc_")), true
}

func (fakeMatrix) FormatGhostMXID(userID networkid.UserID) id.UserID {
	return id.NewUserID("irc_"+string(userID), "example.org")
}

// portalFor is a bare portal with the given key (no room, no database).
func portalFor(key networkid.PortalKey) *bridgev2.Portal {
	return &bridgev2.Portal{Portal: &database.Portal{PortalKey: key, Metadata: &sbdb.PortalMetadata{}}}
}

// matrixMessage is a Matrix message as bridgev2 hands it to HandleMatrixMessage.
func matrixMessage(portal *bridgev2.Portal, msgType event.MessageType, body, formatted string, replyTo *database.Message) *bridgev2.MatrixMessage {
	content := &event.MessageEventContent{MsgType: msgType, Body: body}
	if formatted != "" {
		content.Format = event.FormatHTML
		content.FormattedBody = formatted
	}
	msg := &bridgev2.MatrixMessage{ReplyTo: replyTo}
	msg.Event = &event.Event{ID: "$event:example.org", RoomID: "!room:example.org", Sender: "@me:example.org"}
	msg.Content = content
	msg.Portal = portal
	return msg
}

// joinedChannel makes the client believe it is in channel with the given members (the state JOIN
// and NAMES would build), without the database writes of handleJoin.
func joinedChannel(cl *IRCClient, channel string, members ...string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ch := newChannelState(channel)
	for _, m := range members {
		ch.Members[cl.fold(m)] = &member{Nick: m}
		cl.nicks[cl.fold(m)] = m
	}
	cl.channels[cl.fold(channel)] = ch
	ch.synced, ch.others, ch.complete = true, true, true
	if cl.connector != nil {
		var changed []leadChange
		ch.others, changed = cl.connector.shared.join(cl, cl.fold(channel))
		tellLeadChanges(changed)
		ch.complete = ch.others
	}
}

// twoLogins is two connected logins of one connector on network "net"; a's login ID sorts first.
func twoLogins(t *testing.T) (a, b *IRCClient) {
	t.Helper()
	a, b, _, _ = twoLoginsOnWires(t)
	return a, b
}

// twoLoginsOnWires is twoLogins with the servers of a and b.
func twoLoginsOnWires(t *testing.T) (a, b *IRCClient, wa, wb *wire) {
	t.Helper()
	a, wa = newWireClient(t, wireOpts{})
	b, wb = newWireClient(t, wireOpts{})
	b.connector = a.connector
	b.loginID = MakeUserLoginID("net", "@zed:example.org")
	a.connector.trackClient(a, true)
	a.connector.trackClient(b, true)
	return a, b, wa, wb
}

// queued takes the events the IRC side queued for bridgev2.
func queued(cl *IRCClient) []bridgev2.RemoteEvent {
	return cl.remote.Drain()
}

// incoming parses a server line and hands it to the client's handler as the reader would, skipping
// the "not logged in yet" guard of OnMessage (there is no bridgev2 login in these tests).
func incoming(tb testing.TB, cl *IRCClient, line string) {
	tb.Helper()
	msg, err := ircmsg.ParseLine(line)
	if err != nil {
		tb.Fatalf("parse %q: %v", line, err)
	}
	switch msg.Command {
	case "PRIVMSG", "NOTICE":
		cl.handleMessage(&msg, time.Now())
	default:
		tb.Fatalf("incoming: %s not handled by this helper", msg.Command)
	}
}

// checkWireLine is the socket invariant: no CR, LF or NUL inside a line, and
// at most 512 bytes with CRLF, tags excluded (the reader strips the CRLF, so 510 here).
func checkWireLine(tb testing.TB, raw string) ircmsg.Message {
	tb.Helper()
	if strings.ContainsAny(raw, "\r\n\x00") {
		tb.Fatalf("CR, LF or NUL inside a line on the wire: %q", raw)
	}
	body := raw
	if strings.HasPrefix(body, "@") {
		sp := strings.IndexByte(body, ' ')
		if sp < 0 || sp > 8191 {
			tb.Fatalf("bad tag section: %q", raw)
		}
		body = body[sp+1:]
	}
	if len(body)+2 > 512 {
		tb.Fatalf("line of %d bytes on the wire (tags excluded, CRLF included): %q", len(body)+2, raw)
	}
	msg, err := ircmsg.ParseLine(raw)
	if err != nil {
		tb.Fatalf("unparseable line on the wire %q: %v", raw, err)
	}
	return msg
}

// canonLine is a line in a form that compares equal however it was encoded (trailing ":" or not,
// tag order): tags sorted, then command and parameters separated by NUL.
func canonLine(tb testing.TB, raw string) string {
	tb.Helper()
	msg, err := ircmsg.ParseLine(raw)
	if err != nil {
		tb.Fatalf("parse %q: %v", raw, err)
	}
	var tags []string
	for k, v := range msg.AllTags() {
		tags = append(tags, k+"="+v)
	}
	sort.Strings(tags)
	return strings.Join(tags, ";") + "|" + msg.Source + "|" + msg.Command + "\x00" + strings.Join(msg.Params, "\x00")
}

type nopHandler struct{}

// asMessage is the message event inside a queued remote event (spooled or an echo).
func asMessage(e bridgev2.RemoteEvent) (*simplevent.Message[*ircMessage], bool) {
	switch m := e.(type) {
	case *outboxMessage:
		return m.Message, true
	case *simplevent.Message[*ircMessage]:
		return m, true
	}
	return nil, false
}

func (nopHandler) OnConnected(*irc.Client) {}

func (nopHandler) OnMessage(*irc.Client, *ircmsg.Message, time.Time) {}

func (nopHandler) OnDisconnected(*irc.Client, error, bool) {}
