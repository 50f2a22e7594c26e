//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// TestBehindSoju runs the bridge behind the soju bouncer (v0.8.0) in front of InspIRCd, for what
// InspIRCd lacks and soju offers: CHATHISTORY, so that a new channel room starts with what was said
// before it existed; and draft/read-marker, so that reading in Matrix moves the user's read marker
// on IRC, which soju hands to the user's other IRC clients. With double puppeting set up as the
// admin guide says, what the user says and reads on that other client appears as their own Matrix
// account. Synapse, because Dendrite does not pass read receipts to appservices (MSC2409).
func TestBehindSoju(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	base := t.TempDir()
	if d := os.Getenv("SEALBRIDGE_E2E_DIR"); d != "" {
		base = filepath.Join(d, "soju")
		must(t, os.RemoveAll(base))
	}
	ircd, err := stack.StartIRC(ctx, filepath.Join(base, "irc"))
	must(t, err)
	defer ircd.Stop()
	soju, err := stack.StartSoju(ctx, filepath.Join(base, "soju"), ircd)
	must(t, err)
	defer soju.Stop()
	dir := filepath.Join(base, "bridge")
	must(t, os.MkdirAll(dir, 0o700))
	dpPath, dpToken, err := stack.WriteDoublePuppetRegistration(dir, "localhost")
	must(t, err)
	configPath, regPath, err := stack.WriteBridgeConfig(stack.BridgeSetup{
		Binary: bridgeBinary, Dir: dir, DBType: "sqlite3-fk-wal",
		DBURI: stack.SQLiteURI(filepath.Join(dir, "sealbridge.db")), ServerName: "localhost",
		IRCAddr: soju.Host, IRCPort: soju.Port, DoublePuppetToken: dpToken,
	})
	must(t, err)
	hs, err := stack.StartSynapse(ctx, filepath.Join(dir, "synapse"), regPath, dpPath)
	must(t, err)
	defer hs.Stop()
	hsURL, serverName := hs.URL, hs.ServerName
	must(t, stack.SetHomeserver(configPath, hsURL, serverName))
	cfg, err := stack.ReadYAML(configPath)
	must(t, err)
	br, err := stack.StartBridge(ctx, bridgeBinary, configPath)
	must(t, err)
	defer br.Stop()
	defer func() {
		if t.Failed() {
			t.Log(failureLog(br.LogPath))
		}
	}()

	// The user's other IRC client on the same soju account, and someone on the IRC network.
	other := newSojuClient(t, ctx, soju)
	peer := newIRCUser(t, ctx, ircd, "sojupeer")
	channel := "#soju-history"
	other.send(t, "JOIN", channel)
	other.waitFor(t, "soju joining", waitLong, func(m *ircmsg.Message) bool { return m.Command == "JOIN" && strings.EqualFold(m.Params[0], channel) })
	peer.send(t, "JOIN", channel)
	for i := 1; i <= 3; i++ {
		peer.send(t, "PRIVMSG", channel, fmt.Sprintf("before the room %d", i))
	}
	other.waitFor(t, "soju hearing the last line", waitLong, privmsgFrom("sojupeer", channel, "before the room 3"))

	mx, err := mxclient.New(ctx, filepath.Join(dir, "mxclient.log"))
	must(t, err)
	defer mx.Close()
	_, _, err = mx.Login(ctx, hsURL, "alice", "alice-password", true)
	must(t, err)
	mgmt := botLogin(t, ctx, mx, br.BotMXID, fmt.Sprintf("login sasl testnet %s %s %s", soju.User, soju.LoginName(), soju.Password))

	// soju is already in the channel: the bridge learns of it from soju's JOIN replay, makes the room
	// and fills it from CHATHISTORY, in order and once each.
	_, err = mx.Send(ctx, mgmt, "m.text", "join "+channel, "")
	must(t, err)
	room := waitRoomNamed(t, mx, channel)
	peerMXID := ghostMXID(cfg, serverName, "testnet/sojupeer")
	var last mxclient.Event
	for i := 1; i <= 3; i++ {
		last = waitMessage(t, mx, room, peerMXID, fmt.Sprintf("before the room %d", i))
	}
	var order []string
	for _, e := range mx.Events() {
		if e.RoomID == room && e.Sender == peerMXID && strings.HasPrefix(e.Body(), "before the room") {
			order = append(order, e.Body())
		}
	}
	if strings.Join(order, "|") != "before the room 1|before the room 2|before the room 3" {
		t.Errorf("history in the new room: %q, want the three lines once each, in order", order)
	}

	// Reading in Matrix moves the read marker: soju passes MARKREAD on to the user's other client.
	peer.send(t, "PRIVMSG", channel, "read me")
	readMe := other.waitFor(t, "soju passing on the line to read", waitLong, privmsgFrom("sojupeer", channel, "read me"))
	_, said := readMe.GetTag("time")
	saidAt, err := time.Parse(time.RFC3339Nano, said)
	must(t, err)
	last = waitMessage(t, mx, room, peerMXID, "read me")
	seen := len(other.messages())
	must(t, mx.ReadReceipt(ctx, room, last.EventID))
	marker := other.waitForAfter(t, seen, "MARKREAD from soju", waitLong, func(m *ircmsg.Message) bool {
		return m.Command == "MARKREAD" && len(m.Params) > 1 && strings.EqualFold(m.Params[0], channel) && strings.HasPrefix(m.Params[1], "timestamp=")
	})
	at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(marker.Params[1], "timestamp="))
	// The receipt is for "read me": the marker is at its time (to the millisecond Matrix keeps).
	if err != nil || at.Before(saidAt.Truncate(time.Millisecond)) || at.Sub(saidAt) > time.Minute {
		t.Errorf("read marker %q, want the time of the line read (%s)", marker.Params[1], said)
	}

	(&stories{t: t}).story("double-puppeting", func(t *testing.T) {
		doublePuppetStory(t, ctx, mx, other, peer, room, channel, peerMXID, ghostMXID(cfg, serverName, "testnet/"+soju.User))
	})
}

// doublePuppetStory: the user speaks and reads on their other IRC client; soju hands both to the
// bridge, which with double puppeting shows them as the user's own Matrix account: their lines sent
// as them (in the channel and in a new private chat), their read marker as their read receipt.
func doublePuppetStory(t *testing.T, ctx context.Context, mx *mxclient.Client, other, peer *ircUser, room, channel, peerMXID, ownGhost string) {
	me := mx.UserID()
	other.send(t, "PRIVMSG", channel, "said on my other client")
	own := waitMessage(t, mx, room, me, "said on my other client")
	if !own.Encrypted {
		t.Errorf("the user's own line went into the room unencrypted: %s", own)
	}
	other.send(t, "PRIVMSG", peer.c.Nick(), "a private word from my other client")
	dm := waitRoomWithMember(t, mx, peerMXID, room)
	waitMessage(t, mx, dm, me, "a private word from my other client")
	for _, e := range mx.Events() {
		if e.Sender == ownGhost {
			t.Errorf("the ghost of the user's own nick %s spoke though double puppeting is on: %s", ownGhost, e)
		}
	}

	// The user reads up to a line on the other client (MARKREAD): their Matrix read receipt follows.
	peer.send(t, "PRIVMSG", channel, "read on my other client")
	line := other.waitFor(t, "soju passing on the line", waitLong, privmsgFrom("sojupeer", channel, "read on my other client"))
	_, at := line.GetTag("time")
	target := waitMessage(t, mx, room, peerMXID, "read on my other client")
	if before, _ := mx.ReadUpTo(ctx, room, me); before == target.EventID {
		t.Fatalf("the receipt is on %s before the user read it on IRC", target.EventID)
	}
	other.send(t, "MARKREAD", channel, "timestamp="+at)
	deadline := time.Now().Add(waitLong)
	for {
		upTo, err := mx.ReadUpTo(ctx, room, me)
		must(t, err)
		if upTo == target.EventID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's read receipt is on %q, want %s (%q)", upTo, target.EventID, target.Body())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newSojuClient is another client of the soju user (as the user's own IRC client would be), with
// the read-marker capability.
func newSojuClient(t *testing.T, ctx context.Context, s *stack.Soju) *ircUser {
	t.Helper()
	u := &ircUser{more: make(chan struct{})}
	u.c = irc.New(irc.Config{
		Addr: s.Addr(), Nick: s.User, SASLUser: s.LoginName(), SASLPassword: s.Password,
		Flood: irc.FloodConfig{Burst: 20, LinesPerSecond: 20},
	}, u, zerolog.Nop())
	if err := u.c.Connect(ctx); err != nil {
		t.Fatalf("soju client cannot connect: %v", err)
	}
	if !u.c.HasCap("draft/read-marker") {
		t.Fatal("soju did not enable draft/read-marker")
	}
	t.Cleanup(func() { _ = u.c.Close() })
	return u
}
