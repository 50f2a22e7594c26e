//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// loginScene is what the login stories need from the main story: alice's management room and a
// way to talk to the bot there.
type loginScene struct {
	ircd    *stack.IRC
	mx      *mxclient.Client
	userID  string
	tag     string
	bob     *ircUser
	command func(text string)
	// botSaysFrom waits for a bot message in the management room containing substr, among the
	// events from index from on, and returns its body.
	botSaysFrom func(from int, substr string) string
	// dbContains lists where secret is readable in the bridge database.
	dbContains func(secret string) []string
}

// certFPStory: `login certfp` makes a client certificate, adds it to alice's Anope account over a
// connection logged in with her password (NickServ CERT ADD), and from then on the login connects
// with SASL EXTERNAL; the password is not stored anywhere.
func certFPStory(t *testing.T, ctx context.Context, s loginScene) {
	nick := s.tag + "cfp"
	password := "cert-" + s.tag + "-Pw!42"
	must(t, s.ircd.RegisterAccount(ctx, nick, password))

	from := s.mx.EventCount()
	s.command("login certfp testnet " + nick + " " + nick + " not-the-password")
	s.botSaysFrom(from, "rejected the SASL account name or password")

	from = s.mx.EventCount()
	s.command("login certfp testnet " + nick + " " + nick + " " + password)
	done := s.botSaysFrom(from, "Connected to Test IRC as "+nick)
	if !strings.Contains(done, "client certificate (SHA-256 fingerprint") {
		t.Errorf("certfp login answer: %q", done)
	}
	// The connection is logged in to the account (WHOIS 330), which, with no password stored, only
	// the certificate can have done.
	seen := len(s.bob.messages())
	s.bob.send(t, "WHOIS", nick)
	s.bob.waitForAfter(t, seen, "WHOIS showing the account", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "330" && len(m.Params) > 2 && strings.EqualFold(m.Params[1], nick) && strings.EqualFold(m.Params[2], nick)
	})
	if hits := s.dbContains(password); len(hits) > 0 {
		t.Errorf("the certfp login's password is readable in the bridge database: %v", hits)
	}
	from = s.mx.EventCount()
	s.command("certfp")
	fps := s.botSaysFrom(from, "SHA-256")
	if !strings.Contains(done, strings.Fields(strings.SplitN(fps, "SHA-256", 2)[1])[0]) {
		t.Errorf("certfp shows other fingerprints (%q) than the login did (%q)", fps, done)
	}
	from = s.mx.EventCount()
	s.command("logout testnet:" + s.userID)
	s.botSaysFrom(from, "Logged out")
}
