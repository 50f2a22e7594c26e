package bridge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/status"
)

// stateRecorder is a stateRelay's deliver that records what it is handed, per login.
type stateRecorder struct {
	mu   sync.Mutex
	got  map[*bridgev2.UserLogin][]string
	hold map[*bridgev2.UserLogin]chan struct{} // a delivery to this login waits for the channel
	in   chan *bridgev2.UserLogin              // told when a held delivery starts
}

func newStateRecorder() *stateRecorder {
	return &stateRecorder{got: map[*bridgev2.UserLogin][]string{}, hold: map[*bridgev2.UserLogin]chan struct{}{}, in: make(chan *bridgev2.UserLogin, 16)}
}

func (s *stateRecorder) deliver(login *bridgev2.UserLogin, state status.BridgeState) {
	s.mu.Lock()
	wait := s.hold[login]
	s.mu.Unlock()
	if wait != nil {
		s.in <- login
		<-wait
	}
	s.mu.Lock()
	s.got[login] = append(s.got[login], state.Message)
	s.mu.Unlock()
}

func (s *stateRecorder) of(login *bridgev2.UserLogin) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got[login]...)
}

// waitIdle waits until the relay's goroutine has ended.
func (r *stateRelay) waitIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay goroutine did not end")
		}
	}
}

func relayClient(r *stateRelay) *IRCClient {
	conn := NewConnector()
	conn.states.deliver = r.deliver
	return &IRCClient{connector: conn, login: &bridgev2.UserLogin{}}
}

// States reach bridgev2 in the order each login reported them, from several reporting goroutines,
// and the relay's goroutine ends once nothing is left.
func TestStateRelayKeepsEachLoginsOrder(t *testing.T) {
	rec := newStateRecorder()
	r := &stateRelay{deliver: rec.deliver}
	var clients []*IRCClient
	for range 4 {
		clients = append(clients, &IRCClient{login: &bridgev2.UserLogin{}})
	}
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() {
			for i := range 200 {
				r.send(cl, status.BridgeState{Message: fmt.Sprint(i)})
			}
		})
	}
	wg.Wait()
	r.waitIdle(t)
	for n, cl := range clients {
		got := rec.of(cl.login)
		if len(got) != 200 {
			t.Fatalf("login %d: %d states handed over, want 200", n, len(got))
		}
		for i, msg := range got {
			if msg != fmt.Sprint(i) {
				t.Fatalf("login %d: state %d is %q: out of order", n, i, msg)
			}
		}
	}
	if r.queue != nil {
		t.Errorf("the relay kept its queue's array (%d) after it emptied", cap(r.queue))
	}
	noLogin := &IRCClient{}
	r.send(noLogin, status.BridgeState{Message: "x"}) // a client without a login has no state queue
	r.waitIdle(t)
}

// A forgotten login gets none of its queued or later states, and forget waits for the one being
// handed over to it: bridgev2 destroys the login's state queue right after.
func TestStateRelayForgetsARetiredLogin(t *testing.T) {
	rec := newStateRecorder()
	r := &stateRelay{deliver: rec.deliver}
	a := &IRCClient{login: &bridgev2.UserLogin{}}
	b := &IRCClient{login: &bridgev2.UserLogin{}}
	release := make(chan struct{})
	rec.hold[a.login] = release

	r.send(a, status.BridgeState{Message: "a0"})
	if got := <-rec.in; got != a.login {
		t.Fatal("the held delivery is not a's")
	}
	r.send(a, status.BridgeState{Message: "a1"})
	r.send(b, status.BridgeState{Message: "b0"})
	forgotten := make(chan struct{})
	go func() {
		r.forget(a)
		close(forgotten)
	}()
	select {
	case <-forgotten:
		t.Fatal("forget returned while a state of the login was being handed over")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-forgotten
	r.send(a, status.BridgeState{Message: "a2"})
	r.waitIdle(t)
	if got := rec.of(a.login); len(got) != 1 || got[0] != "a0" {
		t.Errorf("the forgotten login got %q, want only the state handed over before forget", got)
	}
	if got := rec.of(b.login); len(got) != 1 || got[0] != "b0" {
		t.Errorf("the other login got %q, want [b0]", got)
	}
}

// A client reports through its connector's relay, and a retired client reports nothing more.
func TestRetiredClientReportsNoState(t *testing.T) {
	rec := newStateRecorder()
	cl := relayClient(&stateRelay{deliver: rec.deliver})
	cl.sendState(status.BridgeState{StateEvent: status.StateConnected, Message: "up"})
	cl.connector.states.waitIdle(t)
	cl.retire()
	cl.OnDisconnected(nil, fmt.Errorf("gone"), true)
	cl.connector.states.waitIdle(t)
	if got := rec.of(cl.login); len(got) != 1 || got[0] != "up" {
		t.Errorf("handed over %q, want only the state reported before the client was retired", got)
	}
}
