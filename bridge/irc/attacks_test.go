package irc

// Known attack classes at the engine, the last line of defence: whatever a bridge path forgets to
// check, Send refuses a parameter or tag that would end the line early or smuggle a second command.
// The bridge-level tests are in bridge/attacks_test.go; docs/security.md ("Attack map") maps them all.
//
//   CR in a quoted reply sent raw IRC commands         -> TestAttackLineInjectionRefusedByEngine
//   a newline in a join argument ran commands as the bot  (and TestSendRejectsUnsafeLines, FuzzSend)

import (
	"errors"
	"testing"
)

// TestAttackLineInjectionRefusedByEngine puts CR, LF, CRLF and NUL into every parameter of every
// command the bridge sends on behalf of a Matrix user, and into tags: each Send is refused with
// ErrUnsafeParam and nothing reaches the socket. A CR or LF in a tag value is escaped, never raw.
func TestAttackLineInjectionRefusedByEngine(t *testing.T) {
	srv := newFakeServer(t)
	c, fc, _ := connectedClient(t, srv, testConfig(srv))
	commands := map[string][]string{
		"PRIVMSG": {"#chan", "text"},
		"NOTICE":  {"nick", "text"},
		"JOIN":    {"#chan", "key"},
		"PART":    {"#chan", "reason"},
		"KICK":    {"#chan", "nick", "reason"},
		"TOPIC":   {"#chan", "topic"},
		"MODE":    {"#chan", "+ov", "a", "b"},
		"INVITE":  {"nick", "#chan"},
		"NICK":    {"nick"},
	}
	for command, params := range commands {
		for i := range params {
			for _, evil := range []string{"\r", "\n", "\r\n", "\x00", "\rQUIT :x", "\nPRIVMSG NickServ :DROP"} {
				p := append([]string(nil), params...)
				p[i] += evil
				if err := c.Send(command, p...); !errors.Is(err, ErrUnsafeParam) {
					t.Errorf("Send(%s %q) = %v, want ErrUnsafeParam", command, p, err)
				}
				if err := c.SendTagged(map[string]string{"+draft/reply": "x"}, command, p...); !errors.Is(err, ErrUnsafeParam) {
					t.Errorf("SendTagged(%s %q) = %v, want ErrUnsafeParam", command, p, err)
				}
			}
		}
		if err := c.Send(command+"\r\nQUIT", params...); !errors.Is(err, ErrUnsafeParam) {
			t.Errorf("CRLF in the command %s: %v", command, err)
		}
	}
	for _, name := range []string{"+draft/reply\r\nQUIT", "+a b", "+a;b", "+a=b", "+a\x00"} {
		if err := c.SendTagged(map[string]string{name: "x"}, "PRIVMSG", "#chan", "hi"); !errors.Is(err, ErrUnsafeParam) {
			t.Errorf("tag name %q: %v", name, err)
		}
	}
	if err := c.SendTagged(map[string]string{"+draft/reply": "a\x00b"}, "PRIVMSG", "#chan", "hi"); !errors.Is(err, ErrUnsafeParam) {
		t.Errorf("NUL in a tag value: %v", err)
	}
	fc.expectNothing()

	// CR and LF in a tag value (the msgid of a replied-to message) are escaped, the line stays one.
	if err := c.SendTagged(map[string]string{"+draft/reply": "id\r\nQUIT :x"}, "PRIVMSG", "#chan", "hi"); err != nil {
		t.Fatal(err)
	}
	fc.expectRaw(`@+draft/reply=id\r\nQUIT\s:x PRIVMSG #chan hi`)
	fc.expectNothing()
}
