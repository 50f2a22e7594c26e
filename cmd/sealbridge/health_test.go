package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// listener is a fake appservice listener whose answers the test switches.
func listener(t *testing.T, healthy *atomic.Bool) (string, uint16) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return host, uint16(p)
}

func TestProbe(t *testing.T) {
	var healthy atomic.Bool
	host, port := listener(t, &healthy)
	ctx := context.Background()
	if err := probe(ctx, host, port, "/_matrix/mau/ready"); err == nil {
		t.Fatal("a 503 counted as ready")
	}
	healthy.Store(true)
	if err := probe(ctx, "0.0.0.0", port, "/_matrix/mau/ready"); err != nil {
		t.Fatalf("a listener on every address, asked over loopback: %v", err)
	}
}

// Under systemd (Type=notify, WatchdogSec) the bridge says READY=1 and pings the watchdog only
// while its appservice listener answers.
func TestNotifySystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var healthy atomic.Bool
	host, port := listener(t, &healthy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notifySystemd(ctx, host, port, zerolog.Nop())
	read := func() string {
		t.Helper()
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := read(); got != "" {
		t.Fatalf("pinged the watchdog (%q) while the listener did not answer", got)
	}
	healthy.Store(true)
	if got := read(); got != "WATCHDOG=1" {
		t.Fatalf("notification %q, want WATCHDOG=1 once the listener answers", got)
	}
}
