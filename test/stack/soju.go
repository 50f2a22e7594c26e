package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Soju is a running soju v0.8.0 bouncer (built by test/install.sh into
// ToolsBin) in front of an IRC server, listening in plain text on
// 127.0.0.1. Its users, networks and message history live in an SQLite
// database in Dir (message-store db, so it offers CHATHISTORY), so Restart
// keeps them. It has one user made at start, User with Password, whose one
// network (NetworkName) points at the upstream server with the nick User.
//
// A client reaches the upstream network through soju by authenticating as
// "User/NetworkName" (SASL PLAIN, or USER with PASS), see LoginName; soju
// also accepts "user@client/network" to keep a per-client history cursor.
//
// Things found out while setting this up: soju accepts a client's NICK at
// registration but answers 001 with the network's own nick, so the nick a
// test logs in with must be the soju network's nick; after losing its
// upstream connection soju retries at once and then only after a minute
// or more (retryConnectMinDelay), so SetUpstream (which restarts the
// network) is how a test points it at a restarted server without waiting.
type Soju struct {
	Host        string
	Port        int
	Dir         string // soju.conf, soju.db, soju.log, the admin socket
	ConfigPath  string
	User        string // the bouncer user created at start
	Password    string
	NetworkName string // that user's network, pointing at the upstream IRC server

	proc *process
}

// Addr is Host:Port.
func (s *Soju) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// LoginName is the username that binds a client connection to the user's network.
func (s *Soju) LoginName() string { return s.User + "/" + s.NetworkName }

// sojuBinaries are what install.sh builds from git.sr.ht/~emersion/soju/cmd.
var sojuBinaries = []string{"soju", "sojuctl", "sojudb"}

// StartSoju writes a configuration into dir, starts soju and creates the
// user "bridge" with a random password and a network "upstream" pointing at
// upstream's plain-text port. It returns once the network is connected.
func StartSoju(ctx context.Context, dir string, upstream *IRC) (*Soju, error) {
	dir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	for _, b := range sojuBinaries {
		if err := needFile(filepath.Join(ToolsBin(), b)); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Soju{
		Host: "127.0.0.1", Port: port, Dir: dir, ConfigPath: filepath.Join(dir, "soju.conf"),
		User: "bridge", Password: randomHex(10), NetworkName: "upstream",
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if err := s.AddUser(ctx, s.User, s.Password, upstream); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// adminSocket is the unix+admin:// socket sojuctl talks to; a socket path
// must be short (108 bytes), so it goes under /tmp when Dir is long.
func (s *Soju) adminSocket() string {
	p := filepath.Join(s.Dir, "admin.sock")
	if len(p) < 100 {
		return p
	}
	return filepath.Join(os.TempDir(), "soju-"+strconv.Itoa(s.Port)+".sock")
}

func (s *Soju) start(ctx context.Context) error {
	conf := strings.Join([]string{
		"listen irc+insecure://" + s.Addr(),
		"listen unix+admin://" + s.adminSocket(),
		"hostname soju.localhost",
		"title soju-test",
		"db sqlite3 " + filepath.Join(s.Dir, "soju.db"),
		"message-store db",
		"",
	}, "\n")
	if err := os.WriteFile(s.ConfigPath, []byte(conf), 0o600); err != nil {
		return err
	}
	_ = os.Remove(s.adminSocket())
	p, err := startProcess(ctx, s.Dir, "soju", []string{filepath.Join(ToolsBin(), "soju"), "-config", s.ConfigPath}, nil)
	if err != nil {
		return err
	}
	s.proc = p
	if err := waitTCP(ctx, p, s.Addr()); err != nil {
		s.Stop()
		return err
	}
	return waitFor(ctx, p, "the soju admin socket", func(context.Context) error {
		_, err := os.Stat(s.adminSocket())
		return err
	})
}

// Ctl runs one BouncerServ command through sojuctl and returns its output.
func (s *Soju) Ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	argv := append([]string{"-config", s.ConfigPath}, args...)
	out, err := exec.CommandContext(ctx, filepath.Join(ToolsBin(), "sojuctl"), argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sojuctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// AddUser creates a bouncer user whose nick is its name, with a network
// NetworkName on upstream, and waits until soju has connected it.
func (s *Soju) AddUser(ctx context.Context, user, password string, upstream *IRC) error {
	if _, err := s.Ctl(ctx, "user", "create", "-username", user, "-password", password, "-nick", user); err != nil {
		return err
	}
	if _, err := s.Ctl(ctx, "user", "run", user, "network", "create", "-addr", upstreamURL(upstream),
		"-name", s.NetworkName, "-nick", user); err != nil {
		return err
	}
	return s.WaitConnected(ctx, user)
}

// SetUpstream points a user's network at (a restarted) upstream: soju
// restarts the network and connects at once.
func (s *Soju) SetUpstream(ctx context.Context, user string, upstream *IRC) error {
	_, err := s.Ctl(ctx, "user", "run", user, "network", "update", s.NetworkName, "-addr", upstreamURL(upstream))
	return err
}

// WaitConnected waits until the user's network is connected upstream.
func (s *Soju) WaitConnected(ctx context.Context, user string) error {
	return waitFor(ctx, s.proc, user+"'s soju network to connect", func(ctx context.Context) error {
		out, err := s.Ctl(ctx, "user", "run", user, "network", "status")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "[connected") {
			return errors.New("not connected: " + strings.TrimSpace(out))
		}
		return nil
	})
}

// Restart stops soju (SIGTERM) and starts it again on the same port and
// database; its users and history survive.
func (s *Soju) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// Kill stops soju with SIGKILL, for crash tests.
func (s *Soju) Kill() { s.proc.stop(syscall.SIGKILL, 0) }

// Stop stops soju. It is safe to call twice.
func (s *Soju) Stop() error {
	if s == nil || s.proc == nil {
		return nil
	}
	return s.proc.stop(syscall.SIGTERM, 5*time.Second)
}

// LogPath is soju's log file.
func (s *Soju) LogPath() string { return filepath.Join(s.Dir, "soju.log") }

func upstreamURL(i *IRC) string { return "irc+insecure://" + i.Addr() }
