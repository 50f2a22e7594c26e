package bridge

import (
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

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
