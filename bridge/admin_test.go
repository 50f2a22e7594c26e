package bridge

import (
	"strings"
	"testing"
)

// `logins` lists every login with what an admin looks for, and a filter narrows it.
func TestLoginTable(t *testing.T) {
	rows := []loginRow{
		{id: "libera:@a:x", user: "@a:x", network: "Libera.Chat", nick: "alice", state: "connected", channels: 3, queued: 0},
		{id: "oftc:@b:x", user: "@b:x", network: "OFTC", nick: "bob", state: "connecting", channels: 0, queued: 12},
	}
	all := loginTable(rows, "")
	for _, want := range []string{"2 of 2", "`libera:@a:x` - @a:x on Libera.Chat as alice: connected, 3 channel(s), 0 event(s) queued", "oftc:@b:x", "connecting", "12 event(s) queued"} {
		if !strings.Contains(all, want) {
			t.Errorf("logins lacks %q:\n%s", want, all)
		}
	}
	if got := loginTable(rows, "OFTC"); !strings.Contains(got, "1 of 2") || strings.Contains(got, "libera") {
		t.Errorf("filtered by OFTC:\n%s", got)
	}
}
