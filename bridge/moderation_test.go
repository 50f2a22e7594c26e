package bridge

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// modeClient is an IRCClient in #c with alice, bob (voiced) and carol, and the default ISUPPORT
// (PREFIX (ov)@+, CHANMODES beI,k,l,imnpst).
func modeClient() *IRCClient {
	cl := &IRCClient{
		network:   &config.Network{ID: "net"},
		ircConn:   irc.New(irc.Config{Nick: "me"}, nopHandler{}, zerolog.Nop()),
		meta:      &sbdb.UserLoginMetadata{},
		nicks:     map[string]string{},
		channels:  map[string]*channelState{},
		remote:    spool.NewQueue(),
		loginID:   "net:@me:example.org",
		connector: &IRCConnector{},
	}
	ch := newChannelState("#c")
	for _, m := range []*member{{Nick: "alice"}, {Nick: "bob", Modes: "v"}, {Nick: "carol"}, {Nick: "me", Modes: "o"}} {
		ch.Members[m.Nick] = m
	}
	cl.channels["#c"] = ch
	return cl
}

// TestAttackMultiModeLineGivesPowerToTheRightUser is the regression test for the attack class
// "multi-mode MODE lines gave power to the wrong user": each parameter goes to the mode that takes
// it (PREFIX and CHANMODES), so a list mode's mask or a key never shifts a nick onto another mode.
func TestAttackMultiModeLineGivesPowerToTheRightUser(t *testing.T) {
	cl := modeClient()
	run := func(line string) map[string]int {
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		cl.remote.Drain()
		cl.handleMode(&msg, time.Now())
		got := map[string]int{}
		for _, evt := range cl.remote.Drain() {
			for _, m := range evt.(*simplevent.ChatInfoChange).ChatInfoChange.MemberChanges.MemberMap {
				_, nick, _ := ParseUserID(m.Sender)
				got[nick] = *m.PowerLevel
			}
		}
		return got
	}
	for _, tc := range []struct {
		line string
		want map[string]int
	}{
		// The ban mask is +b's parameter: alice gets op, bob loses voice, carol is untouched.
		{":op!u@h MODE #c +bo-v *!*@evil alice bob", map[string]int{"alice": 50, "bob": 0}},
		// -l takes no parameter; +l does.
		{":op!u@h MODE #c -l+v carol", map[string]int{"carol": 10}},
		{":op!u@h MODE #c +lo 5 bob", map[string]int{"bob": 50}},
		// A missing parameter is never borrowed: nothing changes.
		{":op!u@h MODE #c +o", map[string]int{}},
		// Taking op keeps the voice bob had.
		{":op!u@h MODE #c -o bob", map[string]int{"bob": 0}},
		// A nick that is not in the channel gets nothing.
		{":op!u@h MODE #c +o mallory", map[string]int{}},
		// User modes are not bridged.
		{":me MODE me +i", map[string]int{}},
	} {
		if got := run(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: power levels %v, want %v", tc.line, got, tc.want)
		}
	}
	if m := cl.channels["#c"].Members["alice"]; m.Modes != "o" {
		t.Errorf("alice's modes = %q, want o", m.Modes)
	}
}

func TestModesForPowerLevel(t *testing.T) {
	for _, tc := range []struct {
		current, prefix string
		level           int
		want            []modeChange
	}{
		{"", "ov", 50, []modeChange{{"+o", "n"}}},
		{"", "ov", 100, []modeChange{{"+o", "n"}}},
		{"v", "ov", 50, []modeChange{{"+o", "n"}}}, // going up keeps voice
		{"o", "ov", 0, []modeChange{{"-o", "n"}}},
		{"ov", "ov", 0, []modeChange{{"-o", "n"}, {"-v", "n"}}},
		{"o", "ov", 10, []modeChange{{"-o", "n"}, {"+v", "n"}}},
		{"", "qaohv", 25, []modeChange{{"+h", "n"}}},
		{"", "ov", 25, []modeChange{{"+v", "n"}}}, // no halfop on this server
		{"q", "qaohv", 0, nil},                    // owner is never touched from Matrix
		{"", "ov", 9, nil},
	} {
		got := modesFor("n", tc.current, tc.level, tc.prefix)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("modesFor(%q, %d, %q) = %v, want %v", tc.current, tc.level, tc.prefix, got, tc.want)
		}
	}
}

func TestPackModes(t *testing.T) {
	changes := []modeChange{{"+o", "a"}, {"+o", "b"}, {"-v", "c"}, {"+v", "d"}}
	got := packModes(changes, 3)
	want := [][]string{{"+oo-v", "a", "b", "c"}, {"+v", "d"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packModes = %v, want %v", got, want)
	}
}

// TestAttackSecretChannelNotInDirectory is the unit half of the regression test for "secret (+s)
// channel details leaked to the room directory" (the end-to-end half, in test/e2e's moderation
// story, sets +s and reads the homeserver's directory): a channel's chat info never asks for a
// public join rule, so bridgev2 creates the room invite-only (private_chat) and never publishes it.
func TestAttackSecretChannelNotInDirectory(t *testing.T) {
	cl := modeClient()
	cl.handleMode(mustParse(t, ":op!u@h MODE #c +s"), time.Now())
	info, err := cl.GetChatInfo(context.Background(), &bridgev2.Portal{Portal: &database.Portal{PortalKey: cl.channelKey("#c")}})
	if err != nil {
		t.Fatal(err)
	}
	if info.JoinRule != nil && info.JoinRule.JoinRule != event.JoinRuleInvite {
		t.Errorf("a +s channel's room gets join rule %q", info.JoinRule.JoinRule)
	}
	if info.Name == nil || *info.Name != "#c" {
		t.Errorf("chat info name %v", info.Name)
	}
}

func mustParse(t *testing.T, line string) *ircmsg.Message {
	t.Helper()
	msg, err := ircmsg.ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return &msg
}

// A topic change the server throttles (437 "Retry topic change later", InspIRCd within a second of
// the last change) is sent again after a pause, until IRC shows it.
func TestThrottledTopicIsRetried(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan", "me")
	msg := &bridgev2.MatrixRoomTopic{}
	msg.Portal, msg.Content = portalFor(cl.channelKey("#chan")), &event.TopicEventContent{Topic: "from matrix"}
	if _, err := cl.HandleMatrixRoomTopic(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "first", w.barrier(), []string{"TOPIC #chan :from matrix"})
	w.send(":irc.test 437 me #chan :Retry topic change later")
	if got := w.next(); got != "TOPIC #chan :from matrix" {
		t.Fatalf("after 437: %q, want the topic again", got)
	}
	w.send(":me!u@h TOPIC #chan :from matrix")
	w.send(":irc.test 437 me #chan :Retry topic change later") // late: the topic is set already
	time.Sleep(2500 * time.Millisecond)
	wantWire(t, "after the topic showed", w.barrier(), nil)
}

// A room member without a login (relayed through another login's connection, OrigSender set)
// cannot make that connection kick, ban, invite, op or set topics: only messages are relayed,
// unless the admin allowed an action (network.relay_actions). Refusals write nothing to IRC.
func TestAttackRelayedMemberCannotModerate(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan", "me", "bob")
	ctx := context.Background()
	portal := portalFor(cl.channelKey("#chan")) // no room: the refusal notice is not posted
	erin := &bridgev2.OrigSender{UserID: "@erin:example.org", DisambiguatedName: "erin"}
	bob := &bridgev2.Ghost{Ghost: &database.Ghost{ID: MakeUserID("net", "bob")}}

	kick := &bridgev2.MatrixMembershipChange{Target: bob, Type: bridgev2.Kick}
	kick.Portal, kick.Content, kick.OrigSender = portal, &event.MemberEventContent{Membership: event.MembershipLeave}, erin
	invite := &bridgev2.MatrixMembershipChange{Target: bob, Type: bridgev2.Invite}
	invite.Portal, invite.Content, invite.OrigSender = portal, &event.MemberEventContent{Membership: event.MembershipInvite}, erin
	ban := &bridgev2.MatrixMembershipChange{Target: bob, Type: bridgev2.BanJoined}
	ban.Portal, ban.Content, ban.OrigSender = portal, &event.MemberEventContent{Membership: event.MembershipBan}, erin
	for _, m := range []*bridgev2.MatrixMembershipChange{kick, invite, ban} {
		if _, err := cl.HandleMatrixMembership(ctx, m); err == nil || !strings.Contains(err.Error(), "erin has no IRC login") {
			t.Errorf("relayed %s: err %v, want a refusal naming erin", m.Content.Membership, err)
		}
	}
	pl := &bridgev2.MatrixPowerLevelChange{Users: map[id.UserID]*bridgev2.UserPowerLevelChange{
		"@irc_net/bob:example.org": {Target: bob, SinglePowerLevelChange: bridgev2.SinglePowerLevelChange{NewLevel: 50, NewIsSet: true}},
	}}
	pl.Portal, pl.OrigSender = portal, erin
	if _, err := cl.HandleMatrixPowerLevels(ctx, pl); err == nil {
		t.Error("a relayed power level change was carried out")
	}
	topic := &bridgev2.MatrixRoomTopic{}
	topic.Portal, topic.Content, topic.OrigSender = portal, &event.TopicEventContent{Topic: "relayed"}, erin
	if _, err := cl.HandleMatrixRoomTopic(ctx, topic); err == nil {
		t.Error("a relayed topic change was carried out")
	}
	wantWire(t, "relayed moderation", w.barrier(), nil)
	// A relayed member's own leave is theirs: nothing on IRC, no error.
	leave := &bridgev2.MatrixMembershipChange{Target: bob, Type: bridgev2.Leave}
	leave.Portal, leave.Content, leave.OrigSender = portal, &event.MemberEventContent{Membership: event.MembershipLeave}, erin
	if _, err := cl.HandleMatrixMembership(ctx, leave); err != nil {
		t.Errorf("a relayed member's leave: %v", err)
	}

	// The admin may let the relay take some actions for everyone.
	cl.connector.Config.RelayActions = []string{config.RelayActionTopic}
	if _, err := cl.HandleMatrixRoomTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "an allowed relayed topic", w.barrier(), []string{"TOPIC #chan relayed"})
	// The user's own actions (no OrigSender) are unchanged.
	kick.OrigSender = nil
	if _, err := cl.HandleMatrixMembership(ctx, kick); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "the user's own kick", w.barrier(), []string{"KICK #chan bob :"})
}

// Inviting into a channel portal takes the power level of IRC ops, so that a member cannot bring
// people into a +i or +k channel's room.
func TestChannelPortalInviteNeedsOps(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan", "me", "bob")
	info, err := cl.GetChatInfo(context.Background(), portalFor(cl.channelKey("#chan")))
	if err != nil {
		t.Fatal(err)
	}
	if pl := info.Members.PowerLevels; pl == nil || pl.Invite == nil || *pl.Invite != powerLevel("o") {
		t.Fatalf("invite level %+v, want %d (ops)", pl, powerLevel("o"))
	}
}

// The user's own membership changes in a private chat (accepting its invite, leaving) need nothing
// on IRC and are not errors; moderation there (a kick of the other nick) is refused with the reason.
func TestOwnMembershipInPrivateChatIsNotAnError(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	portal := portalFor(cl.dmKey("bob"))
	me := &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: cl.loginID}, Client: cl}
	for _, typ := range []bridgev2.MembershipChangeType{bridgev2.AcceptInvite, bridgev2.Leave, bridgev2.ProfileChange} {
		m := &bridgev2.MatrixMembershipChange{Target: me, Type: typ}
		m.Portal, m.Content = portal, &event.MemberEventContent{Membership: typ.To}
		if _, err := cl.HandleMatrixMembership(context.Background(), m); err != nil {
			t.Errorf("%+v in a private chat: %v", typ, err)
		}
	}
	bob := &bridgev2.Ghost{Ghost: &database.Ghost{ID: MakeUserID("net", "bob")}}
	kick := &bridgev2.MatrixMembershipChange{Target: bob, Type: bridgev2.Kick}
	kick.Portal, kick.Content = portal, &event.MemberEventContent{Membership: event.MembershipLeave}
	if _, err := cl.HandleMatrixMembership(context.Background(), kick); err == nil {
		t.Error("a kick in a private chat was accepted")
	}
	wantWire(t, "private chat membership", w.barrier(), nil)
}
