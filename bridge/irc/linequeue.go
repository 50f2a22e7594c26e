package irc

import "sync"

// lineQueue is a bounded FIFO of outgoing lines that grows only as far as it is used. A buffered
// channel of the full bound would reserve its memory for every connection (about 350 KiB each at
// 10,000 lines), which an idle login never needs; this starts empty and gives memory back once
// drained. ready holds a token whenever lines may be waiting, for the writer's select.
type lineQueue struct {
	mu    sync.Mutex
	lines []outLine
	limit int
	ready chan struct{}
}

func newLineQueue(limit int) *lineQueue {
	return &lineQueue{limit: limit, ready: make(chan struct{}, 1)}
}

func (q *lineQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// push appends l, or reports false when the queue holds limit lines already.
func (q *lineQueue) push(l outLine) bool {
	q.mu.Lock()
	if len(q.lines) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.lines = append(q.lines, l)
	q.mu.Unlock()
	q.signal()
	return true
}

// pop takes the oldest line, if any.
func (q *lineQueue) pop() (outLine, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.lines) == 0 {
		return outLine{}, false
	}
	l := q.lines[0]
	q.lines[0] = outLine{}
	q.lines = q.lines[1:]
	if len(q.lines) == 0 {
		q.lines = nil // let the backing array go
	} else {
		q.signal()
	}
	return l, true
}

func (q *lineQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.lines)
}
