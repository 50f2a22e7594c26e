package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// fakeDevice is the Matrix side of Matrix->IRC: one device of a logged-in Matrix user, a real mautrix
// OlmMachine (goolm) with in-memory stores, talking to the fake homeserver like any client. It
// uploads its keys, shares a Megolm session per portal with the bridge bot's device (the room key
// travels Olm-encrypted as a to-device event, which the bridge's crypto syncer receives through
// /sync) and encrypts the messages that the world then pushes to the bridge as appservice
// transactions.
type fakeDevice struct {
	user  id.UserID
	mach  *crypto.OlmMachine
	state mautrix.StateStore
	// ready holds the events encrypted by prepare, pushed by run.
	ready     []map[string]any
	texts     []string
	rotations int // Megolm sessions shared again because the previous one expired
}

const fakeDeviceID = "BENCHDEV"

func (w *world) newFakeDevice(ctx context.Context, user id.UserID) (*fakeDevice, error) {
	tok := "device-token-" + string(user)
	w.hs.mu.Lock()
	w.hs.tokens[tok] = devRef{string(user), fakeDeviceID}
	w.hs.mu.Unlock()
	cli, err := mautrix.NewClient("http://"+w.hsAddr, user, tok)
	if err != nil {
		return nil, err
	}
	cli.DeviceID = fakeDeviceID
	state := mautrix.NewMemoryStateStore()
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err = mach.Load(ctx); err != nil {
		return nil, err
	}
	if err = mach.ShareKeys(ctx, -1); err != nil {
		return nil, fmt.Errorf("upload device keys: %w", err)
	}
	return &fakeDevice{user: user, mach: mach, state: state}, nil
}

// handleMatrixToIRCPrepare: ?user= (logged in to the bridge, its IRC nick joined to the channels)
// gets a device; a Megolm session per portal #?prefix0..?channels-1 is shared with the bridge bot;
// one warm-up message per portal goes through the bridge (waited for at the IRC server); then ?n=
// messages are encrypted ahead of the timed run, round-robin over the portals.
func (w *world) handleMatrixToIRCPrepare(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	nch, _ := strconv.Atoi(q.Get("channels"))
	ctx := r.Context()
	err := func() error {
		if w.dev == nil {
			d, err := w.newFakeDevice(ctx, id.UserID(q.Get("user")))
			if err != nil {
				return err
			}
			w.dev = d
		}
		d := w.dev
		bot := id.NewUserID(botLocalpart, benchDomain)
		var rooms []id.RoomID
		for _, ch := range channelNames(q.Get("prefix"), nch) {
			room := w.hs.roomByName(ch)
			if room == nil {
				return fmt.Errorf("no portal room for %s", ch)
			}
			rid := id.RoomID(room.id)
			rooms = append(rooms, rid)
			_ = d.state.SetEncryptionEvent(ctx, rid, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1})
			_ = d.state.SetMembership(ctx, rid, bot, event.MembershipJoin)
			_ = d.state.SetMembership(ctx, rid, d.user, event.MembershipJoin)
			if err := d.mach.ShareGroupSession(ctx, rid, []id.UserID{bot, d.user}); err != nil {
				return fmt.Errorf("share group session: %w", err)
			}
		}
		warm := make([]map[string]any, len(rooms))
		for i, rid := range rooms {
			evt, err := d.encrypt(ctx, rid, "bench-warm-"+strconv.Itoa(i))
			if err != nil {
				return err
			}
			warm[i] = evt
		}
		w.recv.reset()
		if err := w.pushTransactions(ctx, warm, len(warm)); err != nil {
			return err
		}
		deadline := time.Now().Add(120 * time.Second)
		for w.recv.count() < len(warm) {
			if time.Now().After(deadline) {
				return fmt.Errorf("warm-up: %d of %d messages reached IRC in 120 s", w.recv.count(), len(warm))
			}
			time.Sleep(10 * time.Millisecond)
		}
		d.ready, d.texts = d.ready[:0], d.texts[:0]
		for i := range n {
			text := "bench-m-" + strconv.Itoa(i)
			evt, err := d.encrypt(ctx, rooms[i%len(rooms)], text)
			if err != nil {
				return err
			}
			d.ready = append(d.ready, evt)
			d.texts = append(d.texts, text)
		}
		return w.waitToDeviceDelivered(bot, 60*time.Second)
	}()
	replyJSON(rw, map[string]any{}, err)
}

var eventCounter int64

// encrypt encrypts a text message; when the room's Megolm session has expired (rotation_period_msgs,
// 100 by default) a new one is shared with the bridge first, as a Matrix client does.
func (d *fakeDevice) encrypt(ctx context.Context, room id.RoomID, text string) (map[string]any, error) {
	msg := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	content, err := d.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, msg)
	if errors.Is(err, crypto.ErrSessionExpired) || errors.Is(err, crypto.ErrNoGroupSession) || errors.Is(err, crypto.ErrSessionNotShared) {
		d.rotations++
		if err = d.mach.ShareGroupSession(ctx, room, []id.UserID{id.NewUserID(botLocalpart, benchDomain), d.user}); err == nil {
			content, err = d.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, msg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	eventCounter++
	return map[string]any{
		"type": "m.room.encrypted", "room_id": room, "sender": d.user, "content": content,
		"event_id": fmt.Sprintf("$bench%d", eventCounter), "unsigned": map[string]any{},
	}, nil
}

// pushTransactions sends events to the bridge's appservice listener, batch events per transaction,
// one transaction at a time (as a homeserver does), each stamped with the time it is sent.
func (w *world) pushTransactions(ctx context.Context, events []map[string]any, batch int) error {
	for i := 0; i < len(events); i += batch {
		chunk := events[i:min(i+batch, len(events))]
		now := time.Now().UnixMilli()
		for _, e := range chunk {
			e["origin_server_ts"] = now
		}
		body, _ := json.Marshal(map[string]any{"events": chunk})
		txn := fmt.Sprintf("bench%d-%d", time.Now().UnixNano(), i)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, w.asURL+"/_matrix/app/v1/transactions/"+txn, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+w.hs.hsToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := w.client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("transaction %s: HTTP %d", txn, resp.StatusCode)
		}
	}
	return nil
}

// matrixToIRCResult is one Matrix->IRC run as the world saw it.
type matrixToIRCResult struct {
	Sent       int     `json:"sent"`
	Arrived    int     `json:"arrived"`
	Dups       int     `json:"duplicates"`
	FirstSend  int64   `json:"first_send_unix_nano"`
	LastArrive int64   `json:"last_arrival_unix_nano"`
	MsgsPerS   float64 `json:"msgs_per_s"`
}

// handleMatrixToIRCRun pushes the prepared events in transactions of ?batch= events and waits (up to
// ?timeout= s) until each reached the fake IRC server as a PRIVMSG.
func (w *world) handleMatrixToIRCRun(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	batch, _ := strconv.Atoi(q.Get("batch"))
	timeout, _ := strconv.Atoi(q.Get("timeout"))
	if timeout == 0 {
		timeout = 300
	}
	d := w.dev
	if d == nil || len(d.ready) == 0 {
		mxErr(rw, 400, "BENCH", "prepare first")
		return
	}
	w.recv.reset()
	start := time.Now()
	if err := w.pushTransactions(r.Context(), d.ready, max(batch, 1)); err != nil {
		replyJSON(rw, nil, err)
		return
	}
	n := len(d.ready)
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	for w.recv.count() < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	res := &matrixToIRCResult{Sent: n, FirstSend: start.UnixNano()}
	w.recv.mu.Lock()
	var last time.Time
	for _, text := range d.texts {
		if at, ok := w.recv.texts[text]; ok {
			res.Arrived++
			if at.After(last) {
				last = at
			}
		}
	}
	res.Dups = w.recv.dups
	w.recv.mu.Unlock()
	d.ready, d.texts = nil, nil
	if res.Arrived < n {
		replyJSON(rw, nil, fmt.Errorf("%d of %d messages reached IRC within %d s", res.Arrived, n, timeout))
		return
	}
	res.LastArrive = last.UnixNano()
	res.MsgsPerS = float64(n) / last.Sub(start).Seconds()
	replyJSON(rw, res, nil)
}

// waitToDeviceDelivered waits until every to-device event for user's devices was fetched by /sync,
// then 1 s more for the bridge to process them (room keys reach the bridge before the timed run).
func (w *world) waitToDeviceDelivered(user id.UserID, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ks := &w.hs.keys
		ks.mu.Lock()
		pending := 0
		for ref, evts := range ks.inbox {
			if ref.user == string(user) {
				pending += len(evts)
			}
		}
		ks.mu.Unlock()
		if pending == 0 {
			time.Sleep(time.Second)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d to-device events for %s not fetched in %s", pending, user, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
