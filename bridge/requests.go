package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/sbdb"
)

// Message requests: a private message from someone the user has no chat with, beyond what the DM
// policy admits (admit.go), waits in the spool (kind SpoolRequest, sealed like other spooled
// messages) instead of making a room. The user sees one notice in the management room, edited as
// more arrive, and opens a chat with `pm <nick>`: the waiting messages are then delivered into it,
// in order. `requests` lists them and `requests clear [nick]` drops them. At most
// limits.max_dm_requests messages wait per login; beyond that they are dropped and counted, and
// the notice says how many.

// requestNoticeEvery bounds how often the requests notice is edited.
const requestNoticeEvery = 30 * time.Second

// requests is a login's held messages, by casefolded nick (their bodies are in the spool).
type requests struct {
	mu      sync.Mutex
	ids     map[string]string // message ID -> casefolded nick
	byNick  map[string]*requester
	dropped int
	// notice is the management-room notice that lists the requests (edited as they change);
	// noticeAt when it was last sent, pending whether an edit is scheduled.
	notice   id.EventID
	noticeAt time.Time
	pending  bool
}

type requester struct {
	nick  string // as IRC spells it
	count int
}

// holdRequest keeps a private message from someone without a chat as a message request.
func (cl *IRCClient) holdRequest(m *spooledMessage) {
	if m == nil {
		return
	}
	folded := cl.fold(m.Data.Nick)
	limit := cl.connector.limits().MaxDMRequests
	r := &cl.requests
	r.mu.Lock()
	if r.ids == nil {
		r.ids, r.byNick = map[string]string{}, map[string]*requester{}
	}
	if _, dup := r.ids[string(m.ID)]; dup {
		r.mu.Unlock()
		return // the same line again (history after a reconnect)
	}
	if len(r.ids) >= limit {
		r.dropped++
		r.mu.Unlock()
		cl.limited(metrics.LimitDMRequests)
		cl.scheduleRequestNotice()
		return
	}
	r.ids[string(m.ID)] = folded
	req := r.byNick[folded]
	if req == nil {
		req = &requester{nick: m.Data.Nick}
		r.byNick[folded] = req
	}
	req.count++
	r.mu.Unlock()
	cl.limited(metrics.LimitNewDMs)
	if sp := cl.connector.spool; sp != nil {
		// Stored off the reader goroutine (at most max_dm_requests writes wait at once).
		data, err := json.Marshal(m)
		item := sbdb.SpoolItem{Kind: sbdb.SpoolRequest, Owner: string(cl.loginID), ID: string(m.ID), Seq: cl.remote.NextSeq(), Data: data}
		go func() {
			if err == nil {
				err = sp.Put(context.Background(), []sbdb.SpoolItem{item})
			}
			if err != nil {
				cl.log.Err(err).Msg("Failed to store a message request")
			}
		}()
	}
	cl.scheduleRequestNotice()
}

// loadRequests counts the requests an earlier run held, so that the limit and `requests` see them.
func (cl *IRCClient) loadRequests(ctx context.Context) {
	items, err := cl.connector.spool.Items(ctx, sbdb.SpoolRequest, string(cl.loginID))
	if err != nil {
		cl.log.Err(err).Msg("Failed to read the login's message requests")
		return
	}
	r := &cl.requests
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids, r.byNick = map[string]string{}, map[string]*requester{}
	}
	for _, it := range items {
		var m spooledMessage
		if json.Unmarshal(it.Data, &m) != nil {
			continue
		}
		folded := cl.fold(m.Data.Nick)
		r.ids[it.ID] = folded
		if r.byNick[folded] == nil {
			r.byNick[folded] = &requester{nick: m.Data.Nick}
		}
		r.byNick[folded].count++
	}
}

// releaseRequests delivers the messages nick's requests hold into the chat the user just opened,
// in the order they came, and forgets them as requests.
func (cl *IRCClient) releaseRequests(folded string) {
	r := &cl.requests
	r.mu.Lock()
	req := r.byNick[folded]
	delete(r.byNick, folded)
	var ids []string
	for mid, nick := range r.ids {
		if nick == folded {
			ids = append(ids, mid)
			delete(r.ids, mid)
		}
	}
	r.mu.Unlock()
	if req == nil || cl.connector.spool == nil {
		return
	}
	ctx := cl.log.WithContext(context.Background())
	items, err := cl.connector.spool.Items(ctx, sbdb.SpoolRequest, string(cl.loginID))
	if err != nil {
		cl.log.Err(err).Msg("Failed to read message requests")
		return
	}
	var events []bridgev2.RemoteEvent
	for _, it := range items {
		var m spooledMessage
		if json.Unmarshal(it.Data, &m) != nil || cl.fold(m.Data.Nick) != folded {
			continue
		}
		events = append(events, cl.outboxEvent(&m, time.Time{}))
	}
	for _, evt := range events {
		cl.remote.Push(evt) // spooled as IRC messages before bridgev2 sees them, like live ones
	}
	cl.connector.spool.DoneNow(ctx, sbdb.SpoolRequest, ids...)
	cl.scheduleRequestNotice()
}

// clearRequests drops the requests of nick, or all of them for "", and says how many it dropped.
func (cl *IRCClient) clearRequests(folded string) int {
	r := &cl.requests
	r.mu.Lock()
	var ids []string
	for mid, nick := range r.ids {
		if folded == "" || nick == folded {
			ids = append(ids, mid)
			delete(r.ids, mid)
		}
	}
	if folded == "" {
		clear(r.byNick)
		r.dropped = 0
	} else {
		delete(r.byNick, folded)
	}
	r.mu.Unlock()
	cl.connector.spool.DoneNow(cl.log.WithContext(context.Background()), sbdb.SpoolRequest, ids...)
	return len(ids)
}

// requestList describes the waiting requests, most messages first; "" when there are none.
func (cl *IRCClient) requestList() string {
	r := &cl.requests
	r.mu.Lock()
	reqs := make([]requester, 0, len(r.byNick))
	total := 0
	for _, req := range r.byNick {
		reqs = append(reqs, *req)
		total += req.count
	}
	dropped := r.dropped
	r.mu.Unlock()
	if total == 0 && dropped == 0 {
		return ""
	}
	sort.Slice(reqs, func(i, j int) bool {
		if reqs[i].count != reqs[j].count {
			return reqs[i].count > reqs[j].count
		}
		return reqs[i].nick < reqs[j].nick
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Message requests on %s: %d message(s) from %d people you have no chat with.", cl.network.DisplayName(), total, len(reqs))
	for i, req := range reqs {
		if i == 20 {
			fmt.Fprintf(&b, "\n* and %d more", len(reqs)-i)
			break
		}
		fmt.Fprintf(&b, "\n* %s (%d)", req.nick, req.count)
	}
	if dropped > 0 {
		fmt.Fprintf(&b, "\n\n%d more message(s) were dropped: at most %d wait at a time.", dropped, cl.connector.limits().MaxDMRequests)
	}
	b.WriteString("\n\nOpen a chat with `$cmdprefix pm <nick>` to read someone's messages; `$cmdprefix requests clear [nick]` drops them.")
	return b.String()
}

// scheduleRequestNotice sends the requests notice now, or edits it once requestNoticeEvery has
// passed since the last time, so that a flood of requests costs one notice and a few edits.
func (cl *IRCClient) scheduleRequestNotice() {
	if cl.login == nil || cl.connector.Bridge == nil || cl.connector.Bridge.Bot == nil {
		return
	}
	r := &cl.requests
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending {
		return
	}
	r.pending = true
	wait := time.Until(r.noticeAt.Add(requestNoticeEvery))
	time.AfterFunc(max(wait, 0), cl.sendRequestNotice)
}

func (cl *IRCClient) sendRequestNotice() {
	r := &cl.requests
	r.mu.Lock()
	r.pending = false
	r.noticeAt = time.Now()
	previous := r.notice
	r.mu.Unlock()
	text := cl.requestList()
	if text == "" {
		text = fmt.Sprintf("No message requests wait on %s.", cl.network.DisplayName())
	}
	text = strings.ReplaceAll(text, "$cmdprefix", cl.connector.Bridge.Config.CommandPrefix)
	ctx, cancel := context.WithTimeout(cl.log.WithContext(context.Background()), time.Minute)
	defer cancel()
	roomID, err := cl.login.User.GetManagementRoom(ctx)
	if err != nil {
		cl.log.Err(err).Msg("Failed to get the management room for the requests notice")
		return
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if previous != "" {
		content.SetEdit(previous)
	}
	resp, err := cl.connector.Bridge.Bot.SendMessage(ctx, roomID, event.EventMessage, &event.Content{Parsed: content}, nil)
	if err != nil {
		cl.log.Err(err).Msg("Failed to send the requests notice")
		return
	}
	if previous == "" {
		r.mu.Lock()
		r.notice = resp.EventID
		r.mu.Unlock()
	}
}
