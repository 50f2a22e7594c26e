package bridge

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

// A disconnection reports a transient state while the engine retries, the reason a fatal error
// stops it, and nothing for a connection closed on purpose.
func TestDisconnectState(t *testing.T) {
	cl := &IRCClient{network: &config.Network{ID: "libera", Name: "Libera.Chat"}}
	cases := []struct {
		name      string
		err       error
		willRetry bool
		event     status.BridgeStateEvent
		code      status.BridgeStateErrorCode
		msg       string
		report    bool
	}{
		{"lost, retrying", io.EOF, true, status.StateTransientDisconnect, "irc-disconnected", "EOF", true},
		{"retrying without an error", nil, true, status.StateTransientDisconnect, "irc-disconnected", "", true},
		{"SASL refused", fmt.Errorf("register: %w", irc.ErrSASLFailed), false, status.StateBadCredentials, "irc-bad-credentials", "Libera.Chat rejected the login; log in again", true},
		{"NickServ refused", irc.ErrNickServFailed, false, status.StateBadCredentials, "irc-bad-credentials", "Libera.Chat rejected the login; log in again", true},
		{"server password", irc.ErrBadPassword, false, status.StateBadCredentials, "irc-bad-credentials", "Libera.Chat rejected the login; log in again", true},
		{"banned", irc.ErrBanned, false, status.StateUnknownError, "irc-banned", "Libera.Chat refused the connection (banned); not retrying", true},
		{"stopped by another error", errors.New("boom"), false, status.StateUnknownError, "irc-stopped", "boom", true},
		{"closed on purpose", nil, false, "", "", "", false},
	}
	for _, c := range cases {
		event, code, msg, report := cl.disconnectState(c.err, c.willRetry)
		if event != c.event || code != c.code || msg != c.msg || report != c.report {
			t.Errorf("%s: got (%q, %q, %q, %v), want (%q, %q, %q, %v)", c.name, event, code, msg, report, c.event, c.code, c.msg, c.report)
		}
	}
}
