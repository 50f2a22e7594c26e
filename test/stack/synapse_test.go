//go:build e2e

package stack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSynapse starts two Synapses side by side (one with a dummy appservice
// registration), then uses the first as the end-to-end tests will: open
// registration, login, a room and a message counted in Synapse's database,
// the appservice sender's as_token and appservice login. Afterwards no
// mount under the chroot is left on the host.
func TestSynapse(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	regPath := filepath.Join(dir, "registration.yaml")
	reg := `id: synapsetest
url: http://127.0.0.1:9
as_token: as-token-synapsetest
hs_token: hs-token-synapsetest
sender_localpart: synapsetestbot
rate_limited: false
namespaces:
  users:
  - regex: '@synapsetest_.*:localhost'
    exclusive: true
`
	if err := os.WriteFile(regPath, []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		wg   sync.WaitGroup
		hs   [2]*Synapse
		errs [2]error
	)
	for i := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var regs []string
			if i == 0 {
				regs = []string{regPath}
			}
			hs[i], errs[i] = StartSynapse(ctx, filepath.Join(dir, "synapse"+string(rune('0'+i))), regs...)
			t.Logf("Synapse %d started in %v", i, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range hs {
			if s == nil {
				continue
			}
			if t.Failed() {
				_ = s.Stop()
				t.Logf("kept %s (log %s)", s.Dir, s.LogPath())
			} else if err := s.Remove(); err != nil {
				t.Errorf("remove %s: %v", s.Dir, err)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := hs[0]
	if hs[1].URL == s.URL || hs[1].Dir == s.Dir {
		t.Fatalf("two Synapses share a port or run dir: %s %s", s.URL, s.Dir)
	}
	if _, err := hs[1].Do(ctx, http.MethodGet, "/_matrix/client/versions", "", nil); err != nil {
		t.Fatalf("second Synapse: %v", err)
	}
	// /proc is mounted for Synapse (in its own mount namespace) but not on the host.
	// (A chrooted process's mountinfo shows mount points relative to its root.)
	if mi, err := os.ReadFile("/proc/" + strconv.Itoa(s.proc.cmd.Process.Pid) + "/mountinfo"); err != nil || !strings.Contains(string(mi), " /proc ") {
		t.Errorf("no /proc in Synapse's mount namespace (%v):\n%s", err, mi)
	}
	assertNoMountsUnder(t, s.Root)

	var versions struct {
		Versions []string `json:"versions"`
	}
	mustDo(t, s, http.MethodGet, "/_matrix/client/versions", "", nil, &versions)
	t.Logf("Synapse in %s at %s, spec versions %v", s.Dir, s.URL, versions.Versions)

	// Open registration without verification, then a password login.
	var registered struct {
		UserID string `json:"user_id"`
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/register", "", map[string]any{
		"username": "alice", "password": "alice-password", "auth": map[string]string{"type": "m.login.dummy"},
	}, &registered)
	if registered.UserID != s.UserID("alice") {
		t.Fatalf("registered %q, want %q", registered.UserID, s.UserID("alice"))
	}
	token, err := s.Login(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterUser(ctx, "admin", "admin-password", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, "admin", "admin-password"); err != nil {
		t.Fatal(err)
	}

	// A room with one message, counted in Synapse's own database.
	var room struct {
		RoomID string `json:"room_id"`
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/createRoom", token, map[string]any{"preset": "private_chat"}, &room)
	mustDo(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room.RoomID)+"/send/m.room.message/txn1", token,
		map[string]string{"msgtype": "m.text", "body": "hello synapse"}, nil)
	counts, err := s.EventTypesInRoom(room.RoomID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("event types in %s: %v", room.RoomID, counts)
	if counts["m.room.message"] != 1 || counts["m.room.create"] != 1 || counts["m.room.member"] != 1 {
		t.Errorf("event types in %s: %v", room.RoomID, counts)
	}
	if c, err := s.EventTypesInRoom("!nosuchroom:localhost"); err != nil || len(c) != 0 {
		t.Errorf("unknown room: %v %v", c, err)
	}

	// The appservice: its sender answers whoami with the as_token, and
	// appservice login (what a bridgev2 bot device uses) gives a device.
	var who struct {
		UserID string `json:"user_id"`
	}
	mustDo(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", "as-token-synapsetest", nil, &who)
	if who.UserID != s.UserID("synapsetestbot") {
		t.Errorf("appservice whoami: %q", who.UserID)
	}
	var asLogin struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/login", "as-token-synapsetest", map[string]any{
		"type":       "m.login.application_service",
		"identifier": map[string]string{"type": "m.id.user", "user": "synapsetestbot"},
	}, &asLogin)
	if asLogin.UserID != s.UserID("synapsetestbot") || asLogin.DeviceID == "" {
		t.Errorf("appservice login: %+v", asLogin)
	}

	// Stop: the process is gone, nothing is mounted, the run dir is kept.
	for _, h := range hs {
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
		if !h.proc.exited() {
			t.Errorf("Synapse in %s still running after Stop", h.Dir)
		}
		if _, err := os.Stat(h.DBPath); err != nil {
			t.Errorf("Stop removed the run dir: %v", err)
		}
	}
	assertNoMountsUnder(t, s.Root)
}

// mustDo calls Synapse and decodes the JSON answer into out (if not nil).
func mustDo(t *testing.T, s *Synapse, method, path, token string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := s.Do(ctx, method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// assertNoMountsUnder fails if the host has anything mounted in root.
func assertNoMountsUnder(t *testing.T, root string) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
			t.Errorf("host mount left under %s: %s", root, line)
		}
	}
}
