package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// fleet is n real bridge/irc Clients, each kept up by Client.Run, sharing one connection pacer as
// the logins of one network do in the bridge. Logging is off (zerolog.Nop), as the handler does
// nothing: this is the IRC engine alone, without bridgev2, portals or the database.
type fleet struct {
	clients []*irc.Client
	pace    atomic.Pointer[irc.Pacer]
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	connects atomic.Int64 // registrations completed (OnConnected)
	failures atomic.Int64 // OnDisconnected calls with an error (drops and failed attempts)
	markAt   atomic.Int64 // registration number whose time is recorded in markTime
	markTime atomic.Int64 // UnixNano
}

func (f *fleet) OnConnected(*irc.Client) {
	if k := f.connects.Add(1); k == f.markAt.Load() {
		f.markTime.Store(time.Now().UnixNano())
	}
}

func (f *fleet) OnMessage(*irc.Client, *ircmsg.Message, time.Time) {}

func (f *fleet) OnDisconnected(_ *irc.Client, err error, _ bool) {
	if err != nil {
		f.failures.Add(1)
	}
}

// startFleet creates n clients and runs them; connections are paced by p.
func startFleet(addr string, n int, backoff irc.BackoffConfig, p *irc.Pacer) *fleet {
	f := &fleet{}
	f.pace.Store(p)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range n {
		c := irc.New(irc.Config{
			Addr:    addr,
			Nick:    fmt.Sprintf("bench%05d", i),
			Backoff: backoff,
			Pace:    func(ctx context.Context) error { return f.pace.Load().Wait(ctx) },
		}, f, zerolog.Nop())
		f.clients = append(f.clients, c)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.Run(ctx)
		}()
	}
	return f
}

// connected counts the clients with a registered connection.
func (f *fleet) connected() int {
	n := 0
	for _, c := range f.clients {
		if c.Connected() {
			n++
		}
	}
	return n
}

// waitConnects waits until at least want registrations have completed in total and every client is
// connected.
func (f *fleet) waitConnects(want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if f.connects.Load() >= want && f.connected() == len(f.clients) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %d registrations of %d wanted, %d of %d connected",
				f.connects.Load(), want, f.connected(), len(f.clients))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fleet) stop() {
	f.cancel()
	for _, c := range f.clients {
		_ = c.Close()
	}
	f.wg.Wait()
}

// settledRSSKiB collects garbage, lets the runtime settle, and reads VmRSS. With free it also
// returns freed memory to the OS first (debug.FreeOSMemory).
func settledRSSKiB(free bool) int64 {
	if free {
		debug.FreeOSMemory()
	} else {
		runtime.GC()
	}
	time.Sleep(time.Second)
	return rssKiB()
}
