package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/ergochat/irc-go/ircmsg"
)

// runIRCd is the fake IRC server child. It speaks just enough IRC for idle logins: CAP LS 302
// (offering no capability), CAP END, NICK/USER answered with 001, 005 and 376, PING/PONG and QUIT.
// It prints its address on stdout and, on SIGUSR1, closes every connection at once (the storm).
// It runs in its own process so that its memory is not counted in the RSS being measured.
func runIRCd() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	drop := make(chan os.Signal, 1)
	signal.Notify(drop, syscall.SIGUSR1)
	go func() {
		for range drop {
			mu.Lock()
			n := len(conns)
			for c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			fmt.Fprintf(os.Stderr, "bench: ircd: dropped %d connections\n", n)
		}
	}()
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		go func() {
			serveIRC(c)
			_ = c.Close()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

func serveIRC(c net.Conn) {
	const srv = ":bench.invalid"
	r := bufio.NewScanner(c)
	w := bufio.NewWriter(c)
	var nick string
	var user, welcomed bool
	send := func(lines ...string) bool {
		for _, l := range lines {
			_, _ = w.WriteString(l)
			_, _ = w.WriteString("\r\n")
		}
		return w.Flush() == nil
	}
	for r.Scan() {
		msg, err := ircmsg.ParseLine(r.Text())
		if err != nil {
			continue
		}
		p := msg.Params
		ok := true
		switch strings.ToUpper(msg.Command) {
		case "CAP":
			if len(p) > 0 && strings.EqualFold(p[0], "LS") {
				ok = send(srv + " CAP * LS :")
			} else if len(p) > 1 && strings.EqualFold(p[0], "REQ") {
				ok = send(srv + " CAP * NAK :" + p[1])
			}
		case "NICK":
			if len(p) > 0 {
				nick = p[0]
			}
		case "USER":
			user = true
		case "PING":
			tok := ""
			if len(p) > 0 {
				tok = p[0]
			}
			ok = send(srv + " PONG bench.invalid :" + tok)
		case "QUIT":
			send("ERROR :Closing link")
			return
		}
		if !welcomed && nick != "" && user {
			welcomed = true
			ok = send(
				srv+" 001 "+nick+" :Welcome to the bench network "+nick,
				srv+" 005 "+nick+" NETWORK=bench CASEMAPPING=rfc1459 CHANTYPES=# NICKLEN=30 :are supported by this server",
				srv+" 422 "+nick+" :MOTD File is missing",
			)
		}
		if !ok {
			return
		}
	}
}

// startIRCd starts a fake IRC server child and returns it and its address.
func startIRCd() (*ircd, error) {
	cmd, out, err := child("ircd")
	if err != nil {
		return nil, err
	}
	addr, err := out.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("ircd address: %w", err)
	}
	return &ircd{pid: cmd.Process.Pid, addr: strings.TrimSpace(addr), stop: func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}}, nil
}

type ircd struct {
	pid  int
	addr string
	stop func()
}
