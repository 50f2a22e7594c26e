// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package mxclient_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

func homeserver(t *testing.T) string {
	t.Helper()
	hs := os.Getenv("SEALBRIDGE_TEST_HS_URL")
	if hs == "" {
		t.Skip("SEALBRIDGE_TEST_HS_URL is not set")
	}
	return hs
}

func newClient(ctx context.Context, t *testing.T, name string) *mxclient.Client {
	t.Helper()
	dir := os.Getenv("SEALBRIDGE_E2E_LOG_DIR") // keep the logs there when set
	if dir == "" {
		dir = t.TempDir()
	}
	logPath := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log")
	c, err := mxclient.New(ctx, logPath)
	if err != nil {
		t.Fatalf("starting client %s: %v", name, err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				// The tail is what matters; the whole log can be large.
				const max = 20000
				if len(b) > max {
					b = b[len(b)-max:]
				}
				t.Logf("---- tail of %s ----\n%s", logPath, b)
			}
		}
	})
	return c
}

func login(ctx context.Context, t *testing.T, c *mxclient.Client, hs, user string) string {
	t.Helper()
	start := time.Now()
	userID, deviceID, err := c.Login(ctx, hs, user, "pass-"+user, true)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	info := c.LoginInfo()
	if !info.CrossSigningReady || !info.DeviceCrossSigned {
		t.Fatalf("login %s: cross-signing not set up: %+v", user, info)
	}
	t.Logf("%s logged in as %s device %s in %v (%+v)", user, userID, deviceID, time.Since(start), info.Timings)
	return userID
}

// TestEncryptedDMFirstMessage: two cross-signed users, an encrypted DM, and the
// very first message in the fresh room must decrypt for the invitee; the
// reply must decrypt for the creator. A second device of the invitee that
// logs in later must report the old message as undecryptable (not silently
// drop it).
func TestEncryptedDMFirstMessage(t *testing.T) {
	hs := homeserver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	a := newClient(ctx, t, "alice")
	b := newClient(ctx, t, "bob")

	// Log both in concurrently (each bootstraps cross-signing).
	bch := make(chan error, 1)
	go func() {
		_, _, err := b.Login(ctx, hs, "bob"+suffix, "pass-bob"+suffix, true)
		bch <- err
	}()
	aliceID := login(ctx, t, a, hs, "alice"+suffix)
	if err := <-bch; err != nil {
		t.Fatalf("login bob: %v", err)
	}
	bobID := b.UserID()
	if info := b.LoginInfo(); !info.DeviceCrossSigned {
		t.Fatalf("bob's device is not cross-signed: %+v", info)
	} else {
		t.Logf("bob logged in as %s device %s (%+v)", info.UserID, info.DeviceID, info.Timings)
	}

	roomID, err := a.CreateDM(ctx, bobID)
	if err != nil {
		t.Fatalf("create_dm: %v", err)
	}
	// The first message, right away: bob may not even have joined yet.
	firstID, err := a.Send(ctx, roomID, "m.text", "first message "+suffix, "")
	if err != nil {
		t.Fatalf("send: %v", err)
	}

	inv, err := b.WaitInvite(ctx, func(i mxclient.Invite) bool { return i.RoomID == roomID })
	if err != nil {
		t.Fatalf("bob never got the invite: %v", err)
	}
	if inv.Sender != aliceID || !inv.IsDirect {
		t.Errorf("invite = %+v, want a direct invite from %q", inv, aliceID)
	}

	ev, err := b.WaitDecrypted(ctx, firstID)
	if err != nil {
		t.Fatalf("bob: first message: %v", err)
	}
	if first, _ := b.FirstReport(firstID); first.DecryptionError != "" {
		// Normal when the room event comes down sync before the to-device
		// room key; it must not stay that way (checked above).
		t.Logf("bob: first message was undecryptable at first: %s", first.DecryptionError)
	}
	if ev.Type != "m.room.message" || ev.Body() != "first message "+suffix || ev.MsgType() != "m.text" || !ev.Encrypted || ev.Sender != aliceID {
		t.Fatalf("bob's view of the first message is wrong: %s", ev)
	}
	t.Logf("bob: %s", ev)

	// Bob replies with HTML; alice must decrypt it.
	replyID, err := b.Send(ctx, roomID, "m.emote", "waves back", "<b>waves</b> back")
	if err != nil {
		t.Fatalf("bob send: %v", err)
	}
	ev, err = a.WaitDecrypted(ctx, replyID)
	if err != nil {
		t.Fatalf("alice: bob's reply: %v", err)
	}
	if ev.Type != "m.room.message" || ev.MsgType() != "m.emote" || ev.Body() != "waves back" ||
		ev.FormattedBody() != "<b>waves</b> back" || !ev.Encrypted || ev.Sender != bobID {
		t.Fatalf("alice's view of the reply is wrong: %s %v", ev, ev.Content)
	}
	t.Logf("alice: %s", ev)

	// Alice sees bob's device cross-signed by bob (what the bridge checks
	// before sharing keys with a device).
	devs, err := a.Devices(ctx, bobID)
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	if !devs.HasCrossSigning || len(devs.Devices) != 1 || !devs.Devices[0].SignedByOwner {
		t.Fatalf("alice's view of bob's devices: %+v", devs)
	}

	// State events are reported too.
	if _, err := a.WaitEvent(ctx, func(e mxclient.Event) bool {
		return e.RoomID == roomID && e.Type == "m.room.encryption" && e.IsState() && e.Content["algorithm"] == "m.megolm.v1.aes-sha2"
	}); err != nil {
		t.Fatalf("no m.room.encryption state event: %v", err)
	}
	if _, err := a.WaitEvent(ctx, mxclient.Membership(roomID, bobID, "join")); err != nil {
		t.Fatalf("alice never saw bob join: %v", err)
	}
	members, err := a.Members(ctx, roomID)
	if err != nil {
		t.Fatalf("members: %v", err)
	}
	joined := 0
	for _, m := range members {
		if m.Membership == "join" {
			joined++
		}
	}
	if joined != 2 {
		t.Errorf("members = %+v, want 2 joined", members)
	}

	// A new device of bob's, logged in after the first message, sees it in
	// the timeline but has no key for it: it must be reported as
	// undecryptable, with the error.
	b2 := newClient(ctx, t, "bob2")
	if _, _, err := b2.Login(ctx, hs, "bob"+suffix, "pass-bob"+suffix, false); err != nil {
		t.Fatalf("bob's second login: %v", err)
	}
	if err := b2.Join(ctx, roomID); err != nil { // already joined: a no-op join
		t.Fatalf("bob2 join: %v", err)
	}
	if !b2.LoginInfo().HadCrossSigning {
		t.Errorf("bob's second login did not notice the existing cross-signing identity: %+v", b2.LoginInfo())
	}
	ev, err = b2.WaitEvent(ctx, mxclient.EventID(firstID))
	if err != nil {
		t.Fatalf("bob's second device never saw the old message in its timeline: %v", err)
	}
	if ev.DecryptionError == "" || ev.Type != "m.room.encrypted" || !ev.Encrypted {
		t.Fatalf("bob's second device should report the old message as undecryptable, got %s", ev)
	}
	t.Logf("bob2 (undecryptable, as expected): %s", ev)
}

// TestFirstMessageToInvitee: the first message is sent while the invitee has
// not joined yet (autojoin off); it must still decrypt once they join, because
// the room key is shared with invited members.
func TestFirstMessageToInvitee(t *testing.T) {
	hs := homeserver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	a := newClient(ctx, t, "carol")
	b := newClient(ctx, t, "dave")
	if err := b.SetAutojoin(ctx, false); err != nil {
		t.Fatal(err)
	}
	login(ctx, t, a, hs, "carol"+suffix)
	daveID := login(ctx, t, b, hs, "dave"+suffix)

	roomID, err := a.CreateDM(ctx, daveID)
	if err != nil {
		t.Fatalf("create_dm: %v", err)
	}
	firstID, err := a.Send(ctx, roomID, "m.notice", "before you joined", "")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, err := b.WaitInvite(ctx, func(i mxclient.Invite) bool { return i.RoomID == roomID }); err != nil {
		t.Fatalf("no invite: %v", err)
	}
	members, err := a.Members(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.UserID == daveID && m.Membership != "invite" {
			t.Fatalf("dave should still be invited, not %q", m.Membership)
		}
	}
	if err := b.Join(ctx, roomID); err != nil {
		t.Fatalf("join: %v", err)
	}
	ev, err := b.WaitDecrypted(ctx, firstID)
	if err != nil {
		t.Fatalf("dave: first message: %v", err)
	}
	if first, _ := b.FirstReport(firstID); first.DecryptionError != "" {
		t.Logf("dave: first message was undecryptable at first: %s", first.DecryptionError)
	}
	if ev.Type != "m.room.message" || ev.MsgType() != "m.notice" || ev.Body() != "before you joined" {
		t.Fatalf("wrong first message: %s", ev)
	}
	// Helpers agree.
	if _, err := b.WaitEvent(ctx, mxclient.Message(roomID, "", "before you joined")); err != nil {
		t.Fatal(err)
	}
	if got := len(b.Events()); got == 0 {
		t.Fatal("Events() is empty")
	}

	// Edits are reported with their relation as read from the wire;
	// redactions with their target.
	editID, err := a.Edit(ctx, roomID, firstID, "after all")
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	ev, err = b.WaitDecrypted(ctx, editID)
	if err != nil {
		t.Fatalf("dave: edit: %v", err)
	}
	rel := ev.Relation
	newContent, _ := ev.Content["m.new_content"].(map[string]any)
	if rel["rel_type"] != "m.replace" || rel["event_id"] != firstID || newContent["body"] != "after all" {
		t.Fatalf("dave's view of the edit is wrong: %s %v", ev, ev.Content)
	}
	redID, err := a.Redact(ctx, roomID, firstID, "oops")
	if err != nil {
		t.Fatalf("redact: %v", err)
	}
	ev, err = b.WaitEvent(ctx, mxclient.EventID(redID))
	if err != nil {
		t.Fatalf("dave never saw the redaction: %v", err)
	}
	if ev.Type != "m.room.redaction" || ev.Redacts != firstID {
		t.Fatalf("dave's view of the redaction is wrong: %s redacts=%q", ev, ev.Redacts)
	}
	if err := b.Leave(ctx, roomID); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if _, err := a.WaitEvent(ctx, mxclient.Membership(roomID, daveID, "leave")); err != nil {
		t.Fatalf("carol never saw dave leave: %v", err)
	}
	mark := a.EventCount()
	if err := a.Invite(ctx, roomID, daveID); err != nil {
		t.Fatalf("re-invite: %v", err)
	}
	if _, err := a.WaitEventFrom(ctx, mark, mxclient.Membership(roomID, daveID, "invite")); err != nil {
		t.Fatalf("carol never saw dave re-invited: %v", err)
	}
	// Dave is told about the second invite too.
	n := 0
	if _, err := b.WaitInvite(ctx, func(i mxclient.Invite) bool {
		if i.RoomID == roomID {
			n++
		}
		return n == 2
	}); err != nil {
		t.Fatalf("dave was not told about the second invite: %v (%+v)", err, b.Invites())
	}
}

// TestSecureBackupRelogin: with secret storage (Element's secure backup) set
// up on the first login, a second login given the recovery key keeps the
// user's cross-signing identity and gets its device cross-signed by it.
func TestSecureBackupRelogin(t *testing.T) {
	hs := homeserver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	user := fmt.Sprintf("erin%d", time.Now().UnixNano()%1_000_000_000)

	c1 := newClient(ctx, t, "erin1")
	info1, err := c1.LoginWithOptions(ctx, mxclient.LoginOptions{Homeserver: hs, User: user, Password: "pass-" + user, Register: true, SecretStorage: true})
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if info1.RecoveryKey == "" || info1.KeyBackupVersion == "" || !info1.DeviceCrossSigned {
		t.Fatalf("first login: no recovery key / key backup / cross-signing: %+v", info1)
	}
	t.Logf("first login: %+v", info1.Timings)

	c2 := newClient(ctx, t, "erin2")
	info2, err := c2.LoginWithOptions(ctx, mxclient.LoginOptions{Homeserver: hs, User: user, Password: "pass-" + user, SecretStorage: true, RecoveryKey: info1.RecoveryKey})
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	if !info2.HadCrossSigning || !info2.DeviceCrossSigned || info2.RecoveryKey != info1.RecoveryKey {
		t.Fatalf("second login: %+v", info2)
	}
	t.Logf("second login: %+v", info2.Timings)

	// Same identity: the second device sees both devices cross-signed.
	devs, err := c2.Devices(ctx, "")
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	if !devs.HasCrossSigning || len(devs.Devices) != 2 {
		t.Fatalf("devices: %+v", devs)
	}
	for _, d := range devs.Devices {
		if !d.SignedByOwner || !d.CrossSigningVerified {
			t.Errorf("device %s is not cross-signed by the (kept) identity: %+v", d.DeviceID, d)
		}
	}
	// Another user sees erin's devices signed by their owner.
	other := newClient(ctx, t, "frank")
	login(ctx, t, other, hs, "frank"+user)
	devs, err = other.Devices(ctx, info1.UserID)
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	for _, d := range devs.Devices {
		if !d.SignedByOwner || d.CrossSigningVerified {
			t.Errorf("frank's view of erin's device %s: %+v (want signed by owner, not verified by frank)", d.DeviceID, d)
		}
	}
}
