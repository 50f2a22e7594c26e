package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/internal/ircfake"
)

// benchRegistration is how both fake IRC servers of the bench register a client: CAP LS 302
// offering caps, CAP REQ answered against them, and, as soon as NICK and USER are in (CAP END or
// not), 001, 005 with isupport and 422.
func benchRegistration(caps []string, isupport string) ircfake.Registration {
	return ircfake.Registration{Server: "bench.invalid", Caps: caps,
		Welcome: "Welcome to the bench network %s", ISupport: isupport + " :are supported by this server"}
}

// ircdRegistration is the idle server's: no capability, rfc1459 casemapping.
var ircdRegistration = benchRegistration(nil, "NETWORK=bench CASEMAPPING=rfc1459 CHANTYPES=# NICKLEN=30")

// runIRCd is the fake IRC server child. It speaks just enough IRC for idle logins: CAP LS 302
// (offering no capability), CAP END, NICK/USER answered with 001, 005 and 422, PING/PONG and QUIT.
// It prints its address on stdout and, on SIGUSR1, closes every connection at once (the storm).
// It runs in its own process so that its memory is not counted in the RSS being measured.
func runIRCd() error {
	ln, err := ircfake.Listen("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	ln.WriteBuffer = 4096 // thousands of idle logins: bufio's default size, not 64 KiB each
	drop := make(chan os.Signal, 1)
	signal.Notify(drop, syscall.SIGUSR1)
	go func() {
		for range drop {
			fmt.Fprintf(os.Stderr, "bench: ircd: dropped %d connections\n", ln.CloseConns())
		}
	}()
	fmt.Println(ln.Addr())
	return ln.Serve(func(c *ircfake.Conn) {
		_ = ircdRegistration.Serve(c, quit)
		_ = c.Close()
	})
}

// errQuit ends a connection after the client's QUIT.
var errQuit = errors.New("quit")

// quit answers QUIT and ends the connection; the fake servers ignore what else they do not know.
func quit(c *ircfake.Conn, msg *ircmsg.Message) error {
	if msg.Command != "QUIT" {
		return nil
	}
	_ = c.Send("ERROR :Closing link")
	return errQuit
}

// startIRCd starts a fake IRC server child and returns it and its address.
func startIRCd() (*ircd, error) {
	cmd, addr, err := serverChild(1, "ircd")
	if err != nil {
		return nil, err
	}
	return &ircd{pid: cmd.Process.Pid, addr: addr[0], stop: func() { killChild(cmd) }}, nil
}

type ircd struct {
	pid  int
	addr string
	stop func()
}
