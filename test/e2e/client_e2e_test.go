//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// The test client reports a room's state that reached it in the "state" block of its join, ahead
// of a limited timeline, like any other event. Tests wait for a portal's m.room.name; without this
// a portal with a long history before the user's join (seen on Dendrite with PostgreSQL) never
// showed its name and the wait timed out.
func TestClientReportsStateBeforeLimitedTimeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	hs, err := stack.StartDendrite(ctx, filepath.Join(dir, "dendrite"))
	must(t, err)
	defer hs.Stop()

	owner, err := mxclient.New(ctx, filepath.Join(dir, "owner.log"))
	must(t, err)
	defer owner.Close()
	_, _, err = owner.Login(ctx, hs.URL, "owner", "owner-password", true)
	must(t, err)
	guest, err := mxclient.New(ctx, filepath.Join(dir, "guest.log"))
	must(t, err)
	defer guest.Close()
	_, _, err = guest.Login(ctx, hs.URL, "guest", "guest-password", true)
	must(t, err)
	must(t, guest.SetAutojoin(ctx, false))

	room, err := owner.CreateUnencryptedDM(ctx, guest.UserID())
	must(t, err)
	_, err = owner.SendState(ctx, room, "m.room.name", map[string]any{"name": "named before the window"})
	must(t, err)
	// More events after the name than the client's timeline window (50), so that the name comes
	// in the join's state block.
	for i := 0; i < 80; i++ {
		_, err = owner.SendState(ctx, room, "m.room.topic", map[string]any{"topic": fmt.Sprint("topic ", i)})
		must(t, err)
	}
	must(t, guest.Join(ctx, room))
	c, cancelWait := context.WithTimeout(ctx, 60*time.Second)
	defer cancelWait()
	if _, err := guest.WaitEvent(c, func(e mxclient.Event) bool {
		n, _ := e.Content["name"].(string)
		return e.RoomID == room && e.Type == "m.room.name" && n == "named before the window"
	}); err != nil {
		t.Fatalf("the guest never saw the room's name: %v\nguest log:\n%s", err, tail(filepath.Join(dir, "guest.log"), 30))
	}
	// The early topics are not in the guest's timeline; the current one must be there once.
	topics := 0
	for _, e := range guest.Events() {
		if e.RoomID == room && e.Type == "m.room.topic" && e.Content["topic"] == "topic 79" {
			topics++
		}
	}
	if topics != 1 {
		t.Errorf("the current topic was reported %d times, want once", topics)
	}
}
