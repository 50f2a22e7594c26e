package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
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
	cl := &IRCClient{irc: irc.New(irc.Config{Nick: "me"}, nopHandler{}, zerolog.Nop())}
	for in, want := range map[string]string{"@#chan": "#chan", "+#chan": "#chan", "@+#chan": "#chan", "#chan": "#chan", "nick": "nick", "@": "@"} {
		if got := cl.stripStatusPrefix(in); got != want {
			t.Errorf("stripStatusPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
