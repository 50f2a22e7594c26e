package bridge

import (
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

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

func TestStripStatusPrefix(t *testing.T) {
	cl := &IRCClient{ircConn: irc.New(irc.Config{Nick: "me"}, nopHandler{}, zerolog.Nop())}
	for in, want := range map[string]string{"@#chan": "#chan", "+#chan": "#chan", "@+#chan": "#chan", "#chan": "#chan", "nick": "nick", "@": "@"} {
		if got := cl.stripStatusPrefix(in); got != want {
			t.Errorf("stripStatusPrefix(%q) = %q, want %q", in, got, want)
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
