package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sealbridge/sealbridge/test/stack"
)

// worldProc is the running world child, seen from the parent.
type worldProc struct {
	cmd     *exec.Cmd
	hsURL   string
	ircAddr string
}

func startWorld(asToken, hsToken, asURL string, ircTags bool) (*worldProc, error) {
	cmd, f, err := serverChild(2, "world", "-as-token", asToken, "-hs-token", hsToken, "-as-url", asURL, "-irc-tags="+strconv.FormatBool(ircTags))
	if err != nil {
		return nil, err
	}
	return &worldProc{cmd: cmd, hsURL: f[0], ircAddr: f[1]}, nil
}

func (w *worldProc) stop() { killChild(w.cmd) }

// call POSTs (or GETs) a control endpoint of the world and decodes its JSON answer into v.
func (w *worldProc) call(method, path string, q url.Values, v any) error {
	req, _ := http.NewRequest(method, w.hsURL+"/_bench/"+path+"?"+q.Encode(), nil)
	resp, err := (&http.Client{Timeout: 20 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("world %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

func (w *worldProc) state() (worldState, error) {
	var s worldState
	return s, w.call(http.MethodGet, "state", nil, &s)
}

// bridgeProc is a running bridge child (this binary with -role bridge).
type bridgeProc struct {
	cmd     *exec.Cmd
	started time.Time
	asURL   string
	ctlAddr string // the child's control endpoints (profile.go)
	secret  string
	logPath string
	done    chan struct{}
}

// startBridge starts the bridge child on a config and waits until its appservice answers
// /_matrix/mau/ready (bridgev2 connected to the homeserver, crypto initialised); startGC is
// envOptions.startGC.
func startBridge(cfgPath, asURL, secret string, startGC bool) (*bridgeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctlPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ctlAddr := fmt.Sprintf("127.0.0.1:%d", ctlPort)
	logPath := filepath.Join(filepath.Dir(cfgPath), "bridge.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	b := &bridgeProc{cmd: exec.Command(exe, bridgeArgs(cfgPath)...), asURL: asURL, ctlAddr: ctlAddr, secret: secret, logPath: logPath, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	// The collector's settings are the phase's, never the environment the bench runs in (see
	// envOptions): a GOGC or GOMEMLIMIT there would turn the bridge's own window off, and the
	// scale phase would wait for a target of 100 that never comes.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=")
	})
	b.cmd.Env = append(env, bridgeRoleEnv+"=bridge", bridgeCtlEnv+"="+ctlAddr)
	if !startGC {
		b.cmd.Env = append(b.cmd.Env, "GOGC=100") // see envOptions
	}
	b.started = time.Now()
	if err = b.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { _ = b.cmd.Wait(); logFile.Close(); close(b.done) }()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			return nil, fmt.Errorf("the bridge exited during startup:\n%s", tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
		if resp, err := http.Get(asURL + "/_matrix/mau/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return b, nil
			}
		}
	}
	b.stop()
	return nil, fmt.Errorf("the bridge was not ready within 5 minutes:\n%s", tail(logPath))
}

// stop sends SIGTERM (SIGKILL after 30 s) and waits.
func (b *bridgeProc) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// cpu is the bridge child's user+system CPU time so far (/proc/<pid>/stat).
func (b *bridgeProc) cpu() (time.Duration, error) { return stack.ProcessCPU(b.cmd.Process.Pid) }

// rssKiB is the bridge child's VmRSS.
func (b *bridgeProc) rssKiB() (int64, error) {
	return procStatusKiB(strconv.Itoa(b.cmd.Process.Pid), "VmRSS")
}

// login creates an IRC login for a Matrix user through bridgev2's provisioning API (flow "nick").
func (b *bridgeProc) login(user, nick string) error {
	q := "?user_id=" + url.QueryEscape(user)
	var step struct {
		LoginID string `json:"login_id"`
		StepID  string `json:"step_id"`
		Type    string `json:"type"`
	}
	if err := b.provision("login/start/nick"+q, nil, &step); err != nil {
		return err
	}
	var done struct {
		Type string `json:"type"`
	}
	path := fmt.Sprintf("login/step/%s/%s/user_input%s", step.LoginID, step.StepID, q)
	if err := b.provision(path, map[string]string{"network": benchNetwork, "nick": nick}, &done); err != nil {
		return err
	}
	if done.Type != "complete" {
		return fmt.Errorf("login of %s ended with step %q", user, done.Type)
	}
	return nil
}

func (b *bridgeProc) provision(path string, body, v any) error {
	data, _ := json.Marshal(body)
	if body == nil {
		data = []byte("{}")
	}
	req, _ := http.NewRequest(http.MethodPost, b.asURL+"/_matrix/provision/v3/"+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+b.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("provisioning %s: HTTP %d: %s", path, resp.StatusCode, out)
	}
	return json.Unmarshal(out, v)
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// forEach runs fn(0) .. fn(n-1) on workers goroutines at a time, as several users would act at once,
// and returns the first error (no new index is started after one).
func forEach(n, workers int, fn func(i int) error) error {
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(workers)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}
