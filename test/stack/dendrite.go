package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed templates/dendrite.yaml.tmpl
var dendriteTemplate string

// Dendrite is a running Dendrite homeserver.
type Dendrite struct {
	URL        string // client-server API base, e.g. http://127.0.0.1:40123
	ServerName string // "localhost": user IDs are @name:localhost
	Dir        string // config, SQLite databases, dendrite.log
	ConfigPath string // dendrite.yaml
	// RoomserverDB is the SQLite file whose roomserver_events,
	// roomserver_rooms and roomserver_event_types tables hold every room
	// event Dendrite accepted; see EventTypesInRoom.
	RoomserverDB string

	proc *process
}

// StartDendrite renders a config into dir (SQLite databases, federation
// off, open registration without verification, rate limiting off, the
// given appservice registration files), generates a signing key and starts
// Dendrite on a free 127.0.0.1 port. It returns once
// /_matrix/client/versions answers.
func StartDendrite(ctx context.Context, dir string, registrationFiles ...string) (*Dendrite, error) {
	dir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	bin := ToolsBin()
	for _, b := range []string{"dendrite", "generate-keys", "create-account"} {
		if err := needFile(filepath.Join(bin, b)); err != nil {
			return nil, err
		}
	}
	var regs []string
	for _, f := range registrationFiles {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		if err := needFile(a); err != nil {
			return nil, err
		}
		regs = append(regs, a)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	d := &Dendrite{
		URL:          fmt.Sprintf("http://127.0.0.1:%d", port),
		ServerName:   "localhost",
		Dir:          dir,
		ConfigPath:   filepath.Join(dir, "dendrite.yaml"),
		RoomserverDB: filepath.Join(dir, "dendrite_roomserver.db"),
	}

	keyPath := filepath.Join(dir, "matrix_key.pem")
	if _, err := os.Stat(keyPath); err != nil {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "generate-keys"), "-private-key", keyPath).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("generate-keys: %v: %s", err, out)
		}
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	tmpl, err := template.New("dendrite").Funcs(template.FuncMap{
		"q":    yamlQuote,
		"path": func(name string) string { return filepath.Join(dir, name) },
		"db": func(component string) string {
			return "file:" + filepath.Join(dir, "dendrite_"+component+".db")
		},
	}).Parse(dendriteTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{
		"ServerName":        d.ServerName,
		"KeyPath":           keyPath,
		"Dir":               dir,
		"RegistrationFiles": regs,
		"SharedSecret":      hex.EncodeToString(secret),
	}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.ConfigPath, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}

	d.proc, err = startProcess(ctx, dir, "dendrite", []string{
		filepath.Join(bin, "dendrite"),
		"-config", d.ConfigPath,
		"-http-bind-address", fmt.Sprintf("127.0.0.1:%d", port),
		"-really-enable-open-registration",
	}, nil)
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, d.proc, "Dendrite's /_matrix/client/versions", func(ctx context.Context) error {
		_, err := d.get(ctx, "/_matrix/client/versions")
		return err
	})
	if err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// Stop stops Dendrite (SIGTERM, then SIGKILL). It is safe to call twice
// and after Dendrite died.
func (d *Dendrite) Stop() error {
	if d == nil {
		return nil
	}
	return d.proc.stop(syscall.SIGTERM, 10*time.Second)
}

// LogPath is Dendrite's stdout/stderr log.
func (d *Dendrite) LogPath() string { return filepath.Join(d.Dir, "dendrite.log") }

// UserID returns @localpart:ServerName.
func (d *Dendrite) UserID(localpart string) string {
	return "@" + localpart + ":" + d.ServerName
}

// RegisterUser creates an account with Dendrite's create-account tool
// (shared-secret registration against the running server).
func (d *Dendrite) RegisterUser(ctx context.Context, localpart, password string, admin bool) error {
	args := []string{"-config", d.ConfigPath, "-url", d.URL, "-username", localpart, "-passwordstdin"}
	if admin {
		args = append(args, "-admin")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(ToolsBin(), "create-account"), args...)
	cmd.Dir = d.Dir
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("create-account %s: %v: %s", localpart, err, out)
	}
	return nil
}

// Login logs localpart in with a password (m.login.password) and returns
// the access token.
func (d *Dendrite) Login(ctx context.Context, localpart, password string) (accessToken string, err error) {
	return passwordLogin(ctx, d.URL, localpart, password)
}

func (d *Dendrite) get(ctx context.Context, path string) ([]byte, error) {
	return matrixDo(ctx, d.URL, http.MethodGet, path, "", nil)
}

// eventTypesSQL counts a room's events by type in Dendrite's roomserver
// database (roomserver/storage/sqlite3 in Dendrite v0.15.2): every event
// the roomserver stored, rejected ones included, state and timeline alike.
const eventTypesSQL = `SELECT t.event_type AS type, COUNT(*) AS n
FROM roomserver_events e
JOIN roomserver_rooms r ON r.room_nid = e.room_nid
JOIN roomserver_event_types t ON t.event_type_nid = e.event_type_nid
WHERE r.room_id = '%s'
GROUP BY t.event_type;`

// EventTypesInRoom counts the events of a room by event type, read from
// Dendrite's own database (dendrite_roomserver.db, tables roomserver_events
// + roomserver_rooms + roomserver_event_types) rather than through a
// client, so a test can assert that a room holds m.room.encrypted events
// and no m.room.message at all. Unknown rooms give an empty map. It uses
// the sqlite3 command-line tool, read-only, while Dendrite runs.
func (d *Dendrite) EventTypesInRoom(roomID string) (map[string]int, error) {
	return countEventTypes(d.RoomserverDB, eventTypesSQL, roomID)
}

// CountEventsSince counts the events of one type and sender in a room that Dendrite stored with an
// origin_server_ts at or after since (Unix ms), read from its own database like
// EventTypesInRoom. The fault suite uses it to tell a message the bridge never sent from one the
// Matrix client did not collect.
func (d *Dendrite) CountEventsSince(roomID, sender, eventType string, since int64) (int, error) {
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "'", "''"), "%", "%%") }
	query := `SELECT 'n' AS type, count(*) AS n
FROM roomserver_events e
JOIN roomserver_rooms r ON r.room_nid = e.room_nid
JOIN roomserver_event_json j ON j.event_nid = e.event_nid
WHERE r.room_id = '%s'
AND json_extract(CAST(j.event_json AS TEXT), '$.sender') = '` + esc(sender) + `'
AND json_extract(CAST(j.event_json AS TEXT), '$.type') = '` + esc(eventType) + `'
AND json_extract(CAST(j.event_json AS TEXT), '$.origin_server_ts') >= ` + strconv.FormatInt(since, 10) + `;`
	counts, err := countEventTypes(d.RoomserverDB, query, roomID)
	return counts["n"], err
}

// yamlQuote quotes s as a JSON string, which is a valid YAML scalar.
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
