package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// SQLiteQuery is the query of the example config's SQLite URI (`sealbridge -e`): transactions
// that take the write lock at BEGIN, and a cache of prepared statements per connection.
const SQLiteQuery = "_txlock=immediate&_stmt_cache_size=64"

// SQLiteURI is the example config's SQLite URI for the database file at path.
func SQLiteURI(path string) string { return "file:" + path + "?" + SQLiteQuery }

// BridgeSetup names what a sealbridge config points at.
type BridgeSetup struct {
	Binary     string // the sealbridge binary
	Dir        string // config, registration and bridge.log go here
	DBType     string // "sqlite3-fk-wal" or "postgres"
	DBURI      string
	ServerName string // the homeserver's server name
	IRCAddr    string
	IRCPort    int
	IRCTLS     bool
	IRCCAFile  string // trusted CA for the IRC server's TLS certificate
	NetworkID  string // default "testnet"
	// MetricsListen, when set, turns the Prometheus endpoint on at this host:port.
	MetricsListen string
	// ExtraNetworks are added to network.networks as they are (e.g. one nobody listens on).
	ExtraNetworks map[string]any
	LogLevel      string // default "debug"
	// DoublePuppetToken, when set, turns double puppeting on for ServerName's users with this
	// as_token of a second registration (WriteDoublePuppetRegistration).
	DoublePuppetToken string
}

// WriteBridgeConfig writes the example config with `sealbridge -e`, points it at the given parts and
// writes the appservice registration with `sealbridge -g`, as an admin would. The homeserver's
// address is set later with SetHomeserver, once the homeserver (which needs the registration) runs.
func WriteBridgeConfig(s BridgeSetup) (configPath, registrationPath string, err error) {
	if s.NetworkID == "" {
		s.NetworkID = "testnet"
	}
	if s.LogLevel == "" {
		s.LogLevel = "debug"
		if env := os.Getenv("SEALBRIDGE_E2E_LOG_LEVEL"); env != "" {
			s.LogLevel = env // e.g. trace: every IRC line in and out, to chase a flaky run
		}
	}
	configPath = filepath.Join(s.Dir, "config.yaml")
	registrationPath = filepath.Join(s.Dir, "registration.yaml")
	if err = runIn(s.Dir, s.Binary, "-e", "-c", configPath); err != nil {
		return "", "", err
	}
	asPort, err := FreePort()
	if err != nil {
		return "", "", err
	}
	err = EditYAML(configPath, func(cfg map[string]any) {
		SetYAML(cfg, "http://127.0.0.1:8008", "homeserver", "address")
		SetYAML(cfg, s.ServerName, "homeserver", "domain")
		SetYAML(cfg, fmt.Sprintf("http://127.0.0.1:%d", asPort), "appservice", "address")
		SetYAML(cfg, "127.0.0.1", "appservice", "hostname")
		SetYAML(cfg, asPort, "appservice", "port")
		SetYAML(cfg, s.DBType, "database", "type")
		SetYAML(cfg, s.DBURI, "database", "uri")
		SetYAML(cfg, map[string]any{"*": "relay", s.ServerName: "user", "@admin:" + s.ServerName: "admin"}, "bridge", "permissions")
		// The relay story has a room admin who is no bridge admin use her own login as the relay
		// (the example config keeps relays to bridge admins).
		SetYAML(cfg, false, "bridge", "relay", "admin_only")
		SetYAML(cfg, map[string]any{
			"min_level": s.LogLevel,
			"writers":   []any{map[string]any{"type": "stdout", "format": "json"}},
		}, "logging")
		network := map[string]any{
			"name":      "Test IRC",
			"address":   s.IRCAddr,
			"port":      s.IRCPort,
			"tls":       s.IRCTLS,
			"reconnect": map[string]any{"min_delay": "1s", "max_delay": "10s"},
		}
		if s.IRCCAFile != "" {
			network["tls_ca_file"] = s.IRCCAFile
		}
		networks := map[string]any{s.NetworkID: network}
		for id, n := range s.ExtraNetworks {
			networks[id] = n
		}
		SetYAML(cfg, networks, "network", "networks")
		if s.MetricsListen != "" {
			SetYAML(cfg, map[string]any{"enabled": true, "listen": s.MetricsListen}, "network", "metrics")
		}
		SetYAML(cfg, map[string]any{}, "double_puppet", "servers")
		secrets := map[string]any{}
		if s.DoublePuppetToken != "" {
			secrets[s.ServerName] = "as_token:" + s.DoublePuppetToken
		}
		SetYAML(cfg, secrets, "double_puppet", "secrets")
	})
	if err != nil {
		return "", "", err
	}
	if err = runIn(s.Dir, s.Binary, "-g", "-c", configPath, "-r", registrationPath); err != nil {
		return "", "", err
	}
	return configPath, registrationPath, nil
}

// SetHomeserver points a bridge config at a running homeserver.
func SetHomeserver(configPath, url, serverName string) error {
	return EditYAML(configPath, func(cfg map[string]any) {
		SetYAML(cfg, url, "homeserver", "address")
		SetYAML(cfg, serverName, "homeserver", "domain")
	})
}

// Bridge is a running sealbridge.
type Bridge struct {
	LogPath string
	BotMXID string
	// AppserviceURL is where the homeserver reaches the bridge (also /_matrix/mau/live and /ready).
	AppserviceURL string
	// MetricsURL is the Prometheus endpoint, when enabled.
	MetricsURL string
	proc       *exec.Cmd
	done       chan struct{}
}

// StartBridge runs sealbridge with the given config (its registration beside it) and returns once
// it logs "Bridge started". Dendrite advertises only spec v1.2, hence --ignore-unsupported-server.
func StartBridge(ctx context.Context, binary, configPath string) (*Bridge, error) {
	dir := filepath.Dir(configPath)
	cfg, err := ReadYAML(configPath)
	if err != nil {
		return nil, err
	}
	bot, _ := GetYAML(cfg, "appservice", "bot", "username").(string)
	domain, _ := GetYAML(cfg, "homeserver", "domain").(string)
	b := &Bridge{LogPath: filepath.Join(dir, "bridge.log"), BotMXID: "@" + bot + ":" + domain, done: make(chan struct{})}
	b.AppserviceURL, _ = GetYAML(cfg, "appservice", "address").(string)
	if on, _ := GetYAML(cfg, "network", "metrics", "enabled").(bool); on {
		listen, _ := GetYAML(cfg, "network", "metrics", "listen").(string)
		b.MetricsURL = "http://" + listen + "/metrics"
	}
	logFile, err := os.OpenFile(b.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	b.proc = exec.Command(binary, "-c", configPath, "-r", filepath.Join(dir, "registration.yaml"), "--ignore-unsupported-server", "-n")
	b.proc.Dir = dir
	b.proc.Stdout, b.proc.Stderr = logFile, logFile
	b.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err = b.proc.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { _ = b.proc.Wait(); logFile.Close(); close(b.done) }()
	deadline := time.Now().Add(startupTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			return nil, fmt.Errorf("the bridge exited during startup:\n%s", tailFile(b.LogPath, 40))
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if data, _ := os.ReadFile(b.LogPath); strings.Contains(string(data), `"Bridge started"`) {
			return b, nil
		}
	}
	b.Stop()
	return nil, fmt.Errorf("the bridge did not start within %s:\n%s", startupTimeout, tailFile(b.LogPath, 40))
}

// Stop sends SIGTERM (SIGKILL after 15 s) and waits for the bridge to exit.
func (b *Bridge) Stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = syscall.Kill(-b.proc.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-b.proc.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
}

// Done is closed when the bridge process has exited.
func (b *Bridge) Done() <-chan struct{} { return b.done }

func runIn(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

// ReadYAML reads a YAML file into a generic map.
func ReadYAML(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	return cfg, yaml.Unmarshal(data, &cfg)
}

// EditYAML rewrites a YAML file through fn (comments are not kept).
func EditYAML(path string, fn func(map[string]any)) error {
	cfg, err := ReadYAML(path)
	if err != nil {
		return err
	}
	fn(cfg)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// SetYAML sets a nested key, creating maps on the way.
func SetYAML(m map[string]any, value any, path ...string) {
	for _, key := range path[:len(path)-1] {
		next, ok := m[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[key] = next
		}
		m = next
	}
	m[path[len(path)-1]] = value
}

// GetYAML reads a nested key (nil when absent).
func GetYAML(m map[string]any, path ...string) any {
	var cur any = m
	for _, key := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[key]
	}
	return cur
}

// MainWithBridge is the TestMain of the packages that run the bridge: it builds the binary once
// (BuildBridge), stores its path in *bin, runs the tests, removes the build and exits.
func MainWithBridge(m *testing.M, bin *string) {
	b, cleanup, err := BuildBridge()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// BuildBridge returns the sealbridge binary the end-to-end packages run: $SEALBRIDGE_BIN when set,
// else a fresh `go build -tags goolm` of cmd/sealbridge into a temporary directory, which cleanup
// removes.
func BuildBridge() (bin string, cleanup func(), err error) {
	if bin = os.Getenv("SEALBRIDGE_BIN"); bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "sealbridge-bin")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "sealbridge")
	build := exec.Command("go", "build", "-tags", "goolm", "-o", bin, "./cmd/sealbridge")
	build.Dir = filepath.Join(sourceDir(), "..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err = build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building sealbridge: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// ProvisionLogin logs userID in to network with nick (flow "nick") through bridgev2's provisioning
// API, authenticated with the config's provisioning.shared_secret, as an integration would.
func (b *Bridge) ProvisionLogin(ctx context.Context, configPath, userID, network, nick string) error {
	cfg, err := ReadYAML(configPath)
	if err != nil {
		return err
	}
	secret, _ := GetYAML(cfg, "provisioning", "shared_secret").(string)
	provision := func(path string, body, v any) error {
		data, _ := json.Marshal(body)
		if body == nil {
			data = []byte("{}")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.AppserviceURL+"/_matrix/provision/v3/"+path+"?user_id="+url.QueryEscape(userID), bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("provisioning %s for %s: HTTP %d: %s", path, userID, resp.StatusCode, out)
		}
		return json.Unmarshal(out, v)
	}
	var step struct {
		LoginID string `json:"login_id"`
		StepID  string `json:"step_id"`
	}
	if err := provision("login/start/nick", nil, &step); err != nil {
		return err
	}
	var done struct {
		Type string `json:"type"`
	}
	if err := provision("login/step/"+step.LoginID+"/"+step.StepID+"/user_input", map[string]string{"network": network, "nick": nick}, &done); err != nil {
		return err
	}
	if done.Type != "complete" {
		return fmt.Errorf("login of %s ended with step %q", userID, done.Type)
	}
	return nil
}

// Pid is the bridge process's ID.
func (b *Bridge) Pid() int { return b.proc.Process.Pid }

// CPU is the CPU time the bridge process has used so far.
func (b *Bridge) CPU() (time.Duration, error) { return ProcessCPU(b.Pid()) }
