package main

import "encoding/json"

// newFakeRoom records a createRoom request's state: m.room.create, the initial_state events, the
// power levels override and the name, so that GET .../state answers as a homeserver would.
func newFakeRoom(id, creator string, createRoom []byte) *fakeRoom {
	room := &fakeRoom{id: id, name: portalName(createRoom), state: map[[2]string]json.RawMessage{}}
	var req struct {
		Name         string          `json:"name"`
		Topic        string          `json:"topic"`
		Invite       []string        `json:"invite"`
		PowerLevels  json.RawMessage `json:"power_level_content_override"`
		InitialState []struct {
			Type     string          `json:"type"`
			StateKey string          `json:"state_key"`
			Content  json.RawMessage `json:"content"`
		} `json:"initial_state"`
	}
	_ = json.Unmarshal(createRoom, &req)
	create, _ := json.Marshal(map[string]string{"creator": creator, "room_version": "10"})
	room.setState([2]string{"m.room.create", ""}, create)
	room.setMember(creator, "join")
	if len(req.PowerLevels) > 0 {
		room.setState([2]string{"m.room.power_levels", ""}, req.PowerLevels)
	}
	if req.Name != "" {
		c, _ := json.Marshal(map[string]string{"name": req.Name})
		room.setState([2]string{"m.room.name", ""}, c)
	}
	if req.Topic != "" {
		c, _ := json.Marshal(map[string]string{"topic": req.Topic})
		room.setState([2]string{"m.room.topic", ""}, c)
	}
	for _, st := range req.InitialState {
		room.setState([2]string{st.Type, st.StateKey}, st.Content)
	}
	for _, u := range req.Invite {
		room.setMember(u, "invite")
	}
	return room
}

func (r *fakeRoom) setState(key [2]string, content json.RawMessage) {
	r.mu.Lock()
	r.state[key] = content
	r.mu.Unlock()
}

func (r *fakeRoom) getState(key [2]string) json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state[key]
}

func (r *fakeRoom) setMember(user, membership string) {
	c, _ := json.Marshal(map[string]string{"membership": membership})
	r.setState([2]string{"m.room.member", user}, c)
}

// event is a state event in client format.
func (r *fakeRoom) event(k [2]string, c json.RawMessage) map[string]any {
	sender := k[1]
	if k[0] != "m.room.member" {
		sender = "@" + botLocalpart + ":" + benchDomain
	}
	return map[string]any{"type": k[0], "state_key": k[1], "content": c, "room_id": r.id,
		"sender": sender, "event_id": "$state-" + k[0] + "-" + k[1], "origin_server_ts": 1}
}

func (r *fakeRoom) stateEvents() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]map[string]any, 0, len(r.state))
	for k, c := range r.state {
		out = append(out, r.event(k, c))
	}
	return out
}

func (r *fakeRoom) members() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for k, c := range r.state {
		if k[0] == "m.room.member" {
			out = append(out, r.event(k, c))
		}
	}
	return out
}

func (r *fakeRoom) joined() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]any{}
	for k, c := range r.state {
		var m struct{ Membership string }
		if k[0] == "m.room.member" && json.Unmarshal(c, &m) == nil && m.Membership == "join" {
			out[k[1]] = map[string]any{}
		}
	}
	return out
}
