package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/sbdb"
)

// testInbox is an inbox in front of a real mautrix AppService (its transaction handler and event
// channel), storing every m.room.message; the spool is shared so that a "restart" can reuse it.
func testInbox(t *testing.T, sp *Spool) (*Inbox, *appservice.AppService) {
	t.Helper()
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: "hs-token"}
	as.Log = zerolog.Nop()
	in := &Inbox{spool: sp, as: as, log: zerolog.Nop(), seen: newRecentIDs(inboxSeen)}
	in.keepFn = func(_ context.Context, h Header) bool { return h.Type == "m.room.message" }
	return in, as
}

func putTxn(t *testing.T, in *Inbox, txnID, token string, events ...map[string]any) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"events": events})
	req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/"+txnID, bytes.NewReader(body))
	req.SetPathValue("txnID", txnID)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	in.putTransaction(rec, req)
	return rec.Code
}

func msgEvent(eventID, body string) map[string]any {
	return map[string]any{"event_id": eventID, "room_id": "!r:x", "type": "m.room.message", "sender": "@u:x",
		"origin_server_ts": 1, "content": map[string]any{"msgtype": "m.text", "body": body}}
}

// drain takes the event IDs mautrix queued for the bridge.
func drain(as *appservice.AppService) []id.EventID {
	var ids []id.EventID
	for {
		select {
		case evt := <-as.Events:
			ids = append(ids, evt.ID)
		case <-time.After(100 * time.Millisecond):
			return ids
		}
	}
}

// spooled lists the IDs of the Matrix events waiting in the spool.
func spooled(t *testing.T, sp *Spool) []string {
	t.Helper()
	return spooledIDs(t, sp, sbdb.SpoolMatrix, "")
}

// A transaction is stored before mautrix acknowledges it; a wrong hs_token stores nothing; events a
// restarted homeserver sends again are not handled twice; after a crash what was not delivered is
// handed to mautrix again, once, even when the homeserver also resends it.
func TestInboxStoresBeforeAckAndReplaysOnce(t *testing.T) {
	sp := testSpool(t)
	in, as := testInbox(t, sp)
	in.replay(context.Background()) // the start: nothing left by an earlier run

	if code := putTxn(t, in, "t0", "wrong", msgEvent("$x", "nope")); code != http.StatusForbidden && code != http.StatusUnauthorized {
		t.Fatalf("wrong hs_token answered %d", code)
	}
	if got := spooled(t, sp); len(got) != 0 {
		t.Fatalf("stored with a wrong token: %v", got)
	}

	state := map[string]any{"event_id": "$s", "room_id": "!r:x", "type": "m.room.topic", "sender": "@u:x", "state_key": "", "content": map[string]any{"topic": "t"}}
	if code := putTxn(t, in, "t1", "hs-token", msgEvent("$a", "one"), state, msgEvent("$b", "two")); code != http.StatusOK {
		t.Fatalf("transaction answered %d", code)
	}
	if got := drain(as); len(got) != 3 {
		t.Fatalf("mautrix got %v", got)
	}
	if got := spooled(t, sp); len(got) != 2 || got[0] != "$a" || got[1] != "$b" {
		t.Fatalf("stored %v, want the two messages in order", got)
	}
	in.Done("$a") // its line reached IRC
	deadline := time.Now().Add(5 * time.Second)
	for len(spooled(t, sp)) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	// The homeserver restarts and sends the same events again under a new transaction ID (it had
	// not recorded our acknowledgement): nothing is handled twice, and $a is not stored again.
	if code := putTxn(t, in, "t1-after-homeserver-restart", "hs-token", msgEvent("$a", "one"), msgEvent("$b", "two")); code != http.StatusOK {
		t.Fatalf("resent transaction answered %d", code)
	}
	if got := drain(as); len(got) != 0 {
		t.Fatalf("mautrix got the resent events again: %v", got)
	}
	if got := spooled(t, sp); len(got) != 1 || got[0] != "$b" {
		t.Fatalf("stored after the resend: %v, want $b only", got)
	}

	// kill -9, start again: $b is handed to mautrix again; the homeserver resending the
	// transaction that carried it adds nothing.
	in2, as2 := testInbox(t, sp)
	in2.replay(context.Background())
	if got := drain(as2); len(got) != 1 || got[0] != "$b" {
		t.Fatalf("replayed %v, want $b", got)
	}
	if code := putTxn(t, in2, "t1-resent", "hs-token", msgEvent("$b", "two"), msgEvent("$c", "three")); code != http.StatusOK {
		t.Fatalf("resent transaction answered %d", code)
	}
	if got := drain(as2); len(got) != 1 || got[0] != "$c" {
		t.Fatalf("after the resend mautrix got %v, want only $c", got)
	}
}

// The inbox remembers the last inboxSeen event IDs, no more.
func TestRecentIDsIsBounded(t *testing.T) {
	r := newRecentIDs(3)
	for _, e := range []id.EventID{"$1", "$2", "$3", "$2", "$4"} {
		r.add(e)
	}
	for e, want := range map[id.EventID]bool{"$1": false, "$2": true, "$3": true, "$4": true} {
		if r.has(e) != want {
			t.Errorf("has(%s) = %v, want %v", e, !want, want)
		}
	}
	if len(r.set) != 3 {
		t.Errorf("%d IDs kept, want 3", len(r.set))
	}
	// A transaction that could not be stored forgets its events, so that the resend is taken.
	r.remove("$3")
	if r.has("$3") {
		t.Error("$3 still there after remove")
	}
	r.add("$3")
	if !r.has("$3") || !r.has("$4") {
		t.Error("re-adding lost an ID")
	}
}

// The startup replay hands events to mautrix without holding the inbox's lock, so live
// transactions are taken meanwhile even when mautrix is slow to take the replayed ones.
func TestReplayDoesNotHoldTheInboxLock(t *testing.T) {
	sp := testSpool(t)
	in, as := testInbox(t, sp)
	as.Events = make(chan *event.Event) // mautrix's handler waits until an event is taken
	must(t, sp.Put(context.Background(), []sbdb.SpoolItem{{Kind: sbdb.SpoolMatrix, Owner: "!r:x", ID: "$old", Seq: 1,
		Data: mustJSON(t, msgEvent("$old", "from the last run"))}}))
	replayed := make(chan struct{})
	go func() { in.replay(context.Background()); close(replayed) }()
	time.Sleep(100 * time.Millisecond) // the replay now waits inside mautrix's handler
	if !in.mu.TryLock() {
		t.Fatal("the replay holds the inbox's lock while mautrix handles its events")
	}
	in.mu.Unlock()
	if evt := <-as.Events; evt.ID != "$old" {
		t.Fatalf("replayed %s", evt.ID)
	}
	<-replayed
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return b
}
