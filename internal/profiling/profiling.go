// Package profiling serves a process's profiles to whoever measures it, on a loopback address
// only: the standard net/http/pprof handlers under /debug/pprof/, a CPU profile between two
// requests (/debug/cpu/start, then /debug/cpu/stop answers with the profile), /debug/gc, which
// collects garbage and returns freed memory to the OS before a resident-memory reading, and
// /debug/gogc, the garbage collector's current target (GOGC; the bridge lowers it while many
// logins connect). The bench harness uses it in its bridge child, and sealbridge serves it when
// SEALBRIDGE_PPROF_LISTEN is set.
package profiling

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"runtime/metrics"
	rpprof "runtime/pprof"
	"sync"
)

// Serve listens on addr, which must be a loopback address (the profiles show what the process
// holds), and serves in the background.
func Serve(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("profiling listens on loopback addresses only, not %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, Handler()) }()
	return nil
}

// Handler is the profiling endpoints on a mux of their own.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/gc", func(http.ResponseWriter, *http.Request) { debug.FreeOSMemory() })
	mux.HandleFunc("/debug/gogc", func(w http.ResponseWriter, _ *http.Request) {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		fmt.Fprint(w, s[0].Value.Uint64())
	})
	var cpu cpuProfile
	mux.HandleFunc("/debug/cpu/start", cpu.start)
	mux.HandleFunc("/debug/cpu/stop", cpu.stop)
	return mux
}

// cpuProfile is a CPU profile kept in memory between start and stop.
type cpuProfile struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (c *cpuProfile) start(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf != nil {
		http.Error(w, "a CPU profile is already running", http.StatusConflict)
		return
	}
	buf := new(bytes.Buffer)
	if err := rpprof.StartCPUProfile(buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	c.buf = buf
}

func (c *cpuProfile) stop(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	rpprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(c.buf.Bytes())
	c.buf = nil
}

// StartCPU starts a CPU profile of the process that serves these endpoints at addr (host:port);
// the function it returns stops the profile and returns it.
func StartCPU(addr string) (stop func() ([]byte, error), err error) {
	if _, err := get(addr, "/debug/cpu/start"); err != nil {
		return nil, err
	}
	return func() ([]byte, error) { return get(addr, "/debug/cpu/stop") }, nil
}

func get(addr, path string) ([]byte, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", path, resp.Status)
	}
	return body, err
}
