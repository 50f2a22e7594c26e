package bridge

import (
	"context"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/sealbridge/sealbridge/sbdb"
)

// A channel found as this login last synced it hands bridgev2 no chat info (its room already
// shows it); a changed member list, a day-old sync, another login or a room not made yet syncs in
// full. What was synced is stored on the portal.
func TestNamesResyncSkipsAnUnchangedChannel(t *testing.T) {
	cl, _ := newWireClient(t, wireOpts{})
	ctx := context.Background()
	withBridgeDB(t, cl.connector)
	joinedChannel(cl, "#chan", "me", "bob")
	portal := portalFor(cl.channelKey("#chan"))
	portal.Bridge = cl.connector.Bridge
	portal.BridgeID = "sealbridge"
	portal.Metadata.(*sbdb.PortalMetadata).Target = "#chan"
	must(t, cl.connector.Bridge.DB.Portal.Insert(ctx, portal.Portal))

	resync := func(cl *IRCClient) (synced bool) {
		t.Helper()
		r := cl.newNamesResync("#chan")
		info, err := r.GetChatInfo(ctx, portal)
		if err != nil {
			t.Fatal(err)
		}
		r.PostHandle(ctx, portal)
		return info != nil
	}
	r := cl.newNamesResync("#chan")
	if info, _ := r.GetChatInfo(ctx, portal); info == nil {
		t.Fatal("a room not made yet was not given its chat info")
	}
	portal.MXID = "!room:example.org" // bridgev2 made the room with it, then post-handles
	r.PostHandle(ctx, portal)
	if resync(cl) {
		t.Error("an unchanged channel was synced again")
	}
	stored, err := cl.connector.Bridge.DB.Portal.GetByKey(ctx, portal.PortalKey)
	must(t, err)
	if st := stored.Metadata.(*sbdb.PortalMetadata).Synced[string(cl.loginID)]; st.Digest == "" {
		t.Error("the sync state was not stored on the portal")
	}
	other, _ := newWireClient(t, wireOpts{})
	other.loginID = "net:@other:example.org"
	joinedChannel(other, "#chan", "me", "bob")
	if !resync(other) {
		t.Error("another login's first resync was skipped (its user may not be in the room)")
	}
	joinedChannel(cl, "#chan", "me", "bob", "carol")
	if !resync(cl) {
		t.Error("a channel with a new member was not synced")
	}
	if resync(cl) {
		t.Error("the channel with its new member was synced twice")
	}
	meta := portal.Metadata.(*sbdb.PortalMetadata)
	st := meta.Synced[string(cl.loginID)]
	st.At = time.Now().Add(-fullResyncInterval - time.Minute).Unix()
	meta.Synced[string(cl.loginID)] = st
	if !resync(cl) {
		t.Error("a channel last synced over a day ago was not synced")
	}
}

// In a channel two logins share, the lead's resync carries the whole member list; the other's only
// its own membership. Once the lead is gone, the other asks for NAMES and, at its end, resyncs the
// whole list.
func TestNamesResyncOfASharedChannelIsTheLeads(t *testing.T) {
	lead, other, _, otherWire := twoLoginsOnWires(t)
	ctx := context.Background()
	withBridgeDB(t, lead.connector)
	joinedChannel(lead, "#chan", "me", "bob", "carol")
	joinedChannel(other, "#chan", "me", "bob", "carol")
	portal := portalFor(lead.channelKey("#chan"))
	portal.MXID = "!room:example.org"
	portal.Metadata.(*sbdb.PortalMetadata).Target = "#chan"
	members := func(cl *IRCClient) *bridgev2.ChatMemberList {
		t.Helper()
		info, err := cl.newNamesResync("#chan").GetChatInfo(ctx, portal)
		if err != nil || info == nil {
			t.Fatalf("chat info %v, %v", info, err)
		}
		return info.Members
	}
	if m := members(lead); !m.IsFull || len(m.MemberMap) != 3 {
		t.Fatalf("the lead synced %d members (full %v), want all 3", len(m.MemberMap), m.IsFull)
	}
	m := members(other)
	if m.IsFull || m.CheckAllLogins || len(m.MemberMap) != 1 {
		t.Fatalf("the other login synced %d members (full %v), want only its own", len(m.MemberMap), m.IsFull)
	}
	for _, member := range m.MemberMap {
		if !member.IsFromMe || member.PowerLevel == nil {
			t.Fatalf("the other login synced %+v, want its own membership with its power level", member)
		}
	}
	queued(other)
	lead.connector.trackClient(lead, false) // the lead disconnects
	if m := members(other); m.IsFull {
		t.Fatalf("the new lead synced %d members in full before it knew them", len(m.MemberMap))
	}
	if lines := otherWire.barrier(); !slices.Contains(lines, "NAMES #chan") {
		t.Fatalf("the new lead sent %q, want NAMES #chan", lines)
	}
	other.handleNames("#chan", "me @bob carol")
	other.handleEndOfNames("#chan")
	if n := len(queued(other)); n != 1 {
		t.Fatalf("the end of the new lead's NAMES queued %d events, want its resync", n)
	}
	if m := members(other); !m.IsFull || len(m.MemberMap) != 3 {
		t.Fatalf("the remaining login synced %d members (full %v), want all 3", len(m.MemberMap), m.IsFull)
	}
}
