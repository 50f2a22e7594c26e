//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/test/stack"
)

// bridgeBinary is built once per test run (or taken from SEALBRIDGE_BIN).
var bridgeBinary string

func TestMain(m *testing.M) {
	code := func() int {
		bin := os.Getenv("SEALBRIDGE_BIN")
		if bin == "" {
			dir, err := os.MkdirTemp("", "sealbridge-e2e-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			bin = filepath.Join(dir, "sealbridge")
			build := exec.Command("go", "build", "-tags", "goolm", "-o", bin, "../../cmd/sealbridge")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err = build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building sealbridge:", err)
				return 1
			}
		}
		bridgeBinary = bin
		return m.Run()
	}()
	os.Exit(code)
}

// bridgeProc is a running sealbridge.
type bridgeProc struct {
	cmd     *exec.Cmd
	logPath string
	dir     string
	botMXID string
	done    chan struct{}
}

// bridgeSetup names what the bridge config points at.
type bridgeSetup struct {
	dir        string
	hsURL      string
	serverName string
	dbType     string
	dbURI      string
	ircAddr    string
	ircPort    int
	ircCA      string
}

// writeBridgeConfig writes the example config with `sealbridge -e`, points it at the test stack and
// writes the registration with `sealbridge -g`, exactly as an admin would.
func writeBridgeConfig(t *testing.T, s bridgeSetup) (configPath, registrationPath string) {
	t.Helper()
	configPath = filepath.Join(s.dir, "config.yaml")
	registrationPath = filepath.Join(s.dir, "registration.yaml")
	run(t, s.dir, bridgeBinary, "-e", "-c", configPath)
	var cfg map[string]any
	readYAML(t, configPath, &cfg)
	asPort, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	set(cfg, s.hsURL, "homeserver", "address")
	set(cfg, s.serverName, "homeserver", "domain")
	set(cfg, fmt.Sprintf("http://127.0.0.1:%d", asPort), "appservice", "address")
	set(cfg, "127.0.0.1", "appservice", "hostname")
	set(cfg, asPort, "appservice", "port")
	set(cfg, s.dbType, "database", "type")
	set(cfg, s.dbURI, "database", "uri")
	set(cfg, map[string]any{"*": "relay", s.serverName: "user", "@admin:" + s.serverName: "admin"}, "bridge", "permissions")
	set(cfg, map[string]any{
		"min_level": "debug",
		"writers":   []any{map[string]any{"type": "stdout", "format": "json"}},
	}, "logging")
	set(cfg, map[string]any{
		"testnet": map[string]any{
			"name":        "Test IRC",
			"address":     s.ircAddr,
			"port":        s.ircPort,
			"tls":         true,
			"tls_ca_file": s.ircCA,
			"reconnect":   map[string]any{"min_delay": "1s", "max_delay": "10s"},
		},
	}, "network", "networks")
	writeYAML(t, configPath, cfg)
	run(t, s.dir, bridgeBinary, "-g", "-c", configPath, "-r", registrationPath)
	return configPath, registrationPath
}

// startBridge runs the bridge against a homeserver that already has its registration.
func startBridge(t *testing.T, dir, configPath string) *bridgeProc {
	t.Helper()
	var cfg map[string]any
	readYAML(t, configPath, &cfg)
	bot := get(cfg, "appservice", "bot", "username").(string)
	domain := get(cfg, "homeserver", "domain").(string)
	logPath := filepath.Join(dir, "bridge.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bridgeBinary, "-c", configPath, "-r", filepath.Join(dir, "registration.yaml"), "--ignore-unsupported-server", "-n")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err = cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bridgeProc{cmd: cmd, logPath: logPath, dir: dir, botMXID: "@" + bot + ":" + domain, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(b.done) }()
	t.Cleanup(func() { b.stop(t) })
	// Ready once the appservice's HTTP server listens and the bot has synced its crypto.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			t.Fatalf("the bridge exited during startup:\n%s", tail(logPath, 40))
		default:
		}
		if strings.Contains(readFile(logPath), "Bridge started") {
			return b
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the bridge did not start within 90s:\n%s", tail(logPath, 40))
	return nil
}

func (b *bridgeProc) stop(t *testing.T) {
	select {
	case <-b.done:
		return
	default:
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
}

// ircUser is an IRC test user: the engine against the real server, recording everything it hears.
type ircUser struct {
	c    *irc.Client
	mu   sync.Mutex
	msgs []*ircmsg.Message
	more chan struct{}
}

func newIRCUser(t *testing.T, ctx context.Context, ircd *stack.IRC, nick string) *ircUser {
	t.Helper()
	u := &ircUser{more: make(chan struct{})}
	u.c = irc.New(irc.Config{Addr: ircd.Addr(), Nick: nick, Flood: irc.FloodConfig{Burst: 20, LinesPerSecond: 20}}, u, zerolog.Nop())
	if err := u.c.Connect(ctx); err != nil {
		t.Fatalf("IRC user %s cannot connect: %v", nick, err)
	}
	t.Cleanup(func() { _ = u.c.Close() })
	return u
}

func (u *ircUser) OnConnected(*irc.Client)                 {}
func (u *ircUser) OnDisconnected(*irc.Client, error, bool) {}
func (u *ircUser) OnMessage(_ *irc.Client, msg *ircmsg.Message, _ time.Time) {
	u.mu.Lock()
	u.msgs = append(u.msgs, msg)
	close(u.more)
	u.more = make(chan struct{})
	u.mu.Unlock()
}

// waitFor returns the first message (heard so far or later) that matches.
func (u *ircUser) waitFor(t *testing.T, what string, timeout time.Duration, match func(*ircmsg.Message) bool) *ircmsg.Message {
	t.Helper()
	deadline := time.After(timeout)
	i := 0
	for {
		u.mu.Lock()
		for ; i < len(u.msgs); i++ {
			if match(u.msgs[i]) {
				m := u.msgs[i]
				u.mu.Unlock()
				return m
			}
		}
		more := u.more
		u.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("IRC user %s: no %s within %s", u.c.Nick(), what, timeout)
		}
	}
}

func (u *ircUser) send(t *testing.T, command string, params ...string) {
	t.Helper()
	if err := u.c.Send(command, params...); err != nil {
		t.Fatalf("IRC user %s: %s: %v", u.c.Nick(), command, err)
	}
}

func privmsgFrom(nick, target, text string) func(*ircmsg.Message) bool {
	return func(m *ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Nick(), nick) && len(m.Params) == 2 &&
			strings.EqualFold(m.Params[0], target) && m.Params[1] == text
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err = yaml.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err = os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func set(m map[string]any, value any, path ...string) {
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

func get(m map[string]any, path ...string) any {
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

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func tail(path string, n int) string {
	lines := strings.Split(strings.TrimRight(readFile(path), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// infoLines returns the bridge log's lines at info level or above (the log is JSON).
func infoLines(path string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(readFile(path)))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		for _, lvl := range []string{`"level":"info"`, `"level":"warn"`, `"level":"error"`, `"level":"fatal"`} {
			if strings.Contains(line, lvl) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}
