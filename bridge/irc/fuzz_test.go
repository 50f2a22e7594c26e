package irc

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircreader"

	"github.com/sealbridge/sealbridge/internal/ircfake"
)

// recordingConn passes every Write on to a channel as well.
type recordingConn struct {
	net.Conn
	writes chan []byte
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.writes <- append([]byte(nil), b...)
	return r.Conn.Write(b)
}

// FuzzSend sends arbitrary commands and parameters through a connected
// client: either Send refuses, or the bytes written to the socket are one
// line, ending in its only CRLF, without NUL, at most 512 bytes, which
// parses back to the same command and parameters.
func FuzzSend(f *testing.F) {
	f.Add("PRIVMSG", "#chan", "hello world", "")
	f.Add("PRIVMSG", "#chan", "evil\r\nQUIT :bye", "")
	f.Add("JOIN", "#a\nPRIVMSG #b :x", "", "")
	f.Add("PRIVMSG", "#a b", ":x", "+reply")
	f.Add("NOTICE", "", "x\x00y", "")
	f.Add("PRIVMSG", "#c", strings.Repeat("é", 300), "a\\b;c d")
	f.Add("PRIV\rMSG", "x", "y", "")
	f.Add("TOPIC", ":x", "", "\r\n")

	srv := newFakeServer(f)
	writes := make(chan []byte, 64)
	cfg := testConfig(srv)
	cfg.Flood = FloodConfig{Burst: 1 << 30, LinesPerSecond: 1e9}
	cfg.PingInterval = time.Hour // the fake server stays silent: no keepalive PING in the recorded writes
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &recordingConn{Conn: conn, writes: writes}, nil
	}
	c := New(cfg, nopHandler{}, testLoggerDiscard())
	res := make(chan error, 1)
	go func() { res <- c.Connect(context.Background()) }()
	var sc *ircfake.Conn
	select {
	case fc := <-srv.conns:
		sc = fc.conn
	case <-time.After(testTimeout):
		f.Fatal("no connection")
	}
	defer sc.Close()
	defer c.Close()
	for i := 0; i < 4; i++ { // PASS-less opening: CAP LS, NICK, USER ... CAP END
		if _, err := sc.ReadLine(); err != nil {
			f.Fatal(err)
		}
		if i == 2 {
			_ = sc.Send(":s CAP * LS :")
		}
	}
	_ = sc.Send(":s 001 bridge :hi", ":s 376 bridge :end")
	if err := <-res; err != nil {
		f.Fatal(err)
	}
	for len(writes) > 0 {
		<-writes
	}
	// Keep reading so the socket never fills up.
	go func() {
		for {
			if _, err := sc.ReadLine(); err != nil {
				return
			}
		}
	}()

	f.Fuzz(func(t *testing.T, command, p1, p2, tagValue string) {
		params := []string{p1, p2}
		if p2 == "" {
			params = params[:1]
		}
		var err error
		if tagValue != "" {
			err = c.SendTagged(map[string]string{"+draft/reply": tagValue}, command, params...)
		} else {
			err = c.Send(command, params...)
		}
		if err != nil {
			select {
			case b := <-writes:
				t.Fatalf("refused send wrote %q", b)
			default:
			}
			return
		}
		var b []byte
		select {
		case b = <-writes:
		case <-time.After(testTimeout):
			t.Fatal("nothing written")
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) || bytes.Count(b, []byte("\n")) != 1 || bytes.Count(b, []byte("\r")) != 1 || bytes.IndexByte(b, 0) >= 0 {
			t.Fatalf("bad line %q", b)
		}
		body := b
		if body[0] == '@' {
			body = body[bytes.IndexByte(body, ' ')+1:]
		}
		if len(body) > 512 {
			t.Fatalf("line of %d bytes", len(body))
		}
		msg, perr := ircmsg.ParseLine(string(b))
		if perr != nil {
			t.Fatalf("unparseable %q: %v", b, perr)
		}
		if msg.Command != strings.ToUpper(command) || strings.Join(msg.Params, "\x00") != strings.Join(params, "\x00") {
			t.Fatalf("sent %q %q, wrote %q", command, params, b)
		}
		if tagValue != "" {
			if _, v := msg.GetTag("+draft/reply"); v != tagValue {
				t.Fatalf("tag %q became %q", tagValue, v)
			}
		}
	})
}

// FuzzParseLine feeds arbitrary bytes to the reader path: ircreader,
// ircmsg.ParseLineStrict, our tracking and ISUPPORT/CAP handling, and
// checkLine. None may panic.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"PING :x",
		"@time=2021-01-01T00:00:00Z;+a=b\\sc :nick!user@host PRIVMSG #chan :hi",
		":s 005 me CASEMAPPING=ascii PREFIX=(ov)@+ -NETWORK NETWORK=a\\x20b :x",
		":s CAP * LS * :sasl=PLAIN multi-prefix",
		":s CAP me NEW :away-notify",
		":s 352 me #c u h s me H :0 r",
		":me!u@h NICK new",
		"@",
		":",
		"\x00\r\n",
		":s 001",
	} {
		f.Add([]byte(s))
	}
	// One client and session per worker, reset for each input: a session's
	// queues are large and allocating them per input starves the fuzzer.
	c := New(Config{Addr: "x:1", Nick: "me"}, nopHandler{}, testLoggerDiscard())
	s := newSession(c, nil, true)
	// The session has no socket: lines the registration queues are popped below, never written,
	// so no writer may start.
	s.writer.stopped = true
	f.Fuzz(func(t *testing.T, data []byte) {
		c.mu.Lock()
		c.nick, c.user, c.host = "me", "", ""
		c.isupport = defaultISupport()
		c.caps, c.offered = map[string]string{}, map[string]string{}
		c.mu.Unlock()
		s.reg = &registration{s: s, c: c, fallback: true, offered: map[string]string{}, refused: map[string]bool{}}
		for s.prio.len() > 0 {
			s.prio.pop()
		}
		r := ircreader.NewIRCReader(bytes.NewReader(data))
		for {
			line, err := r.ReadLine()
			if err != nil {
				break
			}
			msg, err := ircmsg.ParseLineStrict(string(line), false, 0)
			if err != nil {
				continue
			}
			_ = messageTime(&msg)
			s.track(&msg)
			if msg.Command == "005" && len(msg.Params) > 2 {
				c.applyISupport(msg.Params[1 : len(msg.Params)-1])
			}
			if msg.Command == "CAP" {
				_ = s.reg.handleCap(&msg)
			}
			_ = c.Casefold(msg.Source)
			_ = c.MaxTextBytes(msg.Command, msg.Source)
		}
		_ = checkLine(data)
	})
}

type nopHandler struct{}

func (nopHandler) OnConnected(*Client)                           {}
func (nopHandler) OnMessage(*Client, *ircmsg.Message, time.Time) {}
func (nopHandler) OnDisconnected(*Client, error, bool)           {}
