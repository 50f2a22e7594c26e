package irc

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// Labeled responses (https://ircv3.net/specs/extensions/labeled-response): a command sent with a
// label tag gets the server's whole response tagged with that label: one line (the echo of a
// PRIVMSG, an error numeric, or ACK when there is nothing else to say) or a labeled-response
// BATCH. SendWith's Reply receives those lines; the lines still reach the Handler as usual.

// ErrUnconfirmed means the server never answered a labeled command: the connection ended first,
// or labelTimeout passed. The command may or may not have taken effect.
var ErrUnconfirmed = errors.New("irc: the server did not confirm the command")

// labelTimeout bounds the wait for a labeled response.
var labelTimeout = 2 * time.Minute

// ReplyFunc receives the server's response to a labeled command, or ErrUnconfirmed. It runs on the
// connection's reader goroutine (or a timer's); it must not block.
type ReplyFunc func(lines []*ircmsg.Message, err error)

// labels tracks one session's labeled commands awaiting their response.
type labels struct {
	// maxLines bounds the lines kept per response (Config.MaxBatchLines); limited is told of the
	// lines dropped beyond it.
	maxLines int
	limited  func(string)

	mu      sync.Mutex
	next    uint64
	waiting map[string]*labelWait // by label
	batches map[string]string     // label by the reference of an open labeled-response batch
}

type labelWait struct {
	reply ReplyFunc
	lines []*ircmsg.Message
	timer *time.Timer
	// refused is set once a kept line is a refusal.
	refused bool
}

// add registers a reply and returns the label to send.
func (ls *labels) add(reply ReplyFunc) string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.waiting == nil {
		ls.waiting = map[string]*labelWait{}
		ls.batches = map[string]string{}
	}
	ls.next++
	label := "sb" + strconv.FormatUint(ls.next, 36)
	w := &labelWait{reply: reply}
	ls.waiting[label] = w
	w.timer = time.AfterFunc(labelTimeout, func() { ls.finish(label, nil, ErrUnconfirmed) })
	return label
}

// drop forgets a label whose line was never sent.
func (ls *labels) drop(label string) {
	ls.mu.Lock()
	w := ls.waiting[label]
	delete(ls.waiting, label)
	ls.mu.Unlock()
	if w != nil {
		w.timer.Stop()
	}
}

// finish completes a label's wait once.
func (ls *labels) finish(label string, lines []*ircmsg.Message, err error) {
	ls.mu.Lock()
	w := ls.waiting[label]
	delete(ls.waiting, label)
	ls.mu.Unlock()
	if w == nil {
		return
	}
	w.timer.Stop()
	w.reply(lines, err)
}

// observe looks at a line from the server for labeled responses.
func (ls *labels) observe(msg *ircmsg.Message) {
	if msg.Command == "BATCH" && len(msg.Params) > 0 && strings.HasPrefix(msg.Params[0], "-") {
		ls.mu.Lock()
		label, ok := ls.batches[msg.Params[0][1:]]
		delete(ls.batches, msg.Params[0][1:])
		var lines []*ircmsg.Message
		if w := ls.waiting[label]; ok && w != nil {
			lines = w.lines
		}
		ls.mu.Unlock()
		if ok {
			ls.finish(label, lines, nil)
		}
		return
	}
	if ok, ref := msg.GetTag("batch"); ok {
		dropped := false
		ls.mu.Lock()
		if label, open := ls.batches[ref]; open {
			if w := ls.waiting[label]; w != nil {
				dropped = !w.keep(msg, ls.maxLines)
			}
		}
		ls.mu.Unlock()
		if dropped && ls.limited != nil {
			ls.limited(LimitBatch)
		}
	}
	ok, label := msg.GetTag("label")
	if !ok {
		return
	}
	if msg.Command == "BATCH" && len(msg.Params) > 1 && strings.HasPrefix(msg.Params[0], "+") && msg.Params[1] == "labeled-response" {
		ls.mu.Lock()
		if ls.waiting[label] != nil {
			ls.batches[msg.Params[0][1:]] = label
		}
		ls.mu.Unlock()
		return
	}
	ls.finish(label, []*ircmsg.Message{msg}, nil)
}

// keep collects a line of a labeled batch, up to max; beyond it only the first refusal is kept (it
// is what ReplyError looks for). It reports whether msg was kept.
func (w *labelWait) keep(msg *ircmsg.Message, max int) bool {
	refusal := msg.Command == "FAIL" || isErrorNumeric(msg.Command)
	switch {
	case max <= 0 || len(w.lines) < max:
		w.lines = append(w.lines, msg)
	case refusal && !w.refused:
		w.lines[len(w.lines)-1] = msg
	default:
		return false
	}
	w.refused = w.refused || refusal
	return true
}

// failAll ends every wait with ErrUnconfirmed (the connection is gone).
func (ls *labels) failAll() {
	ls.mu.Lock()
	waiting := ls.waiting
	ls.waiting, ls.batches = nil, nil
	ls.mu.Unlock()
	for _, w := range waiting {
		w.timer.Stop()
		w.reply(nil, ErrUnconfirmed)
	}
}

// ReplyError is the server's refusal in a labeled response (an error numeric or FAIL), or nil when
// the response shows the command went through.
func ReplyError(lines []*ircmsg.Message) error {
	for _, m := range lines {
		if m.Command == "FAIL" || isErrorNumeric(m.Command) {
			text := m.Command
			if len(m.Params) > 0 {
				text = m.Params[len(m.Params)-1]
			}
			return &ServerRefusal{Command: m.Command, Text: text}
		}
	}
	return nil
}

// ServerRefusal is an error numeric or FAIL answering a command.
type ServerRefusal struct {
	Command string // the numeric, or FAIL
	Text    string // the server's human-readable text
}

func (e *ServerRefusal) Error() string { return e.Text + " (" + e.Command + ")" }

// isErrorNumeric reports whether command is a numeric in the error ranges (4xx, 5xx) or one of the
// later error numerics that fall outside them.
func isErrorNumeric(command string) bool {
	if len(command) != 3 {
		return false
	}
	n, err := strconv.Atoi(command)
	if err != nil {
		return false
	}
	switch {
	case n >= 400 && n < 600:
		return true
	case n == 723 || n == 734: // ERR_NOPRIVS, ERR_MONLISTFULL
		return true
	}
	return false
}
