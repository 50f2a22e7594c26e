// SPDX-License-Identifier: Apache-2.0

// Package mxclient drives a real end-to-end-encrypted Matrix client from Go
// tests.
//
// The client is matrix-js-sdk (the library Element is built on) with its Rust
// crypto, running as a Node process (test/e2e/client/client.mjs) that speaks
// JSON lines on stdin/stdout. It logs in, bootstraps cross-signing the way
// Element does (so the bridge, which shares room keys only with cross-signed
// devices, treats it like a real user), creates encrypted DMs, auto-joins
// invites, sends messages and reports every timeline event it sees after
// decryption, including events it could not decrypt and the error why. That
// lets a test tell "the first message arrived but was not decryptable" apart
// from "it never arrived".
//
// The Node client lives in the directory given by SEALBRIDGE_E2E_CLIENT_DIR,
// or else ../client relative to this source file. Its node_modules are
// installed with "npm ci" on first use (see [Install]). The node binary is
// taken from SEALBRIDGE_NODE or PATH.
//
// Typical use:
//
//	c, err := mxclient.New(ctx, filepath.Join(t.TempDir(), "alice.log"))
//	defer c.Close()
//	userID, deviceID, err := c.Login(ctx, hsURL, "alice", "secret", true)
//	roomID, err := c.CreateDM(ctx, "@bob:example.org")
//	eventID, err := c.Send(ctx, roomID, "m.text", "hello", "")
//	ev, err := c.WaitEvent(ctx, mxclient.Message(roomID, "", "hi back"))
//	ev, err = other.WaitDecrypted(ctx, eventID) // on another Client
//
// An encrypted event is often reported undecryptable for a moment first (the
// room event came down sync before the to-device message with its key) and
// then again, decrypted. Use [Client.WaitDecrypted] to wait for the
// decrypted report; its error tells a missing key from a missing event.
// [Client.FirstReport] shows whether the first attempt failed.
//
// The protocol is documented in test/e2e/client/README.md.
package mxclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Event is one timeline event as the client saw it, after decryption.
//
// The same event id can be reported more than once when what the client
// knows about it changes: an event that failed to decrypt (DecryptionError
// set) is reported again once a late room key lets it decrypt.
type Event struct {
	RoomID  string `json:"room_id"`
	EventID string `json:"event_id"`
	Sender  string `json:"sender"`
	// Type is the decrypted event type (m.room.message, not
	// m.room.encrypted), or m.room.encrypted when decryption failed (Content
	// is then the encrypted wire content).
	Type string `json:"type"`
	// StateKey is set for state events.
	StateKey *string        `json:"state_key,omitempty"`
	Content  map[string]any `json:"content"`
	// Encrypted is true when the event was encrypted on the wire.
	Encrypted bool `json:"encrypted"`
	// DecryptionError is empty unless the event could not be decrypted.
	DecryptionError string `json:"decryption_error"`
	// WireType is the type on the wire (m.room.encrypted) for encrypted events.
	WireType       string `json:"wire_type,omitempty"`
	OriginServerTS int64  `json:"origin_server_ts"`
	// Relation and ReplyTo are the event's relation (rel_type, event_id, key) and the event it
	// replies to, as matrix-js-sdk (and so Element) reads them: from the cleartext wire content
	// only. Tests judge relations by these, never by Content's m.relates_to.
	Relation map[string]any `json:"relation,omitempty"`
	ReplyTo  string         `json:"reply_to,omitempty"`
	// Redacts is the target of an m.room.redaction.
	Redacts string `json:"redacts,omitempty"`
	// Redacted is true when the event had already been redacted when it was
	// reported.
	Redacted bool `json:"redacted,omitempty"`
}

// Body returns content.body, or "".
func (e Event) Body() string { s, _ := e.Content["body"].(string); return s }

// MsgType returns content.msgtype, or "".
func (e Event) MsgType() string { s, _ := e.Content["msgtype"].(string); return s }

// FormattedBody returns content.formatted_body, or "".
func (e Event) FormattedBody() string { s, _ := e.Content["formatted_body"].(string); return s }

// IsState reports whether the event is a state event.
func (e Event) IsState() bool { return e.StateKey != nil }

// String is a one-line summary for test logs.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s from %s", e.RoomID, e.EventID, e.Type, e.Sender)
	if e.StateKey != nil {
		fmt.Fprintf(&b, " state_key=%q", *e.StateKey)
	}
	if e.Encrypted {
		b.WriteString(" (encrypted)")
	}
	if e.DecryptionError != "" {
		fmt.Fprintf(&b, " UNDECRYPTABLE: %s", e.DecryptionError)
	}
	if body := e.Body(); body != "" {
		fmt.Fprintf(&b, " body=%q", body)
	}
	return b.String()
}

// Invite is an invite the client received (and, with autojoin on, joined).
type Invite struct {
	RoomID   string `json:"room_id"`
	Sender   string `json:"sender"`
	IsDirect bool   `json:"is_direct"`
}

// Member is one room member as the client sees it.
type Member struct {
	UserID      string `json:"user_id"`
	Membership  string `json:"membership"`
	DisplayName string `json:"display_name"`
}

// LoginInfo is what Login learned; see [Client.LoginInfo].
type LoginInfo struct {
	UserID     string `json:"user_id"`
	DeviceID   string `json:"device_id"`
	Registered bool   `json:"registered"`
	// HadCrossSigning: the account already had cross-signing keys (a
	// second login); the client then replaces them with a new identity.
	HadCrossSigning bool `json:"had_cross_signing"`
	// RecoveryKey is the secret-storage recovery key, with
	// LoginOptions.SecretStorage (or the one passed in).
	RecoveryKey string `json:"recovery_key"`
	// KeyBackupVersion is the active server-side key backup, with
	// LoginOptions.SecretStorage.
	KeyBackupVersion  string `json:"key_backup_version"`
	CrossSigningReady bool   `json:"cross_signing_ready"`
	DeviceCrossSigned bool   `json:"device_cross_signed"`
	Timings           struct {
		LoginMS        int64 `json:"login_ms"`
		CryptoInitMS   int64 `json:"crypto_init_ms"`
		InitialSyncMS  int64 `json:"initial_sync_ms"`
		CrossSigningMS int64 `json:"cross_signing_ms"`
		TotalMS        int64 `json:"total_ms"`
	} `json:"timings"`
}

// Client is one running Node client process. Its methods are safe for
// concurrent use.
type Client struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   io.WriteCloser // nil when not logging
	wmu   sync.Mutex     // serialises writes to stdin and log

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan json.RawMessage
	events  []Event
	invites []Invite
	changed chan struct{} // closed and replaced whenever events/invites grow
	login   LoginInfo

	ready     chan struct{}
	done      chan struct{} // closed when the process has exited
	exitErr   error
	closeOnce sync.Once
}

// Dir returns the directory holding client.mjs: SEALBRIDGE_E2E_CLIENT_DIR,
// or ../client next to this source file.
func Dir() string {
	if d := os.Getenv("SEALBRIDGE_E2E_CLIENT_DIR"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("test", "e2e", "client")
	}
	return filepath.Join(filepath.Dir(file), "..", "client")
}

func nodeBinary() string {
	if n := os.Getenv("SEALBRIDGE_NODE"); n != "" {
		return n
	}
	return "node"
}

var installMu sync.Mutex

// Install runs "npm ci" in [Dir] unless node_modules already holds
// matrix-js-sdk. It takes a file lock so parallel test binaries do not
// install over each other.
func Install(ctx context.Context) error {
	installMu.Lock()
	defer installMu.Unlock()
	dir := Dir()
	marker := filepath.Join(dir, "node_modules", "matrix-js-sdk", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	lf, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("mxclient: install lock: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("mxclient: install lock: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mxclient: npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

// New installs the Node client if needed, starts it and waits until it is
// ready for commands. Its stderr (matrix-js-sdk and Rust crypto logs) and the
// protocol traffic are appended to logPath; an empty logPath discards them.
// ctx bounds only the start-up; the process runs until Close.
func New(ctx context.Context, logPath string) (*Client, error) {
	if err := Install(ctx); err != nil {
		return nil, err
	}
	c := &Client{
		pending: map[int64]chan json.RawMessage{},
		changed: make(chan struct{}),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	var stderr io.Writer = io.Discard
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, fmt.Errorf("mxclient: %w", err)
		}
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("mxclient: %w", err)
		}
		c.log = f
		stderr = f
	}
	dir := Dir()
	c.cmd = exec.Command(nodeBinary(), filepath.Join(dir, "client.mjs"))
	c.cmd.Dir = dir
	c.cmd.Stderr = stderr
	c.cmd.Env = os.Environ()
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		c.closeLog()
		return nil, fmt.Errorf("mxclient: %w", err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		c.closeLog()
		return nil, fmt.Errorf("mxclient: %w", err)
	}
	c.stdin = stdin
	if err := c.cmd.Start(); err != nil {
		c.closeLog()
		return nil, fmt.Errorf("mxclient: starting node: %w", err)
	}
	go c.readLoop(stdout)

	select {
	case <-c.ready:
		return c, nil
	case <-c.done:
		c.closeLog()
		return nil, fmt.Errorf("mxclient: client exited before it was ready: %v (see %s)", c.exitErr, logPath)
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("mxclient: waiting for the client to start: %w", ctx.Err())
	}
}

func (c *Client) closeLog() {
	if c.log != nil {
		c.wmu.Lock()
		c.log.Close()
		c.log = nil
		c.wmu.Unlock()
	}
}

func (c *Client) logLine(prefix string, line []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.log == nil {
		return
	}
	fmt.Fprintf(c.log, "%s [mxclient] %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), prefix, line)
}

// wireLine is any line the client writes on stdout.
type wireLine struct {
	ID    *int64 `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Event string `json:"event"`
}

func (c *Client) readLoop(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	readyOnce := sync.Once{}
	for sc.Scan() {
		raw := bytes.Clone(sc.Bytes())
		c.logLine("<", raw)
		var l wireLine
		if err := json.Unmarshal(raw, &l); err != nil {
			c.logLine("!", []byte("unparseable line: "+err.Error()))
			continue
		}
		switch {
		case l.ID != nil:
			c.mu.Lock()
			ch := c.pending[*l.ID]
			delete(c.pending, *l.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- raw
			}
		case l.Event == "ready":
			readyOnce.Do(func() { close(c.ready) })
		case l.Event == "timeline":
			var ev Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				c.logLine("!", []byte("bad timeline event: "+err.Error()))
				continue
			}
			if ev.Content == nil {
				ev.Content = map[string]any{}
			}
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.notifyLocked()
			c.mu.Unlock()
		case l.Event == "invite":
			var inv Invite
			if err := json.Unmarshal(raw, &inv); err != nil {
				continue
			}
			c.mu.Lock()
			c.invites = append(c.invites, inv)
			c.notifyLocked()
			c.mu.Unlock()
		}
	}
	err := c.cmd.Wait()
	if err == nil {
		err = errors.New("client process exited")
	} else {
		err = fmt.Errorf("client process exited: %w", err)
	}
	c.mu.Lock()
	c.exitErr = err
	c.pending = map[int64]chan json.RawMessage{}
	c.mu.Unlock()
	close(c.done)
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Call sends one raw command and waits for its reply; result, when not nil,
// receives the reply object (unmarshalled with encoding/json). Most tests use
// the typed methods instead.
func (c *Client) Call(ctx context.Context, cmd string, args map[string]any, result any) error {
	c.mu.Lock()
	if c.exitErr != nil {
		err := c.exitErr
		c.mu.Unlock()
		return fmt.Errorf("mxclient: %s: %w", cmd, err)
	}
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	msg := map[string]any{}
	for k, v := range args {
		msg[k] = v
	}
	msg["id"] = id
	msg["cmd"] = cmd
	line, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("mxclient: %s: %w", cmd, err)
	}
	logged := line
	if _, ok := args["password"]; ok || args["recovery_key"] != nil {
		redacted := map[string]any{}
		for k, v := range msg {
			redacted[k] = v
		}
		for _, k := range []string{"password", "recovery_key"} {
			if _, ok := redacted[k]; ok {
				redacted[k] = "<redacted>"
			}
		}
		logged, _ = json.Marshal(redacted)
	}
	c.logLine(">", logged)
	c.wmu.Lock()
	_, err = c.stdin.Write(append(line, '\n'))
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("mxclient: %s: writing command: %w", cmd, err)
	}

	select {
	case raw := <-ch:
		var l wireLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("mxclient: %s: %w", cmd, err)
		}
		if !l.OK {
			return fmt.Errorf("mxclient: %s: %s", cmd, l.Error)
		}
		if result != nil {
			if err := json.Unmarshal(raw, result); err != nil {
				return fmt.Errorf("mxclient: %s: decoding reply: %w", cmd, err)
			}
		}
		return nil
	case <-c.done:
		return fmt.Errorf("mxclient: %s: %w", cmd, c.exitErr)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("mxclient: %s: %w", cmd, ctx.Err())
	}
}

// Login optionally registers user (open registration, m.login.dummy; an
// existing user is fine), logs in with the password, sets up the Rust crypto,
// starts syncing (the initial sync is done when it returns) and bootstraps
// cross-signing the way Element does, authenticating the key upload with the
// password. It fails unless the new device ends up cross-signed by its own
// identity. user is a localpart or a full user id.
func (c *Client) Login(ctx context.Context, hsURL, user, pass string, register bool) (userID, deviceID string, err error) {
	info, err := c.LoginWithOptions(ctx, LoginOptions{Homeserver: hsURL, User: user, Password: pass, Register: register})
	return info.UserID, info.DeviceID, err
}

// LoginOptions are the arguments of LoginWithOptions.
type LoginOptions struct {
	Homeserver, User, Password string
	Register                   bool
	// SecretStorage additionally sets up what Element calls secure backup:
	// secret storage (4S) holding the cross-signing keys, with a new
	// recovery key (LoginInfo.RecoveryKey), and a server-side key backup.
	SecretStorage bool
	// RecoveryKey, from an earlier login's LoginInfo.RecoveryKey, lets a
	// second login of the same user restore the cross-signing keys from
	// secret storage and cross-sign the new device with the existing
	// identity, instead of replacing the identity.
	RecoveryKey string
}

// LoginWithOptions is Login with secret storage options.
func (c *Client) LoginWithOptions(ctx context.Context, o LoginOptions) (LoginInfo, error) {
	var info LoginInfo
	args := map[string]any{
		"homeserver": o.Homeserver,
		"user":       o.User,
		"password":   o.Password,
		"register":   o.Register,
	}
	if o.SecretStorage {
		args["secret_storage"] = true
	}
	if o.RecoveryKey != "" {
		args["recovery_key"] = o.RecoveryKey
	}
	if err := c.Call(ctx, "login", args, &info); err != nil {
		return LoginInfo{}, err
	}
	c.mu.Lock()
	c.login = info
	c.mu.Unlock()
	return info, nil
}

// LoginInfo returns what the last successful Login reported (ids, whether the
// user was newly registered, cross-signing state, timings).
func (c *Client) LoginInfo() LoginInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.login
}

// UserID returns the logged-in user id, or "".
func (c *Client) UserID() string { return c.LoginInfo().UserID }

// CreateDM creates an encrypted (megolm v1) direct-message room with
// is_direct, inviting userID, and marks it in m.direct. It returns once the
// client's own sync knows the room and that it is encrypted, so a Send right
// after it is encrypted.
func (c *Client) CreateDM(ctx context.Context, userID string) (roomID string, err error) {
	return c.createDM(ctx, userID, true)
}

// CreateUnencryptedDM is CreateDM without m.room.encryption.
func (c *Client) CreateUnencryptedDM(ctx context.Context, userID string) (roomID string, err error) {
	return c.createDM(ctx, userID, false)
}

func (c *Client) createDM(ctx context.Context, userID string, encrypted bool) (string, error) {
	var res struct {
		RoomID string `json:"room_id"`
	}
	err := c.Call(ctx, "create_dm", map[string]any{"user_id": userID, "encrypted": encrypted}, &res)
	return res.RoomID, err
}

// Join joins a room (by id or alias) and waits until sync shows it joined.
func (c *Client) Join(ctx context.Context, roomID string) error {
	return c.Call(ctx, "join", map[string]any{"room_id": roomID}, nil)
}

// SetAutojoin turns auto-joining of invites on or off (default on).
func (c *Client) SetAutojoin(ctx context.Context, enabled bool) error {
	return c.Call(ctx, "set_autojoin", map[string]any{"enabled": enabled}, nil)
}

// Send sends an m.room.message (msgtype m.text, m.emote or m.notice; "" means
// m.text), with formattedBody as org.matrix.custom.html when not empty. It
// waits until the room is joined in the client's sync first, and the message
// is encrypted when the room is.
func (c *Client) Send(ctx context.Context, roomID, msgtype, body, formattedBody string) (eventID string, err error) {
	if msgtype == "" {
		msgtype = "m.text"
	}
	args := map[string]any{"room_id": roomID, "msgtype": msgtype, "body": body}
	if formattedBody != "" {
		args["formatted_body"] = formattedBody
	}
	var res struct {
		EventID string `json:"event_id"`
	}
	err = c.Call(ctx, "send", args, &res)
	return res.EventID, err
}

// SendFile uploads data and sends it as a msgtype (m.file, m.image, ...) message named fileName,
// encrypting the file first in an encrypted room, as Matrix clients do.
func (c *Client) SendFile(ctx context.Context, roomID, msgtype, fileName, mimeType string, data []byte) (eventID string, err error) {
	var res struct {
		EventID string `json:"event_id"`
	}
	err = c.Call(ctx, "send_file", map[string]any{
		"room_id": roomID, "msgtype": msgtype, "file_name": fileName, "mimetype": mimeType,
		"data_b64": base64.StdEncoding.EncodeToString(data),
	}, &res)
	return res.EventID, err
}

// SendEvent sends an arbitrary room event of type eventType with content,
// encrypted when the room is.
func (c *Client) SendEvent(ctx context.Context, roomID, eventType string, content map[string]any) (eventID string, err error) {
	var res struct {
		EventID string `json:"event_id"`
	}
	err = c.Call(ctx, "send", map[string]any{"room_id": roomID, "event_type": eventType, "content": content}, &res)
	return res.EventID, err
}

// Invite invites userID to roomID.
func (c *Client) Invite(ctx context.Context, roomID, userID string) error {
	return c.Call(ctx, "invite", map[string]any{"room_id": roomID, "user_id": userID}, nil)
}

// Leave leaves roomID.
func (c *Client) Leave(ctx context.Context, roomID string) error {
	return c.Call(ctx, "leave", map[string]any{"room_id": roomID}, nil)
}

// Redact redacts eventID in roomID (reason may be empty) and returns the
// redaction's event id.
func (c *Client) Redact(ctx context.Context, roomID, eventID, reason string) (string, error) {
	args := map[string]any{"room_id": roomID, "event_id": eventID}
	if reason != "" {
		args["reason"] = reason
	}
	var res struct {
		EventID string `json:"event_id"`
	}
	err := c.Call(ctx, "redact", args, &res)
	return res.EventID, err
}

// ReadReceipt sends an m.read receipt for eventID in roomID.
func (c *Client) ReadReceipt(ctx context.Context, roomID, eventID string) error {
	return c.Call(ctx, "read_receipt", map[string]any{"room_id": roomID, "event_id": eventID}, nil)
}

// ReadUpTo is the event userID has read up to in roomID by their m.read receipts, as Element
// shows it ("" when none).
func (c *Client) ReadUpTo(ctx context.Context, roomID, userID string) (string, error) {
	var res struct {
		EventID *string `json:"event_id"`
	}
	if err := c.Call(ctx, "read_up_to", map[string]any{"room_id": roomID, "user_id": userID}, &res); err != nil {
		return "", err
	}
	if res.EventID == nil {
		return "", nil
	}
	return *res.EventID, nil
}

// Edit sends an edit (m.replace) of eventID with a new m.text body.
func (c *Client) Edit(ctx context.Context, roomID, eventID, newBody string) (string, error) {
	return c.SendEvent(ctx, roomID, "m.room.message", map[string]any{
		"msgtype":       "m.text",
		"body":          "* " + newBody,
		"m.new_content": map[string]any{"msgtype": "m.text", "body": newBody},
		"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": eventID},
	})
}

// Device is one device of a user as the client's crypto sees it.
type Device struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name"`
	// SignedByOwner: the owner's self-signing key signed this device.
	SignedByOwner bool `json:"signed_by_owner"`
	// CrossSigningVerified: signed by the owner, and we trust the owner's
	// identity (true for our own devices once we are cross-signed).
	CrossSigningVerified bool `json:"cross_signing_verified"`
	LocallyVerified      bool `json:"locally_verified"`
}

// UserDevices is the answer of Devices.
type UserDevices struct {
	UserID           string   `json:"user_id"`
	HasCrossSigning  bool     `json:"has_cross_signing"`
	IdentityVerified bool     `json:"identity_verified"`
	Devices          []Device `json:"devices"`
}

// Devices queries userID's devices and cross-signing state ("" for our own).
// Use it to check, e.g., that the bridge bot's device is cross-signed by the
// bot (SignedByOwner).
func (c *Client) Devices(ctx context.Context, userID string) (UserDevices, error) {
	var res UserDevices
	err := c.Call(ctx, "devices", map[string]any{"user_id": userID}, &res)
	return res, err
}

// Members lists the room's members as the client's sync sees them.
func (c *Client) Members(ctx context.Context, roomID string) ([]Member, error) {
	var res struct {
		Members []Member `json:"members"`
	}
	err := c.Call(ctx, "members", map[string]any{"room_id": roomID}, &res)
	return res.Members, err
}

// Events returns a snapshot of every timeline event reported so far, in the
// order they were reported.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// Invites returns a snapshot of every invite received so far.
func (c *Client) Invites() []Invite {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Invite(nil), c.invites...)
}

// EventCount returns how many event reports there have been so far; pass it
// to WaitEventFrom to consider only later ones.
func (c *Client) EventCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// WaitEvent returns the first event, among all reported so far and those
// still to come, for which match returns true. It fails when ctx ends or the
// client exits.
func (c *Client) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	return c.WaitEventFrom(ctx, 0, match)
}

// WaitEventFrom is WaitEvent over the reports from index from on (see
// EventCount).
func (c *Client) WaitEventFrom(ctx context.Context, from int, match func(Event) bool) (Event, error) {
	return waitIn(ctx, c, "event", from, func() []Event { return c.events }, match)
}

// waitIn waits for the first item of list (read with c.mu held) from index from on that match
// accepts, among those reported so far and those still to come; what names it in errors.
func waitIn[T any](ctx context.Context, c *Client, what string, from int, list func() []T, match func(T) bool) (T, error) {
	var zero T
	i := from
	scan := func() (T, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for items := list(); i < len(items); i++ {
			if match(items[i]) {
				return items[i], true
			}
		}
		return zero, false
	}
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if v, ok := scan(); ok {
			return v, nil
		}
		select {
		case <-changed:
		case <-c.done:
			if v, ok := scan(); ok { // reported before the exit
				return v, nil
			}
			return zero, fmt.Errorf("mxclient: waiting for %s: %w", what, c.exitErr)
		case <-ctx.Done():
			return zero, fmt.Errorf("mxclient: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// WaitDecrypted waits until eventID has been reported successfully decrypted
// (or as a plaintext event) and returns that report. Reports of it as
// undecryptable do not end the wait, since a late room key can still fix
// them; when ctx ends, the error says whether the event was seen at all and,
// if it was only seen undecryptable, with which error. That tells "arrived
// but could not be decrypted" apart from "never arrived".
func (c *Client) WaitDecrypted(ctx context.Context, eventID string) (Event, error) {
	ev, err := c.WaitEvent(ctx, func(e Event) bool { return e.EventID == eventID && e.DecryptionError == "" })
	if err == nil {
		return ev, nil
	}
	if utd, ok := c.LastReport(eventID); ok {
		return Event{}, fmt.Errorf("mxclient: event %s arrived but stayed undecryptable (%s): %w", eventID, utd.DecryptionError, err)
	}
	return Event{}, fmt.Errorf("mxclient: event %s never arrived: %w", eventID, err)
}

// FirstReport returns the first report of eventID, if any: with an error in
// DecryptionError when the client could not decrypt it at first.
func (c *Client) FirstReport(eventID string) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.EventID == eventID {
			return e, true
		}
	}
	return Event{}, false
}

// LastReport returns the latest report of eventID, if any.
func (c *Client) LastReport(eventID string) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if c.events[i].EventID == eventID {
			return c.events[i], true
		}
	}
	return Event{}, false
}

// WaitInvite returns the first invite, among all received so far and those
// still to come, for which match returns true (nil matches any).
func (c *Client) WaitInvite(ctx context.Context, match func(Invite) bool) (Invite, error) {
	if match == nil {
		match = func(Invite) bool { return true }
	}
	return waitIn(ctx, c, "invite", 0, func() []Invite { return c.invites }, match)
}

// Close stops the client (asking it to stop, then killing it if it does not
// exit within a few seconds) and closes the log. It is safe to call more than
// once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		select {
		case <-c.done:
		default:
			_ = c.Call(ctx, "stop", nil, nil)
			c.wmu.Lock()
			_ = c.stdin.Close()
			c.wmu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
		c.closeLog()
	})
	return nil
}

// Predicates for WaitEvent.

// Message matches a successfully decrypted (or plaintext) m.room.message in
// roomID with the given body; an empty roomID, sender or body matches any.
func Message(roomID, sender, body string) func(Event) bool {
	return func(e Event) bool {
		return e.Type == "m.room.message" && e.DecryptionError == "" &&
			(roomID == "" || e.RoomID == roomID) &&
			(sender == "" || e.Sender == sender) &&
			(body == "" || e.Body() == body)
	}
}

// Undecryptable matches an event in roomID (any room when empty) that the
// client could not decrypt.
func Undecryptable(roomID string) func(Event) bool {
	return func(e Event) bool {
		return e.DecryptionError != "" && (roomID == "" || e.RoomID == roomID)
	}
}

// EventID matches the report(s) of one event id.
func EventID(eventID string) func(Event) bool {
	return func(e Event) bool { return e.EventID == eventID }
}

// Membership matches an m.room.member event in roomID for userID with the
// given membership ("join", "invite", "leave", ...).
func Membership(roomID, userID, membership string) func(Event) bool {
	return func(e Event) bool {
		if e.Type != "m.room.member" || e.StateKey == nil || *e.StateKey != userID {
			return false
		}
		m, _ := e.Content["membership"].(string)
		return (roomID == "" || e.RoomID == roomID) && m == membership
	}
}

// SendState sends a state event with an empty state key and returns its event id.
func (c *Client) SendState(ctx context.Context, roomID, eventType string, content map[string]any) (string, error) {
	var res struct {
		EventID string `json:"event_id"`
	}
	err := c.Call(ctx, "state", map[string]any{"room_id": roomID, "event_type": eventType, "content": content}, &res)
	return res.EventID, err
}

// GetState returns the content of a room's current state event (empty state key), or nil.
func (c *Client) GetState(ctx context.Context, roomID, eventType string) (map[string]any, error) {
	var res struct {
		Content map[string]any `json:"content"`
	}
	err := c.Call(ctx, "get_state", map[string]any{"room_id": roomID, "event_type": eventType}, &res)
	return res.Content, err
}

// Moderate kicks, bans or unbans userID in roomID (action "kick", "ban" or "unban").
func (c *Client) Moderate(ctx context.Context, roomID, action, userID, reason string) error {
	return c.Call(ctx, "moderate", map[string]any{"room_id": roomID, "action": action, "user_id": userID, "reason": reason}, nil)
}

// PublicRoom is one entry of the homeserver's public room directory.
type PublicRoom struct {
	RoomID string `json:"room_id"`
	Name   string `json:"name"`
}

// PublicRooms lists the homeserver's public room directory.
func (c *Client) PublicRooms(ctx context.Context) ([]PublicRoom, error) {
	var res struct {
		Rooms []PublicRoom `json:"rooms"`
	}
	err := c.Call(ctx, "public_rooms", nil, &res)
	return res.Rooms, err
}

// BatchResult is what SendBatch reports: the sequence numbers the homeserver accepted and those it
// never did before the per-message deadline.
type BatchResult struct {
	Sent   []int `json:"sent"`
	Failed []int `json:"failed"`
}

// SendBatch sends count m.text messages "<prefix><seq>" for seq in [from, from+count), one after
// the other, each retried with its transaction id until the homeserver accepts it or deadline after
// its first try (an outage longer than that fails the message). interval paces the sends.
func (c *Client) SendBatch(ctx context.Context, roomID, prefix string, from, count int, interval, deadline time.Duration) (BatchResult, error) {
	var res BatchResult
	err := c.Call(ctx, "send_batch", map[string]any{
		"room_id": roomID, "prefix": prefix, "from": from, "count": count,
		"interval_ms": interval.Milliseconds(), "deadline_ms": deadline.Milliseconds(),
	}, &res)
	return res, err
}

// Collected is what Collect reports: sequence numbers in timeline order, the number of events looked
// at and how many of them stayed undecryptable.
type Collected struct {
	Seqs   []int `json:"seqs"`
	UTD    int   `json:"utd"`
	Events int   `json:"events"`
}

// Collect pages roomID's history back to since with /messages (not trusting what sync delivered: a
// sync across a homeserver restart can skip events), decrypts it and returns the sequence numbers
// of the messages "<prefix><seq>" from sender (any sender when empty), in timeline order.
func (c *Client) Collect(ctx context.Context, roomID, prefix, sender string, since time.Time) (Collected, error) {
	var res Collected
	args := map[string]any{"room_id": roomID, "prefix": prefix, "since_ts": since.UnixMilli()}
	if sender != "" {
		args["sender"] = sender
	}
	err := c.Call(ctx, "collect", args, &res)
	return res, err
}
