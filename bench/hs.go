package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeHS is a fast in-memory homeserver for the bridge phases: just what mautrix v0.31.0's
// appservice, bridgev2 and crypto helper call (versions, whoami, appservice login, register, rooms,
// state, send, profiles, media config, the key endpoints, to-device and /sync for the bot device).
// It keeps no history: events sent to rooms are counted and timestamped (onSend), not stored. An
// unknown endpoint is logged once and answered 404 M_UNRECOGNIZED.
type fakeHS struct {
	domain, asToken, hsToken string

	mu       sync.Mutex
	tokens   map[string]devRef // access token -> device, for /login'd devices
	asDevice map[string]string // user -> device /login'd by the appservice (the bot's crypto device)
	rooms    map[string]*fakeRoom
	byName   map[string]*fakeRoom
	unknown  map[string]bool
	keys     keyStore
	roomSeq  atomic.Int64
	eventSeq atomic.Int64
	lastReq  atomic.Int64 // Unix ns of the bridge's last request but /sync

	// onSend is called for every room event the bridge sends (PUT .../send/{type}/{txn}).
	onSend func(room *fakeRoom, evType string, at time.Time)
	// onInvite is called for every invite (the fake Matrix user joins the portals it is invited to).
	onInvite func(roomID, userID string)
	// bench is the control API (/_bench/...), served by the world child.
	bench http.Handler
}

type devRef struct{ user, device string }

// fakeRoom is a room created by the bridge; name is the createRoom name (the IRC channel).
type fakeRoom struct {
	id, name string
	mu       sync.Mutex
	state    map[[2]string]json.RawMessage // (type, state key) -> content
}

func newFakeHS(domain, asToken, hsToken string) *fakeHS {
	return &fakeHS{
		domain: domain, asToken: asToken, hsToken: hsToken,
		tokens: map[string]devRef{}, asDevice: map[string]string{}, rooms: map[string]*fakeRoom{}, byName: map[string]*fakeRoom{},
		unknown: map[string]bool{}, keys: newKeyStore(),
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func mxErr(w http.ResponseWriter, code int, errcode, msg string) {
	writeJSON(w, code, map[string]string{"errcode": errcode, "error": msg})
}

// who identifies the requester: the appservice (masquerading with user_id; the device is device_id
// or else the one the appservice logged in for that user, the bot's crypto device) or a device that
// logged in with its own token.
func (hs *fakeHS) who(r *http.Request) (devRef, bool) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == hs.asToken {
		q := r.URL.Query()
		u := q.Get("user_id")
		if u == "" {
			u = "@" + botLocalpart + ":" + hs.domain
		}
		d := q.Get("device_id")
		if d == "" {
			hs.mu.Lock()
			d = hs.asDevice[u]
			hs.mu.Unlock()
		}
		return devRef{u, d}, true
	}
	hs.mu.Lock()
	d, ok := hs.tokens[tok]
	hs.mu.Unlock()
	return d, ok
}

func (hs *fakeHS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/_bench/") && hs.bench != nil:
		hs.bench.ServeHTTP(w, r)
		return
	}
	if !strings.HasSuffix(p, "/sync") { // the crypto device's long poll never stops
		hs.lastReq.Store(time.Now().UnixNano())
	}
	switch {
	case p == "/_matrix/client/versions":
		writeJSON(w, 200, map[string]any{"versions": []string{"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6"}, "unstable_features": map[string]bool{}})
		return
	case strings.HasPrefix(p, "/_matrix/media/") || strings.HasPrefix(p, "/_matrix/client/v1/media/"):
		hs.media(w, r, p)
		return
	}
	rest, ok := strings.CutPrefix(p, "/_matrix/client/")
	if !ok {
		hs.unrecognized(w, r)
		return
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:] // drop v3, r0, v1, unstable
	}
	seg := strings.Split(rest, "/")
	if rest == "login" && r.Method == http.MethodGet {
		writeJSON(w, 200, map[string]any{"flows": []map[string]string{{"type": "m.login.application_service"}}})
		return
	}
	me, ok := hs.who(r)
	if !ok {
		mxErr(w, 401, "M_UNKNOWN_TOKEN", "unknown token")
		return
	}
	body, _ := io.ReadAll(r.Body)
	if hs.client(w, r, me, seg, body) {
		return
	}
	if hs.keyAPI(w, r, me, seg, body) {
		return
	}
	hs.unrecognized(w, r)
}

// client serves the account, room and profile endpoints.
func (hs *fakeHS) client(w http.ResponseWriter, r *http.Request, me devRef, seg []string, body []byte) bool {
	switch {
	case seg[0] == "account" && len(seg) > 1 && seg[1] == "whoami":
		writeJSON(w, 200, map[string]string{"user_id": me.user, "device_id": me.device})
	case seg[0] == "login":
		var req struct {
			Identifier struct{ User string } `json:"identifier"`
			DeviceID   string                `json:"device_id"`
		}
		_ = json.Unmarshal(body, &req)
		dev := req.DeviceID
		if dev == "" {
			dev = fmt.Sprintf("BENCH%d", hs.eventSeq.Add(1))
		}
		tok := fmt.Sprintf("tok_%s_%s", dev, req.Identifier.User)
		hs.mu.Lock()
		hs.tokens[tok] = devRef{req.Identifier.User, dev}
		hs.asDevice[req.Identifier.User] = dev
		hs.mu.Unlock()
		writeJSON(w, 200, map[string]string{"user_id": req.Identifier.User, "device_id": dev, "access_token": tok})
	case seg[0] == "register":
		var req struct{ Username string }
		_ = json.Unmarshal(body, &req)
		writeJSON(w, 200, map[string]string{"user_id": "@" + req.Username + ":" + hs.domain})
	case seg[0] == "createRoom":
		room := newFakeRoom(fmt.Sprintf("!r%d:%s", hs.roomSeq.Add(1), hs.domain), me.user, body)
		hs.mu.Lock()
		hs.rooms[room.id] = room
		hs.byName[strings.ToLower(room.name)] = room
		hs.mu.Unlock()
		writeJSON(w, 200, map[string]string{"room_id": room.id})
	case seg[0] == "join" && len(seg) > 1:
		if room := hs.room0(seg[1]); room != nil {
			room.setMember(me.user, "join")
		}
		writeJSON(w, 200, map[string]string{"room_id": seg[1]})
	case seg[0] == "rooms" && len(seg) > 2:
		hs.room(w, r, me, seg[1], seg[2:], body)
	case seg[0] == "profile":
		if r.Method == http.MethodGet {
			writeJSON(w, 200, map[string]string{})
		} else {
			writeJSON(w, 200, map[string]string{})
		}
	case seg[0] == "user" && len(seg) > 2 && seg[2] == "filter":
		writeJSON(w, 200, map[string]string{"filter_id": "1"})
	case seg[0] == "user" && len(seg) > 2 && seg[2] == "account_data":
		if r.Method == http.MethodGet {
			mxErr(w, 404, "M_NOT_FOUND", "no account data")
		} else {
			writeJSON(w, 200, map[string]string{})
		}
	case seg[0] == "capabilities":
		writeJSON(w, 200, map[string]any{"capabilities": map[string]any{
			"m.room_versions": map[string]any{"default": "10", "available": map[string]string{"10": "stable"}}}})
	case seg[0] == "pushrules" || seg[0] == "presence" || seg[0] == "delete_devices" || seg[0] == "devices":
		writeJSON(w, 200, map[string]string{})
	default:
		return false
	}
	return true
}

func (hs *fakeHS) room0(roomID string) *fakeRoom {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.rooms[roomID]
}

func (hs *fakeHS) room(w http.ResponseWriter, r *http.Request, me devRef, roomID string, seg []string, body []byte) {
	room := hs.room0(roomID)
	if room == nil {
		mxErr(w, 404, "M_NOT_FOUND", "no such room")
		return
	}
	switch seg[0] {
	case "send":
		at := time.Now()
		if hs.onSend != nil && len(seg) > 1 {
			hs.onSend(room, seg[1], at)
		}
		writeJSON(w, 200, map[string]string{"event_id": fmt.Sprintf("$e%d", hs.eventSeq.Add(1))})
	case "state":
		key := [2]string{}
		if len(seg) > 1 {
			key[0] = seg[1]
		}
		if len(seg) > 2 {
			key[1] = seg[2]
		}
		if r.Method != http.MethodGet {
			room.setState(key, body)
			writeJSON(w, 200, map[string]string{"event_id": fmt.Sprintf("$e%d", hs.eventSeq.Add(1))})
		} else if len(seg) == 1 {
			writeJSON(w, 200, room.stateEvents())
		} else if c := room.getState(key); c != nil && r.URL.Query().Get("format") == "event" {
			writeJSON(w, 200, room.event(key, c))
		} else if c != nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(c)
		} else {
			mxErr(w, 404, "M_NOT_FOUND", "no such state")
		}
	case "invite":
		var req struct {
			UserID string `json:"user_id"`
		}
		_ = json.Unmarshal(body, &req)
		room.setMember(req.UserID, "invite")
		if hs.onInvite != nil {
			hs.onInvite(roomID, req.UserID)
		}
		writeJSON(w, 200, map[string]string{})
	case "join":
		room.setMember(me.user, "join")
		writeJSON(w, 200, map[string]string{"room_id": roomID})
	case "leave":
		room.setMember(me.user, "leave")
		writeJSON(w, 200, map[string]string{})
	case "joined_members":
		writeJSON(w, 200, map[string]any{"joined": room.joined()})
	case "members":
		writeJSON(w, 200, map[string]any{"chunk": room.members()})
	case "redact":
		writeJSON(w, 200, map[string]string{"event_id": fmt.Sprintf("$e%d", hs.eventSeq.Add(1))})
	default: // leave, kick, ban, receipt, read_markers, typing...
		writeJSON(w, 200, map[string]string{})
	}
}

func (hs *fakeHS) media(w http.ResponseWriter, r *http.Request, p string) {
	switch {
	case strings.HasSuffix(p, "/config"):
		writeJSON(w, 200, map[string]any{"m.upload.size": 50 << 20})
	case strings.Contains(p, "/upload") || strings.HasSuffix(p, "/create"):
		_, _ = io.Copy(io.Discard, r.Body)
		writeJSON(w, 200, map[string]string{"content_uri": fmt.Sprintf("mxc://%s/m%d", hs.domain, hs.eventSeq.Add(1))})
	default:
		hs.unrecognized(w, r)
	}
}

func (hs *fakeHS) unrecognized(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	hs.mu.Lock()
	seen := hs.unknown[key]
	hs.unknown[key] = true
	hs.mu.Unlock()
	if !seen {
		fmt.Fprintf(os.Stderr, "bench: fake homeserver: unrecognized %s\n", key)
	}
	mxErr(w, 404, "M_UNRECOGNIZED", "not in the fake homeserver")
}

// portalName is the channel a portal bridges: the m.bridge state's channel displayname, else the
// room name.
func portalName(createRoom []byte) string {
	var req struct {
		Name         string `json:"name"`
		InitialState []struct {
			Type    string `json:"type"`
			Content struct {
				Channel struct {
					DisplayName string `json:"displayname"`
				} `json:"channel"`
			} `json:"content"`
		} `json:"initial_state"`
	}
	_ = json.Unmarshal(createRoom, &req)
	for _, st := range req.InitialState {
		if st.Type == "m.bridge" && st.Content.Channel.DisplayName != "" {
			return st.Content.Channel.DisplayName
		}
	}
	return req.Name
}

// roomByName finds the portal created for an IRC channel.
func (hs *fakeHS) roomByName(name string) *fakeRoom {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.byName[strings.ToLower(name)]
}

func (hs *fakeHS) roomCount() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.rooms)
}
