package irc

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircreader"
	"github.com/rs/zerolog"
)

// session is one connection: its socket, its queues, its reader goroutine and, while it has lines
// to write, its writer goroutine.
type session struct {
	c    *Client // its cfg never changes after New: the session reads it there
	conn net.Conn
	log  zerolog.Logger

	prio, queue *lineQueue
	bucket      *bucket // flood control, used by the writer
	writer      writerState
	// stop is closed when the reader ends; the writer then ends.
	stop chan struct{}
	// done is closed after the session is fully torn down; err is set.
	done chan struct{}
	err  error
	// endMu guards ended (set once done is closed) and onEnd, which the reader calls then: the
	// connection loop's next step (Client.watch).
	endMu sync.Mutex
	ended bool
	onEnd func()
	// regResult receives exactly one value: nil once registered, or the
	// registration error.
	regResult    chan error
	registeredAt time.Time
	// quitting is set when we close the session on purpose.
	quitting atomic.Bool
	// labels are the labeled commands awaiting their response (labels.go).
	labels labels

	// Owned by the reader goroutine.
	reg *registration
	// identifyEcho is the text of the IDENTIFY sent to NickServ, whose echo (echo-message) the
	// reader drops.
	identifyEcho    string
	pingOutstanding bool
	lastError       string
}

func newSession(c *Client, conn net.Conn, fallback bool) *session {
	s := &session{
		c:         c,
		conn:      conn,
		log:       c.log,
		prio:      newLineQueue(priorityQueueSize),
		queue:     newLineQueue(sendQueueSize),
		bucket:    newBucket(c.cfg.Flood, time.Now()),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		regResult: make(chan error, 1),
		labels:    labels{maxLines: c.cfg.MaxBatchLines, limited: c.cfg.Limited},
	}
	s.reg = &registration{s: s, c: c, fallback: fallback, offered: map[string]string{}, refused: map[string]bool{}}
	return s
}

// sendNow serialises a protocol line and puts it on the priority queue.
func (s *session) sendNow(command string, params ...string) error {
	line, err := encodeLine(nil, command, params, 0)
	if err != nil {
		return err
	}
	return s.enqueue(outLine{data: line, redact: carriesSecret(command, params)}, true)
}

// sendSecret is sendNow for a line that carries a secret anywhere (never traced).
func (s *session) sendSecret(command string, params ...string) error {
	line, err := encodeLine(nil, command, params, 0)
	if err != nil {
		return err
	}
	return s.enqueue(outLine{data: line, redact: true}, true)
}

// run is the reader goroutine: it reads the session's lines, then goes on with the connection
// loop (onEnd) once the reader's frames are off its stack. The loop reports the disconnection and
// may wait a long while for its turn to reconnect; parked there under the reader's 568-byte frame,
// a goroutine whose stack had grown could not shrink it (Go halves a stack only while less than
// a quarter of it is in use).
func (s *session) run() {
	if onEnd := s.readLoop(); onEnd != nil {
		onEnd()
	}
}

// readLoop reads and dispatches lines until the connection ends, tears the session down, and
// returns what waits for its end (onEnd), if anything.
func (s *session) readLoop() func() {
	r := ircreader.NewIRCReader(s.conn)
	registered := false
	var err error
	for {
		if registered {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.c.cfg.PingInterval))
		}
		raw, rerr := r.ReadLine()
		if rerr != nil {
			var ne net.Error
			if registered && errors.As(rerr, &ne) && ne.Timeout() && !s.quitting.Load() {
				if s.pingOutstanding {
					err = ErrPingTimeout
					break
				}
				s.pingOutstanding = true
				_ = s.sendNow("PING", "sealbridge")
				continue
			}
			err = rerr
			if s.lastError != "" {
				err = fmt.Errorf("%w: %s", ErrServerError, s.lastError)
			}
			break
		}
		s.pingOutstanding = false
		msg, perr := ircmsg.ParseLineStrict(string(raw), false, 0)
		if perr != nil {
			if !errors.Is(perr, ircmsg.ErrorLineIsEmpty) {
				s.log.Debug().Err(perr).Msg("Ignoring unparseable IRC line")
			}
			continue
		}
		if s.isIdentifyEcho(&msg) {
			continue // the echo-message copy of our NickServ IDENTIFY: never logged, never bridged
		}
		if e := s.log.Trace(); e.Enabled() {
			if msg.Command == "AUTHENTICATE" {
				e.Str("line", "<redacted>").Msg("Received IRC line")
			} else {
				e.Bytes("line", raw).Msg("Received IRC line")
			}
		}
		if msg.Command == "PING" {
			_ = s.sendNow("PONG", msg.Params...)
		}
		s.track(&msg)
		if !registered {
			done, regErr := s.reg.handle(&msg)
			if regErr != nil {
				err = regErr
				_ = s.sendNow("QUIT")
				break
			}
			if done {
				registered = true
				s.c.onRegistered(s)
				s.regResult <- nil
			}
			continue
		}
		s.handle(&msg)
		s.labels.observe(&msg)
		s.c.h.OnMessage(s.c, &msg, messageTime(&msg))
	}
	if !registered {
		// Give the writer a moment to flush QUIT after a refusal.
		if err != nil && !s.quitting.Load() {
			s.flushPriority(200 * time.Millisecond)
		}
	}
	_ = s.conn.Close()
	close(s.stop)
	// Lines never written go back to their senders (SendOptions.Unsent) before the labels of the
	// written ones are failed as unconfirmed.
	s.stopWriter()
	s.discardQueue()
	s.labels.failAll()
	if s.quitting.Load() {
		err = nil
	}
	if !registered {
		if err == nil {
			err = ErrClosed
		} else if !isRegError(err) {
			err = fmt.Errorf("irc: connection lost during registration: %w", err)
		}
		s.regResult <- err
	}
	s.err = err
	s.c.sessionEnded(s, registered)
	close(s.done)
	s.endMu.Lock()
	s.ended = true
	onEnd := s.onEnd
	s.endMu.Unlock()
	return onEnd
}

func isRegError(err error) bool {
	return IsFatal(err) || errors.Is(err, ErrNickInUse) || errors.Is(err, ErrServerError) || errors.Is(err, ErrClosed)
}

// flushPriority waits until the priority queue is empty or d passes.
func (s *session) flushPriority(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.prio.len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
}

// messageTime returns the server-time tag of msg, or now.
func messageTime(msg *ircmsg.Message) time.Time {
	// https://ircv3.net/specs/extensions/server-time
	if ok, v := msg.GetTag("time"); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return time.Now()
}

// handle processes a line after registration, before it reaches the
// handler.
func (s *session) handle(msg *ircmsg.Message) {
	switch msg.Command {
	case "CAP":
		s.reg.handleCapAfterRegistration(msg)
	case ircevent.RPL_ISUPPORT:
		if len(msg.Params) > 2 {
			s.c.applyISupport(msg.Params[1 : len(msg.Params)-1])
		}
	case "ERROR":
		if len(msg.Params) > 0 {
			s.lastError = msg.Params[len(msg.Params)-1]
		} else {
			s.lastError = "ERROR"
		}
	}
}

// track follows our own nick and user@host.
func (s *session) track(msg *ircmsg.Message) {
	c := s.c
	switch msg.Command {
	case ircevent.RPL_WELCOME:
		if len(msg.Params) > 0 {
			c.setNick(msg.Params[0])
			// "Welcome to the Network, nick!user@host"
			if len(msg.Params) > 1 {
				text := msg.Params[len(msg.Params)-1]
				if i := strings.LastIndexByte(text, ' '); i >= 0 {
					if nuh, err := ircmsg.ParseNUH(text[i+1:]); err == nil && nuh.User != "" && nuh.Host != "" && c.isMe(nuh.Name) {
						c.setUserHost(nuh.User, nuh.Host)
					}
				}
			}
		}
		return
	case RPL_HOSTHIDDEN: // <nick> <host> :is now your displayed host
		if len(msg.Params) > 2 {
			c.setUserHost("", msg.Params[1])
		}
		return
	case ircevent.RPL_WHOREPLY: // <me> <channel> <user> <host> <server> <nick> ...
		if len(msg.Params) > 5 && c.isMe(msg.Params[5]) {
			c.setUserHost(msg.Params[2], msg.Params[3])
		}
		return
	}
	if msg.Source == "" {
		return
	}
	nuh, err := msg.NUH()
	if err != nil || !c.isMe(nuh.Name) {
		return
	}
	if nuh.User != "" && nuh.Host != "" {
		c.setUserHost(nuh.User, nuh.Host)
	}
	switch msg.Command {
	case "NICK":
		if len(msg.Params) > 0 && msg.Params[0] != "" {
			c.setNick(msg.Params[0])
		}
	case "CHGHOST":
		if len(msg.Params) > 1 {
			c.setUserHost(msg.Params[0], msg.Params[1])
		}
	}
}

// isIdentifyEcho reports (once) whether msg is the server's echo of our IDENTIFY to NickServ.
func (s *session) isIdentifyEcho(msg *ircmsg.Message) bool {
	if s.identifyEcho == "" || msg.Command != "PRIVMSG" || len(msg.Params) != 2 ||
		!strings.EqualFold(msg.Params[0], "NickServ") || msg.Params[1] != s.identifyEcho {
		return false
	}
	s.identifyEcho = ""
	return true
}
