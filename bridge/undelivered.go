package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/sbdb"
)

// Undelivered messages: what the spool gives up on (a day old, or failed at several starts) is
// never dropped silently. It is counted in sealbridge_undelivered_messages_total, and
// told: IRC messages that never reached Matrix to the user of their login (in the management room,
// at once or when the login is next loaded), Matrix messages that never reached IRC to the room
// they were sent in.

// undeliveredNotices holds the counts of logins not loaded when their messages were given up.
type undeliveredNotices struct {
	mu      sync.Mutex
	byLogin map[string]int
}

// tellUndelivered is the spool's Tell.
func (c *IRCConnector) tellUndelivered(kind string, items []sbdb.SpoolItem, cutoff time.Time) {
	reason := func(it sbdb.SpoolItem) string {
		if sbdb.SpoolSeqTime(it.Seq).Before(cutoff) {
			return metrics.UndeliveredExpired
		}
		return metrics.UndeliveredAttempts
	}
	switch kind {
	case sbdb.SpoolIRC:
		byLogin := map[string]int{}
		for _, it := range items {
			c.Metrics.Undelivered.WithLabelValues(metrics.IRCToMatrix, reason(it)).Inc()
			byLogin[it.Owner]++
		}
		for login, n := range byLogin {
			c.noteUndelivered(login, n)
		}
	case sbdb.SpoolMatrix:
		type roomDrop struct {
			n       int
			senders map[string]bool
		}
		byRoom := map[id.RoomID]*roomDrop{}
		for _, it := range items {
			c.Metrics.Undelivered.WithLabelValues(metrics.MatrixToIRC, reason(it)).Inc()
			var h spool.Header
			if json.Unmarshal(it.Data, &h) != nil || h.RoomID == "" {
				continue
			}
			d := byRoom[h.RoomID]
			if d == nil {
				d = &roomDrop{senders: map[string]bool{}}
				byRoom[h.RoomID] = d
			}
			d.n++
			d.senders[string(h.Sender)] = true
		}
		if c.Bridge == nil || c.Bridge.Bot == nil {
			return
		}
		for room, d := range byRoom {
			senders := make([]string, 0, len(d.senders))
			for s := range d.senders {
				senders = append(senders, s)
			}
			sort.Strings(senders)
			text := fmt.Sprintf("\u26a0\ufe0f %d message(s) sent here (by %s) could not be delivered to IRC and were given up.", d.n, strings.Join(senders, ", "))
			go c.postNotice(room, text)
		}
	}
}

// postNotice posts a notice in a room as the bridge bot (encrypted where the room is).
func (c *IRCConnector) postNotice(room id.RoomID, text string) {
	ctx, cancel := context.WithTimeout(c.Bridge.Log.WithContext(c.Bridge.BackgroundCtx), time.Minute)
	defer cancel()
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if _, err := c.Bridge.Bot.SendMessage(ctx, room, event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
		c.Bridge.Log.Err(err).Stringer("room_id", room).Msg("Failed to post a notice of undelivered messages")
	}
}

// noteUndelivered tells a login's user that n IRC messages were given up, now if the login is
// loaded, else when it is (takeUndelivered).
func (c *IRCConnector) noteUndelivered(login string, n int) {
	c.clientsLock.Lock()
	cl := c.all[login]
	c.clientsLock.Unlock()
	if cl != nil && cl.login != nil {
		go cl.tellUndelivered(n)
		return
	}
	c.undelivered.mu.Lock()
	if c.undelivered.byLogin == nil {
		c.undelivered.byLogin = map[string]int{}
	}
	c.undelivered.byLogin[login] += n
	c.undelivered.mu.Unlock()
}

// takeUndelivered is how many given-up messages a login's user has not been told of yet.
func (c *IRCConnector) takeUndelivered(login string) int {
	c.undelivered.mu.Lock()
	defer c.undelivered.mu.Unlock()
	n := c.undelivered.byLogin[login]
	delete(c.undelivered.byLogin, login)
	return n
}

func (cl *IRCClient) tellUndelivered(n int) {
	ctx, cancel := context.WithTimeout(cl.log.WithContext(context.Background()), time.Minute)
	defer cancel()
	cl.notifyUser(ctx, "%d message(s) from %s could not be delivered to your Matrix rooms and were given up (the homeserver refused them, or they waited over a day).", n, cl.network.DisplayName())
}
