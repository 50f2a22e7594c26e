//go:build e2e

package faults

import (
	"io"
	"net"
	"sync"
)

// proxy is a loopback TCP forwarder with a fixed address in front of a server whose port changes
// when it restarts (the stack's Start functions pick new ports): clients keep one address. Down
// closes the listener and every forwarded connection, so that clients see a refused server.
type proxy struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener
	dest string
	open map[net.Conn]struct{}
}

func newProxy(dest string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln, dest: dest, open: map[net.Conn]struct{}{}}
	go p.serve(ln)
	return p, nil
}

// Up listens again (on the same address) and forwards to dest.
func (p *proxy) Up(dest string) error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.dest = ln, dest
	p.mu.Unlock()
	go p.serve(ln)
	return nil
}

// Down stops listening and cuts every forwarded connection.
func (p *proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.open {
		c.Close()
	}
	p.open = map[net.Conn]struct{}{}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	p.mu.Lock()
	dest := p.dest
	p.mu.Unlock()
	s, err := net.Dial("tcp", dest)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c) || !p.track(s) {
		c.Close()
		s.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	c.Close()
	s.Close()
	<-done
	p.untrack(c)
	p.untrack(s)
}
