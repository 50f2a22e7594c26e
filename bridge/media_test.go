package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/sbdb"
)

// A file is never sent to IRC from a room whose admin has not turned media links on (a link would
// expose the decrypted file), and without the bridge's public media it fails with that reason;
// nothing reaches the socket either way.
func TestMediaNeedsTheRoomsConsent(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	joinedChannel(cl, "#chan", "me")
	portal := portalFor(cl.channelKey("#chan"))
	msg := matrixMessage(portal, event.MsgFile, "notes.txt", "", nil)
	msg.Content.URL = "mxc://example.org/abc"
	if _, err := cl.sendToIRC(context.Background(), msg); !errors.Is(err, errMediaOff) {
		t.Fatalf("file in a room without media links: %v", err)
	}
	portal.Metadata.(*sbdb.PortalMetadata).MediaLinks = true
	if _, err := cl.sendToIRC(context.Background(), msg); err == nil || errors.Is(err, errMediaOff) {
		t.Fatalf("file without public media: %v", err)
	}
	wantWire(t, "media", w.barrier(), nil)
}

// mediaMatrix serves public-media links.
type mediaMatrix struct{ fakeMatrix }

func (mediaMatrix) GetPublicMediaAddress(mxc id.ContentURIString) string {
	return "https://bridge.example.org/media/x"
}

func (mediaMatrix) GetPublicMediaAddressForEvent(context.Context, *event.MessageEventContent) (string, error) {
	return "https://bridge.example.org/media/signed", nil
}

// A file name or caption cannot carry CTCP (a DCC offer) or other control bytes to IRC: they pass
// the same filter as message text.
func TestAttackFileNameCannotCarryCTCP(t *testing.T) {
	cl, w := newWireClient(t, wireOpts{})
	cl.connector.Bridge.Matrix = mediaMatrix{}
	joinedChannel(cl, "#chan", "me")
	portal := portalFor(cl.channelKey("#chan"))
	portal.Metadata.(*sbdb.PortalMetadata).MediaLinks = true
	msg := matrixMessage(portal, event.MsgFile, "\x01DCC SEND evil 2130706433 6667 1\x01", "", nil)
	msg.Content.URL = "mxc://example.org/abc"
	if _, err := cl.sendToIRC(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	msg = matrixMessage(portal, event.MsgImage, "\x01ACTION caption\x03", "", nil)
	msg.Content.FileName, msg.Content.URL = "\x01PING x\x01.png", "mxc://example.org/def"
	if _, err := cl.sendToIRC(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	wantWire(t, "file names", w.barrier(), []string{
		"PRIVMSG #chan :DCC SEND evil 2130706433 6667 1 https://bridge.example.org/media/signed",
		"PRIVMSG #chan :ACTION caption (image: PING x.png) https://bridge.example.org/media/signed",
	})
}

// Expired public-media links leave bridgev2's table, and with them the keys of encrypted files;
// links still valid stay.
func TestExpiredMediaKeysArePruned(t *testing.T) {
	c := NewConnector()
	withBridgeDB(t, c)
	ctx := context.Background()
	now := time.Now()
	for name, expiry := range map[string]time.Time{"old": now.Add(-time.Minute), "fresh": now.Add(time.Hour)} {
		if err := c.Bridge.DB.PublicMedia.Put(ctx, &database.PublicMedia{PublicID: name, MXC: id.ContentURI{Homeserver: "example.org", FileID: name}, Expiry: expiry}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.db.deleteExpiredMedia(ctx, now); err != nil || n != 1 {
		t.Fatalf("deleted %d (%v), want the expired one", n, err)
	}
	if pm, _ := c.Bridge.DB.PublicMedia.Get(ctx, "old"); pm != nil {
		t.Fatal("the expired link's row is still there")
	}
	if pm, _ := c.Bridge.DB.PublicMedia.Get(ctx, "fresh"); pm == nil {
		t.Fatal("a valid link's row was deleted")
	}
}
