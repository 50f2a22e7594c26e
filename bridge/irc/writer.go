package irc

import (
	"strings"
	"sync"
	"time"
)

const (
	sendQueueSize     = 10000
	priorityQueueSize = 1000
	writeTimeout      = 30 * time.Second
)

// outLine is one serialised line waiting for the writer.
type outLine struct {
	data []byte
	// redact hides the line from trace logs (carriesSecret).
	redact bool
	// written, if set, runs once the line is on the socket (never if the connection ends first);
	// unsent, if set, runs instead when the connection ends with the line not written, and then
	// the line's label (labeled-response) is dropped without its reply being called.
	written func()
	unsent  func()
	label   string
}

// bucket is a token bucket: burst tokens, refilled at rate per second.
type bucket struct {
	tokens, burst, rate float64
	last                time.Time
}

func newBucket(cfg FloodConfig, now time.Time) *bucket {
	return &bucket{tokens: float64(cfg.Burst), burst: float64(cfg.Burst), rate: cfg.LinesPerSecond, last: now}
}

// take takes one token and returns 0, or returns how long to wait until one
// is available.
func (b *bucket) take(now time.Time) time.Duration {
	if now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return wait
}

// bypassesFlood reports whether command is a protocol reply that skips the
// queue and the bucket.
func bypassesFlood(command string) bool {
	switch command {
	case "PONG", "PING", "CAP", "AUTHENTICATE", "QUIT":
		return true
	}
	return false
}

// enqueue queues a line for the writer without blocking, and starts the writer if none runs.
func (s *session) enqueue(l outLine, priority bool) error {
	select {
	case <-s.stop:
		return ErrNotConnected
	default:
	}
	q := s.queue
	if priority {
		q = s.prio
	}
	if !q.push(l) {
		return ErrQueueFull
	}
	s.startWriter()
	return nil
}

// writerState says whether a writer goroutine runs. A connection has one only while it has lines
// to write or a paced line waits for its token: an idle login holds no goroutine for writing, which
// at ten thousand logins is ten thousand stacks.
type writerState struct {
	mu sync.Mutex
	// running: a writer goroutine runs (and will look at the queues once more before it ends).
	running bool
	// stopped: the reader has ended the session, or a write failed; no writer starts again.
	stopped bool
	wg      sync.WaitGroup
}

// startWriter starts the writer goroutine unless one runs or the session is over.
func (s *session) startWriter() {
	w := &s.writer
	w.mu.Lock()
	if w.running || w.stopped {
		w.mu.Unlock()
		return
	}
	w.running = true
	w.wg.Add(1)
	w.mu.Unlock()
	go s.writeLoop()
}

// stopWriter keeps any writer from starting again and waits for the one running, if any.
func (s *session) stopWriter() {
	w := &s.writer
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}

// writeLoop is the writer goroutine: it writes until both queues are empty and then ends.
func (s *session) writeLoop() {
	w := &s.writer
	defer w.wg.Done()
	for {
		if !s.writeQueued() {
			w.mu.Lock()
			w.running, w.stopped = false, true
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
		// A line queued after the queues were found empty but before running was cleared started
		// no writer: look once more.
		if s.prio.len() == 0 && s.queue.len() == 0 {
			return
		}
		w.mu.Lock()
		if w.running || w.stopped {
			w.mu.Unlock()
			return
		}
		w.running = true
		w.mu.Unlock()
	}
}

// writeQueued writes what is queued: priority lines at once, normal lines when the bucket allows;
// priority lines keep jumping ahead while a normal line waits for a token. It returns true once
// both queues are empty, false when the connection is over (or its write failed).
func (s *session) writeQueued() bool {
	// held is a normal line taken from the queue and not written yet: if the connection ends
	// meanwhile it goes back to its sender as unsent.
	var held *outLine
	defer func() {
		if held != nil {
			s.discard(*held)
		}
	}()
	// writePrio writes every waiting priority line; false when the connection is gone.
	writePrio := func() bool {
		for {
			p, ok := s.prio.pop()
			if !ok {
				return true
			}
			if !s.write(p) {
				return false
			}
		}
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-s.stop:
			return false
		default:
		}
		if !writePrio() {
			return false
		}
		l, ok := s.queue.pop()
		if !ok {
			return true
		}
		held = &l
		for {
			if !writePrio() { // protocol replies never wait behind a paced line
				return false
			}
			wait := s.bucket.take(time.Now())
			if wait == 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-s.stop:
				return false
			case <-s.prio.ready:
				timer.Stop()
			case <-timer.C:
			}
		}
		if !s.write(l) {
			return false
		}
		held = nil
	}
}

// discard hands a line the connection ended before writing back to its sender (unsent), dropping
// its label quietly: the sender sends it again rather than hear it was unconfirmed.
func (s *session) discard(l outLine) {
	if l.unsent == nil {
		return // its label, if any, is failed as unconfirmed (labels.failAll)
	}
	if l.label != "" {
		s.labels.drop(l.label)
	}
	l.unsent()
}

// discardQueue discards every line still queued, in order (the writer has ended).
func (s *session) discardQueue() {
	for {
		l, ok := s.queue.pop()
		if !ok {
			return
		}
		s.discard(l)
	}
}

// write writes one line after checking it once more; on a write error it
// closes the connection so that the reader ends the session.
func (s *session) write(l outLine) bool {
	if err := checkLine(l.data); err != nil {
		s.log.Error().Err(err).Int("length", len(l.data)).Msg("Dropping malformed outgoing IRC line")
		return true
	}
	if e := s.log.Trace(); e.Enabled() {
		if l.redact {
			e.Str("line", "<redacted>").Msg("Sending IRC line")
		} else {
			e.Bytes("line", l.data[:len(l.data)-2]).Msg("Sending IRC line")
		}
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(l.data); err != nil {
		// Not known to be written (maybe in part): the writer's caller reports it unsent.
		s.log.Debug().Err(err).Msg("Failed to write to IRC server")
		_ = s.conn.Close()
		return false
	}
	if l.written != nil {
		l.written()
	}
	return true
}

// carriesSecret tells whether a line may carry a secret, so that trace logs show it as redacted:
// PASS and AUTHENTICATE, a JOIN with a channel key, and anything said to a services bot
// (NickServ IDENTIFY, ChanServ, ...).
func carriesSecret(command string, params []string) bool {
	switch strings.ToUpper(command) {
	case "PASS", "AUTHENTICATE", "OPER":
		return true
	case "JOIN":
		return len(params) > 1
	case "PRIVMSG", "NOTICE":
		return len(params) > 0 && strings.HasSuffix(strings.ToLower(params[0]), "serv")
	}
	return false
}
