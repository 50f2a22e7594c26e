package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/sbdb"
)

// The inbox makes Matrix -> IRC delivery survive a crash. mautrix acknowledges an appservice
// transaction as soon as its events are in memory, so a kill -9 before they reach IRC would lose
// them: the homeserver never sends an acknowledged transaction again. The inbox stands in front of
// mautrix's transaction handler, writes the events that will go to IRC to the database first, and
// only then lets mautrix handle (and acknowledge) the transaction. An event leaves the inbox when
// its lines are on the IRC socket or it failed with an error its sender saw; what is left at the
// next start is handled again.
const (
	// maxTransactionBytes bounds the body read from the homeserver (Synapse sends at most 100
	// events and 100 ephemeral events per transaction).
	maxTransactionBytes = 64 << 20
)

// inboxTypes are the event types that can become IRC lines (encrypted ones are decrypted later).
var inboxTypes = map[string]bool{
	"m.room.encrypted": true, "m.room.message": true, "m.sticker": true, "m.reaction": true, "m.room.redaction": true,
}

// Inbox is the crash inbox in front of mautrix's transaction handler (see above).
type Inbox struct {
	spool *Spool
	as    *appservice.AppService
	br    *bridgev2.Bridge
	log   zerolog.Logger
	// keepFn decides which events are stored (keep; replaced in tests).
	keepFn func(context.Context, Header) bool

	mu sync.Mutex
	// seen holds the latest events handed to mautrix in this process, live or by the startup
	// replay. Neither hands over what the other already has, so an event the homeserver resends
	// (after a crash of the bridge: stored, but its transaction never acknowledged; after a
	// restart of the homeserver: acknowledged, but the homeserver had not recorded that) is
	// handled once.
	seen *recentIDs
}

// inboxSeen bounds the inbox's memory of handled event IDs (a resend comes within minutes).
const inboxSeen = 8192

// recentIDs is a set of the last n IDs added.
type recentIDs struct {
	set  map[id.EventID]struct{}
	ring []id.EventID
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[id.EventID]struct{}, n), ring: make([]id.EventID, n)}
}

func (r *recentIDs) has(evt id.EventID) bool {
	_, ok := r.set[evt]
	return ok
}

// remove forgets evt (its slot in the ring is reused in turn).
func (r *recentIDs) remove(evt id.EventID) { delete(r.set, evt) }

func (r *recentIDs) add(evt id.EventID) {
	if evt == "" || r.has(evt) {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = evt
	r.set[evt] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// NewInbox wraps the appservice's transaction endpoint, storing in sp; nil without a spool or an
// appservice router. Every method accepts a nil *Inbox and does nothing.
func NewInbox(br *bridgev2.Bridge, sp *Spool, as *appservice.AppService, ep *appservice.EventProcessor) *Inbox {
	if sp == nil || as == nil || as.Router == nil {
		return nil
	}
	in := &Inbox{
		spool: sp,
		as:    as,
		br:    br,
		log:   br.Log.With().Str("component", "inbox").Logger(),
		seen:  newRecentIDs(inboxSeen),
	}
	in.keepFn = in.keep
	if ep != nil {
		// Commands in portal rooms go to bridgev2's command processor, never to the connector's
		// handlers: they are done once seen (decrypted events are dispatched here again).
		ep.On(event.EventMessage, in.skipCommand)
	}
	inner := as.Router
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnID}", in.putTransaction)
	mux.Handle("/", inner)
	as.Router = mux
	return in
}

// Start hands what an earlier run left in the spool to mautrix again, in the background.
func (in *Inbox) Start(ctx context.Context) {
	if in != nil {
		go in.replay(ctx)
	}
}

// Done marks an event as finished: its lines are on the IRC socket, or it failed and its sender
// was told.
func (in *Inbox) Done(eventID id.EventID) {
	if in != nil {
		in.spool.Done(sbdb.SpoolMatrix, string(eventID))
	}
}

// DoneEvent is Done for an event that may be missing.
func (in *Inbox) DoneEvent(evt *event.Event) {
	if evt != nil {
		in.Done(evt.ID)
	}
}

// skipCommand marks a bot command sent in a portal room as done (see NewInbox).
func (in *Inbox) skipCommand(ctx context.Context, evt *event.Event) {
	msg := evt.Content.AsMessage()
	if msg == nil || in.br.Config == nil || in.br.Config.CommandPrefix == "" {
		return
	}
	plain := *msg
	plain.RemoveReplyFallback()
	if strings.HasPrefix(plain.Body, in.br.Config.CommandPrefix) {
		in.Done(evt.ID)
	}
}

// Header is the part of an event the inbox looks at.
type Header struct {
	ID       id.EventID `json:"event_id"`
	RoomID   id.RoomID  `json:"room_id"`
	Type     string     `json:"type"`
	Sender   id.UserID  `json:"sender"`
	StateKey *string    `json:"state_key"`
}

// keep reports whether an event may become IRC lines: a message-like event in a portal room from
// a real Matrix user (never the bot or a ghost, whose events are the bridge's own).
func (in *Inbox) keep(ctx context.Context, h Header) bool {
	if h.ID == "" || h.StateKey != nil || !inboxTypes[h.Type] {
		return false
	}
	if h.Sender == in.br.Bot.GetMXID() || in.br.IsGhostMXID(h.Sender) {
		return false
	}
	portal, err := in.br.GetPortalByMXID(ctx, h.RoomID)
	return err == nil && portal != nil
}

func (in *Inbox) putTransaction(w http.ResponseWriter, r *http.Request) {
	if !in.as.CheckServerToken(w, r) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTransactionBytes))
	_ = r.Body.Close()
	if err != nil {
		mautrix.MNotJSON.WithMessage("Failed to read the transaction").Write(w)
		return
	}
	if err := in.spool.waitReady(r.Context()); err != nil {
		if r.Context().Err() == nil {
			mautrix.MUnknown.WithMessage("The bridge is starting; try again").WithStatus(http.StatusServiceUnavailable).Write(w)
		}
		return
	}
	var txn map[string]json.RawMessage
	var events []json.RawMessage
	if json.Unmarshal(body, &txn) != nil || json.Unmarshal(txn["events"], &events) != nil {
		in.forward(w, r, body) // mautrix answers malformed transactions itself
		return
	}
	ctx := in.log.WithContext(r.Context())
	now := time.Now()
	headers := make([]Header, len(events))
	for i, raw := range events {
		_ = json.Unmarshal(raw, &headers[i])
	}
	kept := events[:0:0]
	var keptHeaders []Header
	in.mu.Lock()
	for i, raw := range events {
		if in.seen.has(headers[i].ID) {
			continue // handed over already: live, or by the startup replay
		}
		// Marked at once, so that a copy of this transaction arriving meanwhile skips it too.
		in.seen.add(headers[i].ID)
		kept = append(kept, raw)
		keptHeaders = append(keptHeaders, headers[i])
	}
	in.mu.Unlock()
	var store []sbdb.SpoolItem
	for i, h := range keptHeaders {
		if in.keepFn(ctx, h) {
			store = append(store, sbdb.SpoolItem{Kind: sbdb.SpoolMatrix, ID: string(h.ID), Owner: string(h.RoomID), Seq: sbdb.SpoolSeq(now, i), Data: kept[i]})
		}
	}
	if err = in.spool.Put(ctx, store); err != nil {
		// Not acknowledged: the homeserver sends the transaction again later.
		in.mu.Lock()
		for _, h := range keptHeaders {
			in.seen.remove(h.ID) // not handed over: the resend must be taken
		}
		in.mu.Unlock()
		in.log.Err(err).Int("events", len(store)).Msg("Failed to store Matrix events; the homeserver will resend them")
		mautrix.MUnknown.WithMessage("The bridge could not store the events").WithStatus(http.StatusInternalServerError).Write(w)
		return
	}
	if len(kept) < len(events) {
		if txn["events"], err = json.Marshal(kept); err == nil {
			body, err = json.Marshal(txn)
		}
		if err != nil {
			mautrix.MUnknown.WithMessage("Failed to re-encode the transaction").WithStatus(http.StatusInternalServerError).Write(w)
			return
		}
	}
	in.forward(w, r, body)
}

// forward hands a transaction body to mautrix's own handler.
func (in *Inbox) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	in.as.PutTransaction(w, r)
}

// replay hands the events stored by an earlier run to mautrix as one more transaction per batch.
// Their logins may not be connected yet; the connector's handlers wait for them. The inbox's lock
// is held only to pick the events out, never while mautrix handles them: live transactions go on
// meanwhile.
func (in *Inbox) replay(ctx context.Context) {
	pending, err := in.spool.Pending(ctx, sbdb.SpoolMatrix, "")
	if err != nil {
		in.log.Err(err).Msg("Failed to read the Matrix inbox")
		return
	}
	var batches [][]json.RawMessage
	var batch []json.RawMessage
	in.mu.Lock()
	for _, e := range pending {
		if in.seen.has(id.EventID(e.ID)) {
			continue // the homeserver resent it before the replay ran
		}
		in.seen.add(id.EventID(e.ID))
		batch = append(batch, json.RawMessage(e.Data))
		if len(batch) == 100 {
			batches, batch = append(batches, batch), nil
		}
	}
	in.mu.Unlock()
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	replayed := 0
	for i, b := range batches {
		body, _ := json.Marshal(map[string]any{"events": b})
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, "/_matrix/app/v1/transactions/replay", bytes.NewReader(body))
		if err != nil {
			in.log.Err(err).Msg("Failed to make the replay transaction")
			return
		}
		req.SetPathValue("txnID", fmt.Sprintf("sealbridge-replay-%d-%d", time.Now().UnixNano(), i))
		req.Header.Set("Authorization", "Bearer "+in.as.Registration.ServerToken)
		rec := &replayResponse{header: http.Header{}, code: http.StatusOK}
		in.as.PutTransaction(rec, req)
		if rec.code != http.StatusOK {
			in.log.Error().Int("status", rec.code).Str("response", rec.body.String()).Msg("mautrix refused replayed Matrix events")
		}
		replayed += len(b)
	}
	if replayed > 0 {
		in.log.Info().Int("events", replayed).Msg("Handling Matrix events again that an earlier run acknowledged but had not delivered to IRC")
	}
}

// replayResponse takes mautrix's answer to a replayed transaction.
type replayResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *replayResponse) Header() http.Header         { return r.header }
func (r *replayResponse) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *replayResponse) WriteHeader(code int)        { r.code = code }
