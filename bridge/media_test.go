package bridge

import (
	"context"
	"errors"
	"testing"

	"maunium.net/go/mautrix/event"

	sbdb "github.com/sealbridge/sealbridge/database"
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
