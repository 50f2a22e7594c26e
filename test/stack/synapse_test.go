//go:build e2e

package stack

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
	// A stand-in appservice that records the transactions Synapse pushes.
	txns := make(chan []byte, 100)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_matrix/app/v1/transactions/") {
			b, _ := io.ReadAll(r.Body)
			txns <- b
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	defer as.Close()
	regPath := filepath.Join(dir, "registration.yaml")
	reg := `id: synapsetest
url: ` + as.URL + `
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

	// The appservice: its sender answers whoami with the as_token; like a
	// bridgev2 bot it registers (m.login.application_service; Synapse does
	// not create the sender's account by itself, and tokens of a user with
	// no account are rejected) and logs in for a device.
	var who struct {
		UserID string `json:"user_id"`
	}
	mustDo(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", "as-token-synapsetest", nil, &who)
	if who.UserID != s.UserID("synapsetestbot") {
		t.Errorf("appservice whoami: %q", who.UserID)
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/register", "as-token-synapsetest", map[string]any{
		"type": "m.login.application_service", "username": "synapsetestbot", "inhibit_login": true,
	}, nil)
	var asLogin struct {
		UserID      string `json:"user_id"`
		DeviceID    string `json:"device_id"`
		AccessToken string `json:"access_token"`
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/login", "as-token-synapsetest", map[string]any{
		"type":       "m.login.application_service",
		"identifier": map[string]string{"type": "m.id.user", "user": "synapsetestbot"},
	}, &asLogin)
	if asLogin.UserID != s.UserID("synapsetestbot") || asLogin.DeviceID == "" {
		t.Errorf("appservice login: %+v", asLogin)
	}

	// The bot cross-signs itself the way a bridge with self_sign does: a
	// first upload of cross-signing keys needs no UIA.
	uploadCrossSigning(t, s, asLogin.UserID, asLogin.AccessToken)

	// An invite of the bot reaches the appservice in a transaction.
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room.RoomID)+"/invite", token,
		map[string]string{"user_id": asLogin.UserID}, nil)
	deadline := time.After(20 * time.Second)
	for invited := false; !invited; {
		select {
		case b := <-txns:
			invited = strings.Contains(string(b), `"invite"`) && strings.Contains(string(b), room.RoomID)
		case <-deadline:
			t.Fatal("no transaction with the bot's invite reached the appservice")
		}
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

// uploadCrossSigning uploads a new master and self-signing key for userID
// (no UIA: a first upload is allowed without, MSC3967).
func uploadCrossSigning(t *testing.T, s *Synapse, userID, token string) {
	t.Helper()
	masterPub, masterPriv, _ := ed25519.GenerateKey(nil)
	selfPub, _, _ := ed25519.GenerateKey(nil)
	b64 := base64.RawStdEncoding.EncodeToString
	key := func(usage string, pub ed25519.PublicKey) map[string]any {
		return map[string]any{"user_id": userID, "usage": []string{usage},
			"keys": map[string]string{"ed25519:" + b64(pub): b64(pub)}}
	}
	master, self := key("master", masterPub), key("self_signing", selfPub)
	canonical, _ := json.Marshal(self) // sorted keys, no spaces: canonical JSON for ASCII
	self["signatures"] = map[string]any{userID: map[string]string{
		"ed25519:" + b64(masterPub): b64(ed25519.Sign(masterPriv, canonical)),
	}}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload", token,
		map[string]any{"master_key": master, "self_signing_key": self}, nil)
	var q struct {
		MasterKeys map[string]any `json:"master_keys"`
	}
	mustDo(t, s, http.MethodPost, "/_matrix/client/v3/keys/query", token,
		map[string]any{"device_keys": map[string][]string{userID: {}}}, &q)
	if q.MasterKeys[userID] == nil {
		t.Errorf("no master key for %s after upload", userID)
	}
}
