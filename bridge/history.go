package bridge

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// History (https://ircv3.net/specs/extensions/chathistory): on a server or bouncer that keeps it
// (soju, ergo), each channel joined on a connection asks for what was said since the portal's last
// bridged message, or for the latest lines when the portal is new. The answer comes as a
// chathistory batch of ordinary PRIVMSG/NOTICE lines with their msgid and server-time, which go
// through handleMessage like live ones; bridgev2 drops any whose message ID it has already stored,
// so lines seen live, and lines we sent from Matrix (saved under the msgid of their echo), are not
// bridged twice. Anything else in a history batch (joins, parts, modes, typing) is not replayed.
//
// The config's `backfill` section decides: `enabled` turns it on or off, `max_initial_messages` is
// how many of the latest lines a new portal gets, `max_catchup_messages` how many a portal gets
// after a reconnect (one request each, within the server's ISUPPORT CHATHISTORY maximum).

const (
	// historyLimit is how many lines one request asks for when the server names no maximum.
	historyLimit = 100
	// historyLookups bounds the history lookups (a database query, then a request) one login runs
	// at once.
	historyLookups = 4
)

// hasHistory reports whether the server offers CHATHISTORY.
func (cl *IRCClient) hasHistory() bool {
	return cl.ircConn.HasCap("draft/chathistory") || cl.ircConn.HasCap("chathistory")
}

// historyLimitFor is how many lines a catch-up request asks for: backfill.max_catchup_messages,
// within ISUPPORT CHATHISTORY (the most lines per request) or historyLimit; 0 for none.
func (cl *IRCClient) historyLimitFor() int {
	limit := historyLimit
	v, _ := cl.ircConn.ISupportValue("CHATHISTORY")
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		limit = min(n, 1000)
	}
	_, _, catchup := cl.backfill()
	return max(min(limit, catchup), 0)
}

// backfill is the config's backfill section: whether history is fetched at all, and how many lines
// a new portal and a catch-up get.
func (cl *IRCClient) backfill() (enabled bool, initial, catchup int) {
	if cl.connector.Bridge == nil || cl.connector.Bridge.Config == nil {
		return true, 20, historyLimit
	}
	b := cl.connector.Bridge.Config.Backfill
	return b.Enabled, b.MaxInitialMessages, b.MaxCatchupMessages
}

// requestHistory asks for what a channel said while we were away, or for its latest lines when its
// portal has none yet.
func (cl *IRCClient) requestHistory(channel string) {
	enabled, initial, _ := cl.backfill()
	if !enabled || !cl.hasHistory() {
		return
	}
	var whenEmpty []string
	if initial > 0 {
		whenEmpty = []string{"LATEST", channel, "*", strconv.Itoa(initial)}
	}
	cl.fetchHistory(channel, cl.channelKey(channel), whenEmpty)
}

// fetchHistory asks for target's lines after the last message bridged into its portal, or sends
// whenEmpty when the portal has none. It runs off the reader goroutine: the lookup reads the
// database.
func (cl *IRCClient) fetchHistory(target string, key networkid.PortalKey, whenEmpty []string) {
	go func() {
		// A few lookups at a time per login: a reconnect asks for every channel and private chat.
		if cl.historySem != nil {
			cl.historySem <- struct{}{}
			defer func() { <-cl.historySem }()
		}
		ctx := cl.log.WithContext(context.Background())
		last, err := cl.connector.db.lastMessage(ctx, key)
		if err != nil {
			cl.log.Err(err).Msg("Failed to find the last bridged message for history")
			return
		}
		params := whenEmpty
		if last != nil {
			// Inclusive of the last message's millisecond: its duplicate is dropped by ID.
			since := ircTime(last.Timestamp.Add(-time.Millisecond))
			params = []string{"AFTER", target, "timestamp=" + since, strconv.Itoa(cl.historyLimitFor())}
			if cl.historyLimitFor() == 0 {
				params = nil // no catch-up (backfill.max_catchup_messages)
			}
		}
		if params == nil {
			return
		}
		if err = cl.ircConn.Send("CHATHISTORY", params...); err != nil {
			cl.log.Debug().Err(err).Msg("Failed to request history")
		}
	}()
}

// trackBatch follows BATCH lines (https://ircv3.net/specs/extensions/batch) so that lines inside a
// chathistory batch can be told from live ones.
func (cl *IRCClient) trackBatch(msg *ircmsg.Message) {
	if len(msg.Params) < 1 || len(msg.Params[0]) < 2 {
		return
	}
	ref := msg.Params[0][1:]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch msg.Params[0][0] {
	case '+':
		if len(msg.Params) >= 2 && strings.HasSuffix(msg.Params[1], "chathistory") {
			if cl.historyBatches == nil {
				cl.historyBatches = make(map[string]bool)
			}
			if len(cl.historyBatches) >= cl.connector.limits().MaxOpenBatches {
				cl.limited(metrics.LimitBatch) // its lines go on as live ones
				return
			}
			cl.historyBatches[ref] = true
		}
	case '-':
		delete(cl.historyBatches, ref)
	}
}

// fromHistory reports whether msg is part of a chathistory batch.
func (cl *IRCClient) fromHistory(msg *ircmsg.Message) bool {
	ok, ref := msg.GetTag("batch")
	if !ok {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.historyBatches[ref]
}

// dmHistoryWindow is how far back private chats are looked for after a restart, when the bridge
// does not know when this login was last connected.
const dmHistoryWindow = 24 * time.Hour

// requestDMHistory asks, after a reconnect, which nicks wrote to us while we were away
// (CHATHISTORY TARGETS); handleHistoryTarget then fetches each private chat.
func (cl *IRCClient) requestDMHistory() {
	if enabled, _, _ := cl.backfill(); !enabled || cl.historyLimitFor() == 0 {
		return
	}
	if cl.login == nil || !cl.hasHistory() {
		return
	}
	since := cl.awaySince()
	cl.mu.Lock()
	cl.targetsWanted = historyLimit
	cl.mu.Unlock()
	err := cl.ircConn.Send("CHATHISTORY", "TARGETS", "timestamp="+ircTime(since), "timestamp="+ircTime(time.Now().Add(time.Minute)), strconv.Itoa(historyLimit))
	if err != nil {
		cl.log.Debug().Err(err).Msg("Failed to request history targets")
	}
}

// handleHistoryTarget handles one "CHATHISTORY TARGETS <target> <timestamp>" reply line: a nick
// with private messages since we were last here gets its private chat fetched, from the last
// message bridged there.
func (cl *IRCClient) handleHistoryTarget(msg *ircmsg.Message) {
	if len(msg.Params) < 2 || msg.Params[0] != "TARGETS" || cl.ircConn.IsChannel(msg.Params[1]) || safeArg(msg.Params[1]) != nil {
		return // channels are fetched when joined
	}
	// Only as many targets as asked for, once per connection: each costs a database lookup and
	// a history request.
	cl.mu.Lock()
	wanted := cl.targetsWanted > 0
	if wanted {
		cl.targetsWanted--
	}
	cl.mu.Unlock()
	if !wanted {
		cl.limited(metrics.LimitHistory)
		return
	}
	nick := msg.Params[1]
	since := cl.awaySince()
	cl.fetchHistory(nick, cl.dmKey(nick), []string{"AFTER", nick, "timestamp=" + ircTime(since), strconv.Itoa(cl.historyLimitFor())})
}

// awaySince is when the previous connection ended, or dmHistoryWindow ago after a restart.
func (cl *IRCClient) awaySince() time.Time {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.lastConnected.IsZero() {
		return time.Now().Add(-dmHistoryWindow)
	}
	return cl.lastConnected
}

// ircTime formats a time the way server-time and CHATHISTORY write it.
func ircTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
