package bridge

import (
	"slices"
	"sync"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/status"
)

// stateRelay hands the logins' bridge states to bridgev2 (BridgeStateQueue.Send) from one
// goroutine, started when a state is queued and ended when none is left.
//
// Send, and the Fill and FillBridgeState it calls, take the state by value in large frames: about
// 2.4 KB of stack. Made on a connection's own goroutine at each disconnection and registration,
// they grew it past the 4 KB an idle connection needs, and when a netsplit dropped a thousand
// connections, a thousand goroutines grew at once (8 MB more in stacks within 200 ms in the bench).
// Here only the relay's stack grows.
//
// States keep their order per login. A retired login is forgotten: its queued states are dropped,
// none it reports later is queued, and forget returns only once none of its states is being handed
// over, so that bridgev2 can destroy the login's state queue after it.
type stateRelay struct {
	mu      sync.Mutex
	handed  sync.Cond // broadcast when a state has been handed over
	queue   []relayedState
	running bool
	sending *IRCClient // whose state is being handed over now
	// deliver hands a state over; nil is bridgev2's BridgeStateQueue.Send (tests replace it).
	deliver func(*bridgev2.UserLogin, status.BridgeState)
}

type relayedState struct {
	cl    *IRCClient
	login *bridgev2.UserLogin
	state status.BridgeState
}

// send queues state for cl's login, if it has one and is not forgotten.
func (r *stateRelay) send(cl *IRCClient, state status.BridgeState) {
	if cl.login == nil {
		return
	}
	r.mu.Lock()
	if cl.statesForgotten {
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, relayedState{cl: cl, login: cl.login, state: state})
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.run()
	}
}

func (r *stateRelay) run() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.queue) > 0 {
		next := r.queue[0]
		r.queue[0] = relayedState{}
		r.queue = r.queue[1:]
		r.sending = next.cl
		r.mu.Unlock()
		if r.deliver != nil {
			r.deliver(next.login, next.state)
		} else {
			next.login.BridgeState.Send(next.state)
		}
		r.mu.Lock()
		r.sending = nil
		r.cond().Broadcast()
	}
	r.queue = nil // the backing array of a netsplit's states goes with it
	r.running = false
}

// forget drops cl's queued states and any it sends later, and waits until none of its states is
// being handed over.
func (r *stateRelay) forget(cl *IRCClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cl.statesForgotten = true
	r.queue = slices.DeleteFunc(r.queue, func(q relayedState) bool { return q.cl == cl })
	for r.sending == cl {
		r.cond().Wait()
	}
}

// cond is handed, bound to mu on first use (the zero stateRelay is ready); mu must be held.
func (r *stateRelay) cond() *sync.Cond {
	if r.handed.L == nil {
		r.handed.L = &r.mu
	}
	return &r.handed
}
