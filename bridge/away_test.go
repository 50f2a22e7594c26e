package bridge

import (
	"strconv"
	"testing"
)

// An away reply is remembered per nick, so the next line to them does not repeat it; coming back
// (away-notify) forgets it, and a WHOIS the user asked for is not taken as a reply to a message.
func TestAwayRepliesAreRememberedUntilBack(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{caps: tagCaps})
	shown := func(nick string) string {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.awayShown[nick]
	}
	serverSays(t, cl, ":irc.test 301 me Bob :at lunch")
	if got := shown("bob"); got != "at lunch" {
		t.Fatalf("after RPL_AWAY: %q", got)
	}
	serverSays(t, cl, ":Bob!b@h AWAY")
	if got := shown("bob"); got != "" {
		t.Errorf("after bob came back: %q", got)
	}
	serverSays(t, cl, ":Bob!b@h AWAY :gone again")
	if got := shown("bob"); got != "" {
		t.Errorf("an away-notify is shown only when the user writes to them: %q", got)
	}
	for i := range maxAwayShown + 5 {
		serverSays(t, cl, ":irc.test 301 me n"+strconv.Itoa(i)+" :away")
	}
	cl.mu.Lock()
	n := len(cl.awayShown)
	cl.mu.Unlock()
	if n > maxAwayShown {
		t.Errorf("%d away messages remembered, more than %d", n, maxAwayShown)
	}
}
