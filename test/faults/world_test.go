//go:build e2e

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
	"github.com/sealbridge/sealbridge/test/stack"
)

const waitLong = 90 * time.Second

// bridgeBinary is built once per test run (or taken from SEALBRIDGE_BIN).
var bridgeBinary string

func TestMain(m *testing.M) { stack.MainWithBridge(m, &bridgeBinary) }

// options shape a world.
type options struct {
	viaSoju bool // the bridge reaches InspIRCd through soju (else directly)
	// flood overrides the bridge's flood control for the network (zero: the bridge's defaults).
	flood irc.FloodConfig
	// ircConf, when set, rewrites InspIRCd's configuration before the bridge connects (REHASH).
	ircConf func(string) string
	// chanHistory, when set, keeps that many lines of the channel's history in InspIRCd (its
	// chanhistory module, channel mode +H), which it replays on every JOIN as a chathistory batch.
	chanHistory int
	// bridgeConf, when set, edits the bridge's config before it starts.
	bridgeConf func(cfg map[string]any)
	// bridgeSendQ, when set, gives the bridge's connection its own InspIRCd connect class (a port
	// of its own) with that hard send queue, e.g. "64K": a bridge that stops reading for long is
	// then killed ("SendQ exceeded"). The peer keeps the stack's class.
	bridgeSendQ string
}

// world is the whole stack with one Matrix user logged in to IRC through the bridge, in an
// encrypted channel portal shared with an IRC peer.
type world struct {
	t        testing.TB
	dir      string
	ircd     *stack.IRC
	ircProxy *proxy // what soju, the peer and (without soju) the bridge dial
	soju     *stack.Soju
	hs       *stack.Dendrite
	hsProxy  *proxy // what the bridge and the Matrix client talk to
	regPath  string
	config   string
	br       *stack.Bridge
	mx       *mxclient.Client
	user     string // the Matrix user's ID
	room     string // the channel portal
	mgmt     string // the Matrix user's management room with the bot
	nick     string // the bridge login's IRC nick
	channel  string
	peer     *peer
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newWorld(t testing.TB, ctx context.Context, name string, o options) *world {
	w := &world{t: t, dir: os.Getenv("SEALBRIDGE_FAULTS_DIR"), channel: "#faults"}
	if w.dir == "" {
		w.dir = t.TempDir()
	}
	w.dir = filepath.Join(w.dir, t.Name(), name)
	must(t, os.RemoveAll(w.dir))
	var err error
	w.ircd, err = stack.StartIRC(ctx, filepath.Join(w.dir, "irc"))
	must(t, err)
	t.Cleanup(w.stop)
	if o.chanHistory > 0 {
		lines := fmt.Sprintf(`maxlines="%d"`, o.chanHistory)
		edit := o.ircConf
		o.ircConf = func(conf string) string {
			if edit != nil {
				conf = edit(conf)
			}
			return strings.Replace(conf, `maxlines="50"`, lines, 1)
		}
	}
	ircTarget := w.ircd.Addr()
	if o.bridgeSendQ != "" {
		port := freePort(t)
		edit := o.ircConf
		o.ircConf = func(conf string) string {
			if edit != nil {
				conf = edit(conf)
			}
			class := fmt.Sprintf("<bind address=\"127.0.0.1\" port=\"%d\" type=\"clients\">\n"+
				"<connect name=\"bridge\" parent=\"main\" port=\"%d\" hardsendq=\"%s\" softsendq=\"8K\">\n", port, port, o.bridgeSendQ)
			return strings.Replace(conf, `<connect name="main"`, class+`<connect name="main"`, 1)
		}
		ircTarget = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if o.ircConf != nil {
		must(t, rehashIRC(ctx, w.ircd, o.ircConf))
	}
	w.ircProxy, err = newProxy(ircTarget)
	must(t, err)
	bridgeIRC := w.ircProxy.addr
	w.nick = "faultbridge"
	if o.viaSoju {
		// soju dials the proxy, so that it keeps one upstream address across InspIRCd restarts.
		w.soju, err = stack.StartSoju(ctx, filepath.Join(w.dir, "soju"), &stack.IRC{Host: "127.0.0.1", Port: portOf(w.ircProxy.addr)})
		must(t, err)
		bridgeIRC, w.nick = w.soju.Addr(), w.soju.User
	}
	bdir := filepath.Join(w.dir, "bridge")
	must(t, os.MkdirAll(bdir, 0o700))
	w.config, w.regPath, err = stack.WriteBridgeConfig(stack.BridgeSetup{
		Binary: bridgeBinary, Dir: bdir, DBType: "sqlite3-fk-wal",
		DBURI: stack.SQLiteURI(filepath.Join(bdir, "sealbridge.db")), ServerName: "localhost",
		IRCAddr: "127.0.0.1", IRCPort: portOf(bridgeIRC), MetricsListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	})
	must(t, err)
	if o.flood.Burst > 0 {
		must(t, stack.EditYAML(w.config, func(cfg map[string]any) {
			stack.SetYAML(cfg, map[string]any{"burst": o.flood.Burst, "lines_per_second": o.flood.LinesPerSecond},
				"network", "networks", "testnet", "flood")
		}))
	}
	if o.bridgeConf != nil {
		must(t, stack.EditYAML(w.config, o.bridgeConf))
	}
	w.hs, err = stack.StartDendrite(ctx, filepath.Join(w.dir, "dendrite"), w.regPath)
	must(t, err)
	w.hsProxy, err = newProxy(strings.TrimPrefix(w.hs.URL, "http://"))
	must(t, err)
	must(t, stack.SetHomeserver(w.config, "http://"+w.hsProxy.addr, w.hs.ServerName))
	w.startBridge(ctx)

	peerAddr := w.ircProxy.addr
	if o.bridgeSendQ != "" {
		peerAddr = w.ircd.Addr() // the stack's class, not the bridge's
	}
	w.peer = newPeer(peerAddr, "faultpeer", w.channel, w.nick, irc.FloodConfig{Burst: 50, LinesPerSecond: 500})
	must(t, w.peer.connect(ctx))
	if o.chanHistory > 0 {
		must(t, w.peer.client().Send("MODE", w.channel, "+H", fmt.Sprintf("%d:1d", o.chanHistory)))
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		must(t, w.peer.waitLine(c, "MODE +H", func(m *ircmsg.Message) bool {
			return m.Command == "MODE" && len(m.Params) > 1 && m.Params[1] == "+H"
		}))
		cancel()
	}

	w.mx, err = mxclient.New(ctx, filepath.Join(w.dir, "mxclient.log"))
	must(t, err)
	w.user, _, err = w.mx.Login(ctx, "http://"+w.hsProxy.addr, "alice", "alice-password", true)
	must(t, err)
	mgmt, err := w.mx.CreateDM(ctx, w.br.BotMXID)
	w.mgmt = mgmt
	must(t, err)
	w.waitEvent(ctx, "the bot joining the DM", mxclient.Membership(mgmt, w.br.BotMXID, "join"))
	login := "login nick testnet " + w.nick
	if o.viaSoju {
		login = fmt.Sprintf("login sasl testnet %s %s %s", w.nick, w.soju.LoginName(), w.soju.Password)
	}
	_, err = w.mx.Send(ctx, mgmt, "m.text", login, "")
	must(t, err)
	w.waitEvent(ctx, "the bot confirming the login", func(e mxclient.Event) bool {
		return e.RoomID == mgmt && e.Sender == w.br.BotMXID && strings.Contains(e.Body(), "Connected to")
	})
	_, err = w.mx.Send(ctx, mgmt, "m.text", "join "+w.channel, "")
	must(t, err)
	w.room = w.waitEvent(ctx, "the channel portal", func(e mxclient.Event) bool {
		n, _ := e.Content["name"].(string)
		return e.Type == "m.room.name" && strings.EqualFold(n, w.channel)
	}).RoomID
	// Like a person, talk once the portal has shown its notice (the keys are then in place).
	w.waitEvent(ctx, "the portal's notice", func(e mxclient.Event) bool {
		return e.RoomID == w.room && e.Sender == w.br.BotMXID && e.MsgType() == "m.notice"
	})
	return w
}

// stop stops everything the world started, whatever got started; safe to call twice.
func (w *world) stop() {
	if w.mx != nil {
		w.mx.Close()
	}
	if w.peer != nil {
		w.peer.close()
	}
	if w.br != nil {
		w.br.Stop()
	}
	for _, p := range []*proxy{w.hsProxy, w.ircProxy} {
		if p != nil {
			p.Down()
		}
	}
	if w.hs != nil {
		w.hs.Stop()
	}
	if w.soju != nil {
		w.soju.Stop()
	}
	w.ircd.Stop()
}

func (w *world) startBridge(ctx context.Context) {
	var err error
	w.br, err = stack.StartBridge(ctx, bridgeBinary, w.config)
	must(w.t, err)
}

func (w *world) waitEvent(ctx context.Context, what string, match func(mxclient.Event) bool) mxclient.Event {
	w.t.Helper()
	return w.waitEventFrom(ctx, 0, what, match)
}

// waitEventFrom is waitEvent among the events from index from on.
func (w *world) waitEventFrom(ctx context.Context, from int, what string, match func(mxclient.Event) bool) mxclient.Event {
	w.t.Helper()
	c, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	ev, err := w.mx.WaitEventFrom(c, from, match)
	if err != nil {
		w.t.Fatalf("no %s: %v\nbridge log:\n%s\nMatrix client log:\n%s", what, err, tailFile(w.br.LogPath, 30), tailFile(filepath.Join(w.dir, "mxclient.log"), 40))
	}
	return ev
}

// rehashIRC rewrites InspIRCd's configuration through edit and reloads it (OPER + REHASH).
func rehashIRC(ctx context.Context, ircd *stack.IRC, edit func(string) string) error {
	path := filepath.Join(ircd.Dir, "inspircd.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(edit(string(data))), 0o644); err != nil {
		return err
	}
	p := newPeer(ircd.Addr(), "rehasher", "#rehash", "", irc.FloodConfig{Burst: 10, LinesPerSecond: 10})
	if err := p.connect(ctx); err != nil {
		return err
	}
	defer p.close()
	c := p.client()
	if err := c.Send("OPER", ircd.OperName, ircd.OperPassword); err != nil {
		return err
	}
	if err := c.Send("REHASH"); err != nil {
		return err
	}
	c2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.waitLine(c2, "REHASH reply (382)", func(m *ircmsg.Message) bool { return m.Command == "382" })
}

func portOf(addr string) int {
	var port int
	_, _ = fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port)
	return port
}

func freePort(t testing.TB) int {
	port, err := stack.FreePort()
	must(t, err)
	return port
}

func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readAll(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
