package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/config"
)

func sharedTestClient(login string) *IRCClient {
	return &IRCClient{loginID: networkid.UserLoginID(login), network: &config.Network{ID: "net"}}
}

// Only the first copy of a line with a msgid is taken, and the set of taken lines is bounded.
func TestSharedLinesAreTakenOnceAndForgottenInOrder(t *testing.T) {
	var s sharing
	if !s.take("#chan", "m1") || s.take("#chan", "m1") {
		t.Fatal("the first copy must be taken and the second refused")
	}
	if !s.take("#other", "m1") {
		t.Error("the same msgid in another portal is another line")
	}
	for i := range takenLinesKept {
		s.take("#chan", networkid.MessageID(fmt.Sprint("x", i)))
	}
	if len(s.taken.set) != takenLinesKept {
		t.Errorf("%d lines remembered, want %d", len(s.taken.set), takenLinesKept)
	}
	if !s.take("#chan", "m1") {
		t.Error("the oldest line was not forgotten")
	}
	if s.take("#chan", networkid.MessageID(fmt.Sprint("x", takenLinesKept-1))) {
		t.Error("a recent line was forgotten")
	}
}

// The login with the lowest ID among the connected members of a channel leads it; leaving,
// disconnecting and reconnecting hand the lead on.
func TestSharedChannelLeadFollowsMembership(t *testing.T) {
	var s sharing
	a, b := sharedTestClient("a"), sharedTestClient("b")
	s.connected(a, "alice")
	s.connected(b, "bob")
	s.join(b, "#chan")
	s.join(a, "#chan")
	if !s.leads(a, "#chan") || s.leads(b, "#chan") {
		t.Fatal("a must lead #chan")
	}
	s.leave(a, "#chan")
	if !s.leads(b, "#chan") {
		t.Error("b must lead once a has left")
	}
	s.join(a, "#chan")
	s.disconnected(a)
	if !s.leads(b, "#chan") {
		t.Error("b must lead once a is disconnected")
	}
	s.connected(a, "alice")
	s.join(a, "#chan")
	s.leaveAll(a)
	if !s.leads(b, "#chan") || len(s.joined[a]) != 0 {
		t.Error("leaveAll must forget every channel of a")
	}
	s.leave(b, "#chan")
	if len(s.channels) != 0 {
		t.Errorf("%d channels kept with no member", len(s.channels))
	}
}

// A nick is another login's while that login is connected under it.
func TestSharedNicksFollowRenamesAndDisconnects(t *testing.T) {
	var s sharing
	a, b := sharedTestClient("a"), sharedTestClient("b")
	s.connected(a, "alice")
	if !s.isOtherLogin(b, "alice") || s.isOtherLogin(a, "alice") {
		t.Fatal("alice is a's nick, not b's")
	}
	s.renamed(a, "alice2")
	if s.isOtherLogin(b, "alice") || !s.isOtherLogin(b, "alice2") {
		t.Error("the rename was not followed")
	}
	s.disconnected(a)
	if s.isOtherLogin(b, "alice2") {
		t.Error("a disconnected login's nick is still known")
	}
	s.renamed(a, "alice3") // a late NICK of a disconnected login
	if s.isOtherLogin(b, "alice3") {
		t.Error("a rename after the disconnect brought the login back")
	}
	other := &IRCClient{loginID: "c", network: &config.Network{ID: "elsewhere"}}
	s.connected(other, "alice")
	if s.isOtherLogin(b, "alice") {
		t.Error("a nick on another network counted")
	}
}

// A change others make in a channel two logins share (joins, parts, quits, nicks, modes, topics)
// is queued by the channel's lead only; once the lead has left, by the other login.
func TestSharedChannelChangesAreQueuedByTheLead(t *testing.T) {
	a, b := twoLogins(t)
	joinedChannel(a, "#shared", "carol")
	joinedChannel(b, "#shared", "carol")
	changes := func(cl *IRCClient) {
		join, _ := ircmsg.ParseLine(":dave!d@h JOIN #shared")
		cl.handleJoin(&join, time.Now())
		cl.handleTopic("carol", "#shared", "new topic", time.Now())
		mode, _ := ircmsg.ParseLine(":carol!c@h MODE #shared +o dave")
		cl.handleMode(&mode, time.Now())
		cl.handleNick("dave", "david", time.Now())
		cl.handleLeave("david", "#shared", "carol", "out", time.Now())
		cl.handleQuit("carol", "bye", time.Now())
	}
	changes(a)
	changes(b)
	if n, m := len(queued(a)), len(queued(b)); n != 7 || m != 0 {
		t.Fatalf("queued by the lead and the other login: %d and %d, want 7 and 0 (a nick change is two)", n, m)
	}
	a.handleLeave(a.ircConn.Nick(), "#shared", "", "", time.Now())
	queued(a)
	joinedChannel(b, "#shared", "carol")
	changes(b)
	if m := len(queued(b)); m != 7 {
		t.Errorf("once the lead has left, the other login queued %d changes, want 7", m)
	}
}

// Another login's joining, leaving or quitting a shared channel is its own: the lead queues no
// membership for its nick (it would be a ghost's), and still does for anyone else.
func TestSharedChannelLeadLeavesOtherLoginsMembershipToThem(t *testing.T) {
	a, b := twoLogins(t)
	a.connector.shared.renamed(b, "zed")
	joinedChannel(a, "#shared", "carol")
	joinedChannel(b, "#shared", "carol")
	for _, line := range []string{":zed!z@h JOIN #shared", ":zed!z@h PART #shared"} {
		msg, _ := ircmsg.ParseLine(line)
		if msg.Command == "JOIN" {
			a.handleJoin(&msg, time.Now())
		} else {
			a.handleLeave("zed", "#shared", "", "", time.Now())
		}
	}
	a.handleQuit("zed", "bye", time.Now())
	if n := len(queued(a)); n != 0 {
		t.Fatalf("the lead queued %d membership changes of another login, want none", n)
	}
	join, _ := ircmsg.ParseLine(":dave!d@h JOIN #shared")
	a.handleJoin(&join, time.Now())
	if n := len(queued(a)); n != 1 {
		t.Fatalf("the lead queued %d changes for dave's join, want 1", n)
	}
}
