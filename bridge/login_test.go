package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

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
