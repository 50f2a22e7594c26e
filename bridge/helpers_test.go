package bridge

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

func TestParseNamesEntry(t *testing.T) {
	for _, tc := range []struct{ entry, nick, modes string }{
		{"alice", "alice", ""},
		{"@bob", "bob", "o"},
		{"@+carol", "carol", "ov"},
		{"+dave!d@host.example", "dave", "v"},
		{"~&@%+eve", "eve", "qaohv"},
		{"[weird]|nick", "[weird]|nick", ""},
	} {
		nick, modes := parseNamesEntry(tc.entry, "qaohv", "~&@%+")
		if nick != tc.nick || modes != tc.modes {
			t.Errorf("%q -> %q %q, want %q %q", tc.entry, nick, modes, tc.nick, tc.modes)
		}
	}
	// A server whose PREFIX lacks a symbol must not strip it.
	if nick, modes := parseNamesEntry("%x", "ov", "@+"); nick != "%x" || modes != "" {
		t.Errorf("unknown prefix stripped: %q %q", nick, modes)
	}
}

func TestPowerLevel(t *testing.T) {
	for modes, want := range map[string]int{"": 0, "v": 10, "h": 25, "o": 50, "ov": 50, "a": 95, "qo": 95} {
		if got := powerLevel(modes); got != want {
			t.Errorf("powerLevel(%q) = %d, want %d", modes, got, want)
		}
	}
}

func TestParseCTCP(t *testing.T) {
	for _, tc := range []struct {
		text, cmd, arg string
		ok             bool
	}{
		{"\x01ACTION waves\x01", "ACTION", "waves", true},
		{"\x01action waves hello\x01", "ACTION", "waves hello", true},
		{"\x01VERSION\x01", "VERSION", "", true},
		{"\x01DCC SEND file 1 2 3\x01", "DCC", "SEND file 1 2 3", true},
		{"\x01ACTION unterminated", "ACTION", "unterminated", true},
		{"plain text", "", "", false},
		{"\x01", "", "", false},
		{"\x01\x01", "", "", false},
	} {
		cmd, arg, ok := parseCTCP(tc.text)
		if cmd != tc.cmd || arg != tc.arg || ok != tc.ok {
			t.Errorf("parseCTCP(%q) = %q %q %v", tc.text, cmd, arg, ok)
		}
	}
}

func TestValidateNick(t *testing.T) {
	for _, good := range []string{"alice", "[bob]", "c|d", "e^f", "Guest_1", " padded "} {
		if _, err := validateNick(good); err != nil {
			t.Errorf("validateNick(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "a b", "#chan", "1abc", "-x", "a\r\nQUIT", "a\x00", "a:b", "a,b", "x!y", strings.Repeat("n", 65)} {
		if _, err := validateNick(bad); err == nil {
			t.Errorf("validateNick(%q) accepted", bad)
		}
	}
}

// Regression for the attack class "a newline in a join argument ran commands as the bridge bot".
func TestSafeArgRejectsInjection(t *testing.T) {
	for _, bad := range []string{"#a\r\nPRIVMSG NickServ :DROP", "#a\nQUIT", "#a b", "#a,#b", "#a\x00", "", "#a\x07"} {
		if safeArg(bad) == nil {
			t.Errorf("safeArg(%q) accepted", bad)
		}
	}
	if err := safeArg("#ok[chan]"); err != nil {
		t.Error(err)
	}
}

func TestLoginErrorsAreClearAndSecretFree(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", irc.ErrSASLFailed), "rejected the SASL account name or password"},
		{irc.ErrNickInUse, "already in use"},
		{irc.ErrBadPassword, "server password"},
		{irc.ErrBanned, "banned"},
		{irc.ErrTimeout, "did not finish registration"},
		{errors.New("dial tcp: connection refused"), "could not connect to Net: dial tcp: connection refused"},
	} {
		got := loginError("Net", "nick", tc.err).Error()
		if !strings.Contains(got, tc.want) {
			t.Errorf("loginError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

type nopHandler struct{}

func (nopHandler) OnConnected(*irc.Client)                           {}
func (nopHandler) OnMessage(*irc.Client, *ircmsg.Message, time.Time) {}
func (nopHandler) OnDisconnected(*irc.Client, error, bool)           {}

func TestStripStatusPrefix(t *testing.T) {
	cl := &IRCClient{ircConn: irc.New(irc.Config{Nick: "me"}, nopHandler{}, zerolog.Nop())}
	for in, want := range map[string]string{"@#chan": "#chan", "+#chan": "#chan", "@+#chan": "#chan", "#chan": "#chan", "nick": "nick", "@": "@"} {
		if got := cl.stripStatusPrefix(in); got != want {
			t.Errorf("stripStatusPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIRCMsgID(t *testing.T) {
	for id, want := range map[string]string{
		"net/abc123":     "abc123",
		"net/h:deadbeef": "", // a hash the bridge made up
		"net/mx:$event":  "", // a message sent from Matrix
		"other/abc":      "", // another network
		"net/":           "",
	} {
		if got := ircMsgID("net", networkid.MessageID(id)); got != want {
			t.Errorf("ircMsgID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestReplyTag(t *testing.T) {
	for line, want := range map[string]string{
		"@+draft/reply=abc :n!u@h PRIVMSG #c :hi": "abc",
		"@+reply=def :n!u@h PRIVMSG #c :hi":       "def",
		":n!u@h PRIVMSG #c :hi":                   "",
		"@+draft/reply= :n!u@h PRIVMSG #c :hi":    "",
	} {
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if got := replyTag(&msg); got != want {
			t.Errorf("replyTag(%q) = %q, want %q", line, got, want)
		}
	}
}

// Regression for the attack classes "a reply to an event the sender cannot see leaked its body"
// and "caches keyed by event ID alone leaked across rooms": a reply target from another portal is
// ignored, and no text of the target is quoted (quotes, where a server lacks message-tags, come
// only from lines bridged into the same portal: TestReplyQuoteWithoutMessageTags).
func TestReplyContextStaysInItsPortal(t *testing.T) {
	cl := &IRCClient{
		network: &config.Network{ID: "net"},
		ircConn: irc.New(irc.Config{Nick: "me"}, nopHandler{}, zerolog.Nop()),
		nicks:   map[string]string{"bob": "Bob"},
	}
	here := MakeChannelPortalKey("net", "#here")
	target := &database.Message{ID: "net/msg1", Room: here, SenderID: MakeUserID("net", "bob")}
	msg := &bridgev2.MatrixMessage{ReplyTo: target}
	msg.Portal = &bridgev2.Portal{Portal: &database.Portal{PortalKey: here}}
	if text, _ := cl.replyContext(msg, "yes"); text != "Bob: yes" {
		t.Errorf("reply in the same portal = %q, want %q", text, "Bob: yes")
	}
	if text, _ := cl.replyContext(msg, "bob: already addressed"); text != "bob: already addressed" {
		t.Errorf("nick prefixed twice: %q", text)
	}
	target.Room = MakeChannelPortalKey("net", "#elsewhere")
	if text, tags := cl.replyContext(msg, "yes"); text != "yes" || tags != nil {
		t.Errorf("reply to another portal's message = %q %v, want it ignored", text, tags)
	}
}

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

// A burst of metadata changes (the JOINs of many channels) is one pending write, not one each;
// a retired client writes nothing more.
func TestSaveLoginCoalesces(t *testing.T) {
	cl := &IRCClient{}
	for i := 0; i < 100; i++ {
		cl.saveLogin()
	}
	cl.saveMu.Lock()
	first := cl.saveTimer
	cl.saveMu.Unlock()
	if first == nil {
		t.Fatal("no write scheduled")
	}
	cl.saveLogin()
	cl.saveMu.Lock()
	same := cl.saveTimer == first
	cl.saveMu.Unlock()
	if !same {
		t.Error("a second write was scheduled while one is pending")
	}
	time.Sleep(loginSaveDelay + 100*time.Millisecond)
	cl.saveMu.Lock()
	done := cl.saveTimer == nil
	cl.saveMu.Unlock()
	if !done {
		t.Error("the pending write did not run")
	}
	cl.saveLogin()
	cl.connector = NewConnector()
	cl.retire()
	cl.saveLogin()
	cl.saveMu.Lock()
	defer cl.saveMu.Unlock()
	if cl.saveTimer != nil {
		t.Error("a retired client still writes its metadata")
	}
}

// Writing the login's metadata never holds the lock the IRC reader needs for every line: with the
// database stuck (another writer holding SQLite's lock), lines are still handled.
func TestSavingTheLoginDoesNotStallTheReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	raw, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.Bridge.DB = database.New("sealbridge", sbdb.MetaTypes(), raw)
	ctx := context.Background()
	must(t, cl.connector.Bridge.DB.Upgrade(ctx))
	must(t, cl.connector.Bridge.DB.User.Insert(ctx, &database.User{BridgeID: "sealbridge", MXID: "@me:example.org"}))
	row := &database.UserLogin{BridgeID: "sealbridge", UserMXID: "@me:example.org", ID: cl.loginID, RemoteName: "me", Metadata: cl.meta}
	must(t, cl.connector.Bridge.DB.UserLogin.Insert(ctx, row))
	cl.login = &bridgev2.UserLogin{UserLogin: row}
	joinedChannel(cl, "#chan", "me", "bob")

	// Another connection takes the database's write lock and keeps it.
	other, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.RawDB.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.Exec(`UPDATE user_login SET remote_name='held'`)
	must(t, err)
	saved := make(chan struct{})
	go func() { cl.saveLoginNow(); close(saved) }()
	time.Sleep(50 * time.Millisecond) // the save is now waiting for the database
	handled := make(chan struct{})
	go func() {
		incoming(t, cl, ":bob!b@h PRIVMSG #chan :still reading")
		close(handled)
	}()
	select {
	case <-handled:
	case <-time.After(2 * time.Second):
		t.Fatal("a line waited for the login's database write")
	}
	must(t, tx.Rollback())
	<-saved
}

// Lines from Matrix still in the flood-control queue when the connection drops are not lost: the
// next connection sends them, in order, after its rejoins.
func TestUnsentMatrixLinesGoOutOnTheNextConnection(t *testing.T) {
	opts := wireOpts{flood: &irc.FloodConfig{Burst: 1, LinesPerSecond: 2}}
	cl, w := newWireClient(t, opts)
	joinedChannel(cl, "#chan", "me")
	cl.mu.Lock()
	cl.ready = true
	cl.mu.Unlock()
	var words []string
	for i := 0; i < 300; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	msg := matrixMessage(portalFor(cl.channelKey("#chan")), event.MsgText, strings.Join(words, " "), "", nil)
	if _, err := cl.sendToIRC(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	first := w.next()
	_ = w.conn.Close() // the connection drops with the other lines still queued
	waitUntil(t, "the unsent lines kept", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.unsent) > 0 && !cl.ircConn.Connected()
	})
	w2 := connectWire(t, w.ln, cl, opts)
	got := []string{first}
	for !strings.HasSuffix(got[len(got)-1], "w299") {
		got = append(got, w2.next())
	}
	var text []string
	for _, l := range got {
		m := checkWireLine(t, l)
		if m.Command != "PRIVMSG" || m.Params[0] != "#chan" {
			t.Fatalf("unexpected line %q", l)
		}
		text = append(text, m.Params[1])
	}
	if strings.Join(strings.Fields(strings.Join(text, " ")), " ") != strings.Join(words, " ") || len(got) < 3 {
		t.Fatalf("the message on IRC across the reconnection:\n%s", strings.Join(text, "\n"))
	}
}
