package stack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// Synapse (Debian sid's matrix-synapse 1.160.0, chrooted). Found out while
// setting it up:
//   - Synapse does not create an appservice's sender_localpart account by
//     itself; a token from appservice login (m.login.application_service)
//     for a user with no account is rejected (M_UNKNOWN_TOKEN). bridgev2
//     registers its bot first (register with m.login.application_service),
//     and so must any test that logs the sender in.
//   - A first cross-signing upload needs no UIA (MSC3967), so a bridge with
//     self_sign: true and encryption.appservice: false needs no
//     experimental feature; see the template for the MSC flags.
//   - Synapse's appservice HTTP client has no IP blocklist: transactions to
//     an appservice on 127.0.0.1 are delivered.
//   - pid_file is only written when Synapse daemonizes (not here).
//   - In Synapse's /proc/PID/mountinfo the mount points are relative to
//     its chroot (/proc, not Root/proc).
//   - It advertises spec up to v1.12, so a bridge needs no
//     --ignore-unsupported-server against it (StartBridge passes it anyway).
//   - Startup with a new SQLite database takes 3-4 s (about 9 s when the
//     machine is busy); password logins take about 0.3-1 s (bcrypt).

//go:embed templates/synapse.yaml.tmpl
var synapseTemplate string

// synapseDefaultRoot is where test/install.sh builds the Debian sid chroot
// holding matrix-synapse (outside the work tree; it survives between runs).
const synapseDefaultRoot = "/var/lib/sealbridge-test/synapse-sid"

// synapseLogConfig sends Synapse's Python logging to stderr, unbuffered,
// which startProcess writes to synapse.log in the run directory.
const synapseLogConfig = `version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
loggers:
  synapse.storage.SQL:
    level: INFO
root:
  level: INFO
  handlers: [console]
disable_existing_loggers: false
`

// SynapseRoot is the chroot holding Synapse: $SEALBRIDGE_SYNAPSE_ROOT, or
// /var/lib/sealbridge-test/synapse-sid (test/install.sh builds it there).
func SynapseRoot() string {
	if d := os.Getenv("SEALBRIDGE_SYNAPSE_ROOT"); d != "" {
		return d
	}
	return synapseDefaultRoot
}

// Synapse is a running Synapse homeserver (Debian sid's matrix-synapse in
// the chroot SynapseRoot()).
type Synapse struct {
	URL        string // client-server API base, e.g. http://127.0.0.1:40123
	ServerName string // "localhost": user IDs are @name:localhost
	Root       string // the chroot
	// Dir is the run directory as the host sees it: Root/tmp/synapse-XXXX,
	// /tmp/synapse-XXXX inside the chroot. It holds homeserver.yaml,
	// homeserver.db, the signing key, copies of the registration files,
	// media_store and synapse.log. Every StartSynapse makes a new one;
	// Stop keeps it, Remove deletes it.
	Dir        string
	ConfigPath string // Dir/homeserver.yaml (host path)
	// DBPath is Synapse's SQLite database (host path); its events table
	// (room_id, type, ...) holds every event Synapse stored.
	DBPath string
	// RegistrationSecret is registration_shared_secret, for RegisterUser.
	RegistrationSecret string

	port   int
	inside string // Dir as seen inside the chroot
	proc   *process
}

// StartSynapse renders a config into a new run directory inside the chroot
// (SQLite, no federation listener, open registration without verification,
// rate limits raised, copies of the given appservice registration files),
// writes a signing key and starts Synapse chrooted on a free 127.0.0.1
// port. It returns once /_matrix/client/versions answers. dir (on the
// host) gets a symlink "synapse-run" to the run directory.
//
// Synapse runs as `unshare --mount --propagation private` + bind-mount of
// /proc onto Root/proc + `chroot Root python3 -m synapse.app.homeserver`:
// the /proc mount exists only in Synapse's private mount namespace, so it
// never shows on the host, cannot leak when Start fails or Synapse dies,
// and any number of Synapses can run side by side. (The chroot's /dev has
// the device nodes debootstrap made; Python needs no more.) Needs root.
func StartSynapse(ctx context.Context, dir string, registrationFiles ...string) (*Synapse, error) {
	dir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	root := SynapseRoot()
	for _, f := range []string{filepath.Join(root, "usr", "bin", "python3"),
		filepath.Join(root, "usr", "lib", "python3", "dist-packages", "synapse", "app", "homeserver.py")} {
		if err := needFile(f); err != nil {
			return nil, err
		}
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, fmt.Errorf("unshare (util-linux) not found: %w", err)
	}
	pruneSynapseRuns(root)
	runDir, err := os.MkdirTemp(filepath.Join(root, "tmp"), "synapse-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(runDir, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Synapse{
		URL:                fmt.Sprintf("http://127.0.0.1:%d", port),
		ServerName:         "localhost",
		Root:               root,
		Dir:                runDir,
		ConfigPath:         filepath.Join(runDir, "homeserver.yaml"),
		DBPath:             filepath.Join(runDir, "homeserver.db"),
		RegistrationSecret: randomHex(16),
		port:               port,
		inside:             "/tmp/" + filepath.Base(runDir),
	}
	link := filepath.Join(dir, "synapse-run")
	_ = os.Remove(link)
	_ = os.Symlink(runDir, link)

	// The chroot cannot see host paths: copy the registrations in.
	var regs []string
	for i, f := range registrationFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("appservice registration: %w", err)
		}
		name := fmt.Sprintf("appservice-%d-%s", i, filepath.Base(f))
		if err := os.WriteFile(filepath.Join(runDir, name), data, 0o644); err != nil {
			return nil, err
		}
		regs = append(regs, s.inside+"/"+name)
	}
	if err := writeSynapseSigningKey(filepath.Join(runDir, "signing.key")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(runDir, "log.config"), []byte(synapseLogConfig), 0o644); err != nil {
		return nil, err
	}
	tmpl, err := template.New("synapse").Funcs(template.FuncMap{
		"q":    yamlQuote,
		"path": func(name string) string { return s.inside + "/" + name },
	}).Parse(synapseTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{
		"ServerName":         s.ServerName,
		"URL":                s.URL + "/",
		"Port":               port,
		"RegistrationFiles":  regs,
		"RegistrationSecret": s.RegistrationSecret,
		"MacaroonSecret":     randomHex(24),
		"FormSecret":         randomHex(24),
	}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.ConfigPath, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs Synapse on the existing run directory and waits for it.
func (s *Synapse) start(ctx context.Context) error {
	var err error
	s.proc, err = startProcess(ctx, s.Dir, "synapse", []string{
		"unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", `mount --bind /proc "$0/proc" && exec chroot "$0" "$@"`, s.Root,
		"python3", "-m", "synapse.app.homeserver", "--config-path", s.inside + "/homeserver.yaml",
	}, func(cmd *exec.Cmd) {
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	})
	if err != nil {
		return err
	}
	err = waitFor(ctx, s.proc, "Synapse's /_matrix/client/versions", func(ctx context.Context) error {
		_, err := s.Do(ctx, http.MethodGet, "/_matrix/client/versions", "", nil)
		return err
	})
	if err != nil {
		_ = s.Stop()
		return err
	}
	return nil
}

// Restart stops Synapse and starts it again on the same run directory,
// port and database (e.g. to test a homeserver restart).
func (s *Synapse) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Stop stops Synapse (SIGTERM, then SIGKILL after 10 s). Its /proc mount
// goes away with its mount namespace. The run directory is kept. Safe to
// call twice and after Synapse died.
func (s *Synapse) Stop() error {
	if s == nil {
		return nil
	}
	return s.proc.stop(syscall.SIGTERM, 10*time.Second)
}

// Remove stops Synapse and deletes its run directory (e.g. at the end of a
// test that passed).
func (s *Synapse) Remove() error {
	if s == nil {
		return nil
	}
	_ = s.Stop()
	return os.RemoveAll(s.Dir)
}

// LogPath is Synapse's log: its Python logging and stdout/stderr.
func (s *Synapse) LogPath() string { return filepath.Join(s.Dir, "synapse.log") }

// UserID returns @localpart:ServerName.
func (s *Synapse) UserID(localpart string) string {
	return "@" + localpart + ":" + s.ServerName
}

// RegisterUser creates an account with the shared-secret admin API
// (/_synapse/admin/v1/register), which can make admins; open registration
// (POST /_matrix/client/v3/register, m.login.dummy) works as well.
func (s *Synapse) RegisterUser(ctx context.Context, localpart, password string, admin bool) error {
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	b, err := s.Do(ctx, http.MethodGet, "/_synapse/admin/v1/register", "", nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &nonce); err != nil {
		return err
	}
	mac := hmac.New(sha1.New, []byte(s.RegistrationSecret))
	kind := "notadmin"
	if admin {
		kind = "admin"
	}
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00" + kind))
	_, err = s.Do(ctx, http.MethodPost, "/_synapse/admin/v1/register", "", map[string]any{
		"nonce": nonce.Nonce, "username": localpart, "password": password,
		"admin": admin, "mac": hex.EncodeToString(mac.Sum(nil)),
	})
	if err != nil {
		return fmt.Errorf("register %s: %w", localpart, err)
	}
	return nil
}

// Login logs localpart in with a password (m.login.password) and returns
// the access token.
func (s *Synapse) Login(ctx context.Context, localpart, password string) (accessToken string, err error) {
	return passwordLogin(ctx, s.URL, localpart, password)
}

// Do sends a JSON request (body nil: none) with an optional access token
// and returns the response body; any status but 200 is an error.
func (s *Synapse) Do(ctx context.Context, method, path, token string, body any) ([]byte, error) {
	return matrixDo(ctx, s.URL, method, path, token, body)
}

// EventTypesInRoom counts the events of a room by event type, read from
// Synapse's own SQLite database (homeserver.db, table events: room_id,
// type), the same contract as Dendrite's: every event Synapse stored for
// the room (state and timeline; rejected events and outliers included), so
// a test can assert a room holds m.room.encrypted and no m.room.message.
// Unknown rooms give an empty map. It uses the sqlite3 command-line tool,
// read-only, while Synapse runs.
func (s *Synapse) EventTypesInRoom(roomID string) (map[string]int, error) {
	return countEventTypes(s.DBPath, `SELECT type, COUNT(*) AS n FROM events WHERE room_id = '%s' GROUP BY type;`, roomID)
}

// writeSynapseSigningKey writes a Synapse signing key file: one line
// "ed25519 <key id> <unpadded base64 of the 32-byte seed>" (what
// --generate-keys writes, without a 2 s Python start).
func writeSynapseSigningKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("ed25519 a_%s %s\n", randomHex(2), base64.RawStdEncoding.EncodeToString(priv.Seed()))
	return os.WriteFile(path, []byte(line), 0o600)
}

// pruneSynapseRuns deletes run directories in the chroot's /tmp that
// nobody has written to for three days (Stop keeps them for inspection).
func pruneSynapseRuns(root string) {
	runs, _ := filepath.Glob(filepath.Join(root, "tmp", "synapse-*"))
	for _, d := range runs {
		fi, err := os.Stat(filepath.Join(d, "synapse.log"))
		if err != nil {
			fi, err = os.Stat(d)
		}
		if err == nil && time.Since(fi.ModTime()) > 72*time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}
