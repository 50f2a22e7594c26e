//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

// bridgeBinary is built once per test run (or taken from SEALBRIDGE_BIN).
var bridgeBinary string

func TestMain(m *testing.M) { stack.MainWithBridge(m, &bridgeBinary) }

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

// messages is a snapshot of everything heard so far.
func (u *ircUser) messages() []*ircmsg.Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*ircmsg.Message(nil), u.msgs...)
}

// waitFor returns the first message (heard so far or later) that matches.
func (u *ircUser) waitFor(t *testing.T, what string, timeout time.Duration, match func(*ircmsg.Message) bool) *ircmsg.Message {
	t.Helper()
	return u.waitForAfter(t, 0, what, timeout, match)
}

// waitForAfter is waitFor ignoring the first skip messages.
func (u *ircUser) waitForAfter(t *testing.T, skip int, what string, timeout time.Duration, match func(*ircmsg.Message) bool) *ircmsg.Message {
	t.Helper()
	deadline := time.After(timeout)
	i := skip
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
			var last []string
			for _, m := range u.messages() {
				if line, err := m.Line(); err == nil {
					last = append(last, strings.TrimSpace(line))
				}
			}
			if len(last) > 15 {
				last = last[len(last)-15:]
			}
			t.Fatalf("IRC user %s: no %s within %s; connected: %v; last lines heard:\n%s", u.c.Nick(), what, timeout, u.c.Connected(), strings.Join(last, "\n"))
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

// keepLogs copies the named logs of a failed test out of its temporary directory, which the test
// removes, into SEALBRIDGE_E2E_KEEP_LOGS when that is set, and says where.
func keepLogs(t *testing.T, paths ...string) {
	root := os.Getenv("SEALBRIDGE_E2E_KEEP_LOGS")
	if root == "" {
		return
	}
	dst := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
		return
	}
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(p)), data, 0o644)
		}
	}
	t.Logf("logs kept in %s", dst)
}

// failureLog is what a failed run prints of the bridge log, so that a failure in CI can be read
// without the files: the last warnings and errors, then the last lines of any level.
func failureLog(path string) string {
	var warns []string
	for _, line := range infoLines(path) {
		if !strings.Contains(line, `"level":"info"`) {
			warns = append(warns, line)
		}
	}
	if len(warns) > 40 {
		warns = warns[len(warns)-40:]
	}
	return "bridge log, last warnings and errors:\n" + strings.Join(warns, "\n") + "\nbridge log, last 60 lines:\n" + tail(path, 60)
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

// botLogin opens a management room with the bridge bot, waits for the bot to join it (homeservers
// send an appservice only the events of rooms its users are in), sends the login command and waits
// for the bot's "Connected to". It returns the management room.
func botLogin(t *testing.T, ctx context.Context, mx *mxclient.Client, botMXID, login string) string {
	t.Helper()
	mgmt, err := mx.CreateDM(ctx, botMXID)
	must(t, err)
	waitMembership(t, mx, mgmt, botMXID, "join")
	_, err = mx.Send(ctx, mgmt, "m.text", login, "")
	must(t, err)
	c, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	if _, err = mx.WaitEvent(c, func(e mxclient.Event) bool {
		return e.RoomID == mgmt && e.Sender == botMXID && strings.Contains(e.Body(), "Connected to")
	}); err != nil {
		t.Fatalf("%s did not connect: %v", strings.Join(strings.Fields(login)[:2], " "), err)
	}
	return mgmt
}
