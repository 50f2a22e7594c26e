package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// keyStore is the fake homeserver's end-to-end encryption side: device keys, one-time and fallback
// keys, and a to-device inbox per device delivered by /sync.
type keyStore struct {
	mu       sync.Mutex
	devices  map[string]map[string]json.RawMessage // user -> device -> device keys
	otks     map[devRef]map[string]json.RawMessage // key ID -> key
	fallback map[devRef]map[string]json.RawMessage // key ID -> key
	inbox    map[devRef][]map[string]any           // to-device events waiting for /sync
	wake     map[devRef]chan struct{}              // closed when the inbox gets events
}

func newKeyStore() keyStore {
	return keyStore{
		devices: map[string]map[string]json.RawMessage{}, otks: map[devRef]map[string]json.RawMessage{},
		fallback: map[devRef]map[string]json.RawMessage{}, inbox: map[devRef][]map[string]any{},
		wake: map[devRef]chan struct{}{},
	}
}

func (ks *keyStore) wakeLocked(d devRef) chan struct{} {
	c := ks.wake[d]
	if c == nil {
		c = make(chan struct{})
		ks.wake[d] = c
	}
	return c
}

// deliver queues a to-device event for a device ("*": every device of the user).
func (ks *keyStore) deliver(user, device string, evt map[string]any) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var targets []string
	if device == "*" {
		for d := range ks.devices[user] {
			targets = append(targets, d)
		}
	} else {
		targets = []string{device}
	}
	for _, d := range targets {
		ref := devRef{user, d}
		ks.inbox[ref] = append(ks.inbox[ref], evt)
		close(ks.wakeLocked(ref))
		delete(ks.wake, ref)
	}
}

// keyAPI serves keys/upload, keys/query, keys/claim, sendToDevice and sync.
func (hs *fakeHS) keyAPI(w http.ResponseWriter, r *http.Request, me devRef, seg []string, body []byte) bool {
	ks := &hs.keys
	switch {
	case seg[0] == "keys" && len(seg) > 1 && seg[1] == "upload":
		var req struct {
			DeviceKeys   json.RawMessage            `json:"device_keys"`
			OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
			FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
		}
		_ = json.Unmarshal(body, &req)
		ks.mu.Lock()
		if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
			if ks.devices[me.user] == nil {
				ks.devices[me.user] = map[string]json.RawMessage{}
			}
			ks.devices[me.user][me.device] = req.DeviceKeys
		}
		if ks.otks[me] == nil {
			ks.otks[me] = map[string]json.RawMessage{}
		}
		for k, v := range req.OneTimeKeys {
			ks.otks[me][k] = v
		}
		if len(req.FallbackKeys) > 0 {
			ks.fallback[me] = req.FallbackKeys
		}
		n := len(ks.otks[me])
		ks.mu.Unlock()
		writeJSON(w, 200, map[string]any{"one_time_key_counts": map[string]int{"signed_curve25519": n}})
	case seg[0] == "keys" && len(seg) > 1 && seg[1] == "query":
		var req struct {
			DeviceKeys map[string][]string `json:"device_keys"`
		}
		_ = json.Unmarshal(body, &req)
		out := map[string]map[string]json.RawMessage{}
		ks.mu.Lock()
		for user, want := range req.DeviceKeys {
			out[user] = map[string]json.RawMessage{}
			for dev, k := range ks.devices[user] {
				if len(want) == 0 || slices.Contains(want, dev) {
					out[user][dev] = k
				}
			}
		}
		ks.mu.Unlock()
		writeJSON(w, 200, map[string]any{"device_keys": out, "failures": map[string]any{},
			"master_keys": map[string]any{}, "self_signing_keys": map[string]any{}, "user_signing_keys": map[string]any{}})
	case seg[0] == "keys" && len(seg) > 1 && seg[1] == "claim":
		var req struct {
			OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		}
		_ = json.Unmarshal(body, &req)
		out := map[string]map[string]map[string]json.RawMessage{}
		ks.mu.Lock()
		for user, devs := range req.OneTimeKeys {
			out[user] = map[string]map[string]json.RawMessage{}
			for dev := range devs {
				ref := devRef{user, dev}
				for k, v := range ks.otks[ref] {
					out[user][dev] = map[string]json.RawMessage{k: v}
					delete(ks.otks[ref], k)
					break
				}
				if out[user][dev] == nil {
					for k, v := range ks.fallback[ref] {
						out[user][dev] = map[string]json.RawMessage{k: v}
						break
					}
				}
			}
		}
		ks.mu.Unlock()
		writeJSON(w, 200, map[string]any{"one_time_keys": out, "failures": map[string]any{}})
	case seg[0] == "keys":
		writeJSON(w, 200, map[string]any{}) // device_signing/upload, signatures/upload, changes
	case seg[0] == "sendToDevice" && len(seg) > 1:
		var req struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		_ = json.Unmarshal(body, &req)
		for user, devs := range req.Messages {
			for dev, content := range devs {
				ks.deliver(user, dev, map[string]any{"type": seg[1], "sender": me.user, "content": content})
			}
		}
		writeJSON(w, 200, map[string]any{})
	case seg[0] == "sync":
		hs.sync(w, r, me)
	default:
		return false
	}
	return true
}

// sync long-polls a device's to-device inbox (timeout capped at 5 s) and reports its one-time key
// count, so that the crypto helper neither starves nor uploads keys again.
func (hs *fakeHS) sync(w http.ResponseWriter, r *http.Request, me devRef) {
	ks := &hs.keys
	timeout, _ := strconv.Atoi(r.URL.Query().Get("timeout"))
	timeout = min(timeout, 5000)
	deadline := time.After(time.Duration(timeout) * time.Millisecond)
	for {
		ks.mu.Lock()
		evts := ks.inbox[me]
		delete(ks.inbox, me)
		wake := ks.wakeLocked(me)
		n := len(ks.otks[me])
		ks.mu.Unlock()
		if len(evts) > 0 || timeout == 0 {
			if evts == nil {
				evts = []map[string]any{}
			}
			writeJSON(w, 200, map[string]any{
				"next_batch":                       "s" + strconv.FormatInt(hs.eventSeq.Add(1), 10),
				"to_device":                        map[string]any{"events": evts},
				"device_one_time_keys_count":       map[string]int{"signed_curve25519": n},
				"device_unused_fallback_key_types": []string{"signed_curve25519"},
			})
			return
		}
		select {
		case <-wake:
		case <-deadline:
			timeout = 0
		case <-r.Context().Done():
			return
		}
	}
}
