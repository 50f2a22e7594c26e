// Package stack starts and stops the real third-party servers that
// sealbridge's end-to-end tests run against, all on 127.0.0.1:
//
//   - Dendrite (a Matrix homeserver, SQLite, federation off, open
//     registration) built from the tools module in test/tools;
//   - Synapse (the reference homeserver), Debian sid's matrix-synapse in a
//     chroot that test/install.sh builds (see synapse.go);
//   - InspIRCd 3 with the IRCv3 modules, a plain and a TLS client port
//     (self-signed CA generated per run), linked to Anope 2.0 services
//     (NickServ, SASL PLAIN);
//   - PostgreSQL 15, a private cluster with trust authentication.
//
// test/install.sh installs everything this package needs on a fresh
// Debian machine. Each StartX function takes a context and a directory:
// configuration, data and log files (<name>.log) go into that directory,
// and cancelling the context kills the started processes (as Stop does).
// Startup waits are bounded by the context and by an internal timeout.
//
// Starting again on the same directory keeps state: Dendrite reuses its
// signing key and SQLite databases, Anope its anope.db (a restart test);
// ports and the IRC CA are new each time.
//
// Things found out while setting this up, so nobody has to again:
//   - InspIRCd 3 completes a client's registration (001) on its
//     once-a-second timer, so every new IRC connection takes about 1 s.
//   - Anope's casemap must match InspIRCd's (rfc1459 by default) or the
//     link fails CAPAB negotiation; Anope sleeps 3 s at start when both its
//     uid and gid are 0, so it runs as uid 0 with gid nogroup.
//   - nickserv's stock regdelay (30 s) and forceemail are turned off, and
//     killprotect is not a default, so tests keep their nicks.
//   - InspIRCd 3.15 may dump core while exiting; cores are disabled.
//   - postgres refuses to run as root: as root, initdb and postgres run as
//     the postgres OS user in a directory under os.TempDir().
//
// The package has no test-framework dependency so that any test (or a
// small program) can use it; the end-to-end test of the package itself is
// behind the build tag e2e: go test -tags e2e ./test/stack/ -v
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startupTimeout bounds how long a Start function waits for its server
// to become ready, whatever the caller's context says.
const startupTimeout = 90 * time.Second

// process is one started server process, in its own process group, with
// stdout and stderr in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	once    sync.Once
}

// startProcess starts argv with output to dir/<name>.log. setup may adjust
// the command (environment, credentials) before it starts.
func startProcess(ctx context.Context, dir, name string, argv []string, setup func(*exec.Cmd)) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// No core files in dir: InspIRCd 3.15 tends to crash while exiting.
	argv = append([]string{"/bin/sh", "-c", `ulimit -c 0; exec "$@"`, "sh"}, argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group (Stop kills the group); killed if the test binary
	// dies without calling Stop (e.g. go test's timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// On context cancellation kill the whole group, not only the leader.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process group, then SIGKILL after grace.
// It is safe to call more than once and after the process died.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		if !p.exited() {
			_ = syscall.Kill(-pid, sig)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		// Children left behind in the group (if any) and a stuck leader.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	})
	return nil
}

// logTail returns the last lines of the process's log, for error messages.
func (p *process) logTail() string {
	return tailFile(p.logPath, 30)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls check until it returns nil, the process dies, or the
// deadline passes.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	var last error
	for {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while waiting for %s (%v); log %s:\n%s", p.name, what, p.waitErr, p.logPath, p.logTail())
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("timed out waiting for %s: %v", what, last)
			if p != nil {
				msg += fmt.Sprintf("; log %s:\n%s", p.logPath, p.logTail())
			}
			return errors.New(msg)
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// waitTCP waits until something accepts connections on addr.
func waitTCP(ctx context.Context, p *process, addr string) error {
	return waitFor(ctx, p, "a listener on "+addr, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// sourceDir is the directory of this package's source files.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(file)
}

// ToolsBin is the directory holding the Dendrite binaries built by
// test/install.sh: $SEALBRIDGE_TOOLS_BIN, or test/tools/bin next to this
// package's source.
func ToolsBin() string {
	if d := os.Getenv("SEALBRIDGE_TOOLS_BIN"); d != "" {
		return d
	}
	if src := sourceDir(); filepath.IsAbs(src) {
		return filepath.Join(src, "..", "tools", "bin")
	}
	// Built with -trimpath: look for the repository above the working
	// directory (go test runs in the package's directory).
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "test", "tools", "go.mod")); err == nil {
				return filepath.Join(d, "test", "tools", "bin")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return filepath.Join("test", "tools", "bin")
}

// absDir makes dir absolute and creates it.
func absDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// needFile returns an error naming install.sh when path is missing.
func needFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s not found (run test/install.sh as root): %w", path, err)
	}
	return nil
}

// ProcessCPU is the CPU time (user and system) a process has used so far, from /proc.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	f := strings.Fields(s[i+2:]) // fields from 3 (state) on
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// WaitProcessIdle waits until a process used under 2 % of a core over a second (its work after a
// burst is done), or ctx ends.
func WaitProcessIdle(ctx context.Context, pid int) error {
	prev, err := ProcessCPU(pid)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		now, err := ProcessCPU(pid)
		if err != nil {
			return err
		}
		if now-prev < 20*time.Millisecond {
			return nil
		}
		prev = now
	}
}
