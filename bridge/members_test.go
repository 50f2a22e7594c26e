package bridge

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

// selfJoin hands cl its own JOIN of channel and the NAMES reply that follows it.
func selfJoin(t *testing.T, cl *IRCClient, channel, names string) {
	t.Helper()
	join, err := ircmsg.ParseLine(":me!u@h JOIN " + channel)
	if err != nil {
		t.Fatal(err)
	}
	cl.handleJoin(&join, time.Now())
	cl.handleNames(channel, names)
	cl.handleEndOfNames(channel)
}

func memberNicks(cl *IRCClient, channel string) []string {
	var nicks []string
	cl.withChannel(channel, func(ch *channelState) {
		for folded := range ch.Members {
			nicks = append(nicks, folded)
		}
	})
	slices.Sort(nicks)
	return nicks
}

// Only a channel's lead keeps its member list; another login keeps its own entry and reads the
// rest from the lead. A login that takes the lead over asks for NAMES; one that loses it drops
// the list.
func TestMemberListIsKeptByTheLeadOnly(t *testing.T) {
	a, b, _, wb := twoLoginsOnWires(t)
	selfJoin(t, b, "#chan", "me bob @carol")
	if got := memberNicks(b, "#chan"); !slices.Equal(got, []string{"bob", "carol", "me"}) {
		t.Fatalf("the only login in the channel keeps %q, want everyone", got)
	}
	selfJoin(t, a, "#chan", "me bob @carol")
	if got := memberNicks(a, "#chan"); !slices.Equal(got, []string{"bob", "carol", "me"}) {
		t.Fatalf("the new lead keeps %q, want everyone", got)
	}
	if got := memberNicks(b, "#chan"); !slices.Equal(got, []string{"me"}) {
		t.Fatalf("the login that lost the lead keeps %q, want only its own entry", got)
	}
	join, _ := ircmsg.ParseLine(":dave!d@h JOIN #chan")
	b.handleJoin(&join, time.Now())
	a.handleJoin(&join, time.Now())
	if got := memberNicks(b, "#chan"); !slices.Equal(got, []string{"me"}) {
		t.Fatalf("a join made the other login keep %q", got)
	}
	if m, ok := b.memberOf("#chan", "carol"); !ok || m.Modes != "o" {
		t.Fatalf("the other login reads carol as %+v, %v; want the lead's entry with op", m, ok)
	}
	if !b.inChannel(portalFor(b.channelKey("#chan")), "dave") {
		t.Fatal("the other login does not see dave, whom the lead knows, in the channel")
	}
	if _, ok := b.memberOf("#chan", "erin"); ok {
		t.Fatal("a nick nobody knows is a member")
	}
	queued(b)

	a.handleLeave("me", "#chan", "", "", time.Now())
	if lines := wb.barrier(); !slices.Contains(lines, "NAMES #chan") {
		t.Fatalf("the new lead sent %q, want NAMES #chan", lines)
	}
	b.handleNames("#chan", "me bob @carol dave")
	b.handleEndOfNames("#chan")
	if got := memberNicks(b, "#chan"); !slices.Equal(got, []string{"bob", "carol", "dave", "me"}) {
		t.Fatalf("the new lead keeps %q after its NAMES, want everyone", got)
	}
	if n := len(queued(b)); n != 1 {
		t.Fatalf("the end of the new lead's NAMES queued %d events, want its resync", n)
	}
}

// A lead that changes while the other login reads its first NAMES reply: the reply began without
// the other members, so the new lead asks again and syncs in full only at the end of that one.
func TestLeadTakenOverDuringNamesAsksAgain(t *testing.T) {
	a, b, _, wb := twoLoginsOnWires(t)
	selfJoin(t, a, "#chan", "me bob")
	join, _ := ircmsg.ParseLine(":me!u@h JOIN #chan")
	b.handleJoin(&join, time.Now())
	b.handleNames("#chan", "me bob")
	a.handleLeave("me", "#chan", "", "", time.Now())
	b.handleNames("#chan", "carol")
	b.handleEndOfNames("#chan")
	if lines := wb.barrier(); !slices.Contains(lines, "NAMES #chan") {
		t.Fatalf("the new lead sent %q, want NAMES #chan", lines)
	}
	info, err := b.GetChatInfo(t.Context(), portalFor(b.channelKey("#chan")))
	if err != nil || info.Members == nil || info.Members.IsFull {
		t.Fatalf("chat info %+v, %v: the half-read list must not be synced in full", info.Members, err)
	}
	queued(b)
	b.handleNames("#chan", "me bob carol")
	b.handleEndOfNames("#chan")
	if n := len(queued(b)); n != 1 {
		t.Fatalf("the end of the NAMES asked for queued %d events, want the resync", n)
	}
	info, err = b.GetChatInfo(t.Context(), portalFor(b.channelKey("#chan")))
	if err != nil || !info.Members.IsFull || len(info.Members.MemberMap) != 3 {
		t.Fatalf("chat info %+v, %v: want the whole list of 3", info.Members, err)
	}
}

// A channel's full member list names the bridge's other logins in the portal that the channel does
// not list right now (after a restart, not back yet), each with an entry that changes nothing:
// their users and their nicks' ghosts expected joined (PrevMembership), so that bridgev2 neither
// removes them nor invites them. A listed login, the login itself and a second login of a listed
// user get no entry.
func TestFullMemberListKeepsAbsentLogins(t *testing.T) {
	login := func(loginID, user string, client bridgev2.NetworkAPI) *bridgev2.UserLogin {
		return &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: networkid.UserLoginID(loginID), UserMXID: id.UserID(user)}, Client: client}
	}
	ircLogin := func(loginID, user, nick string) *bridgev2.UserLogin {
		cl := &IRCClient{network: &config.Network{ID: "net"}, ircConn: irc.New(irc.Config{Nick: nick}, nil, zerolog.Nop())}
		return login(loginID, user, cl)
	}
	members := &bridgev2.ChatMemberList{IsFull: true, CheckAllLogins: true, MemberMap: bridgev2.ChatMemberMap{}}
	for _, nick := range []string{"me", "Bob", "carol"} {
		members.MemberMap.Set(bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: MakeUserID("net", strings.ToLower(nick))}, Membership: event.MembershipJoin})
	}
	keepAbsentLogins(members, "self", []*bridgev2.UserLogin{
		ircLogin("self", "@me:hs", "me"),
		ircLogin("bob", "@bob:hs", "Bob"),           // listed
		ircLogin("bob2", "@bob:hs", "bobby"),        // bob's user is listed through his other login
		ircLogin("cat", "@cat:hs", "Cat"),           // not back yet
		login("broken", "@dee:hs", &brokenClient{}), // no IRC client: named by its login only
	})
	want := map[networkid.UserID]bridgev2.EventSender{
		"net/cat":      {Sender: "net/cat", SenderLogin: "cat"},
		"login:broken": {SenderLogin: "broken"},
	}
	if len(members.MemberMap) != 3+len(want) {
		t.Errorf("the list has %d entries, want the 3 members and %d absent logins", len(members.MemberMap), len(want))
	}
	for key, sender := range want {
		m, ok := members.MemberMap[key]
		if !ok || m.EventSender != sender || m.Membership != event.MembershipJoin || m.PrevMembership != event.MembershipJoin || m.PowerLevel != nil {
			t.Errorf("entry %s = %+v (present %v), want %+v expected joined and kept so, power level untouched", key, m, ok, sender)
		}
	}
	if _, ok := members.MemberMap["net/bobby"]; ok {
		t.Error("a second login of a listed user got an entry")
	}
}
