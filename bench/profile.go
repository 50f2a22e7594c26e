package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sync"
)

// The bridge child's control endpoints, on a loopback port of its own: /bench/gc collects garbage and
// returns freed memory to the OS (before an RSS reading), /bench/cpu/start?file= starts a CPU profile
// into a file, /bench/cpu/stop ends it; net/http/pprof's handlers are there too.
func serveBridgeControl(addr string) {
	http.HandleFunc("/bench/gc", func(http.ResponseWriter, *http.Request) { debug.FreeOSMemory() })
	var mu sync.Mutex
	var f *os.File
	http.HandleFunc("/bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if f, err = os.Create(r.URL.Query().Get("file")); err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("/bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		pprof.StopCPUProfile()
		if f != nil {
			_ = f.Close()
			f = nil
		}
	})
	go func() { _ = http.ListenAndServe(addr, nil) }()
}

// profile is a CPU profile of the bridge child during one phase (a no-op without -bridge-profile).
type profile struct{ addr string }

func startProfile(dir, addr, name string) profile {
	if dir == "" || addr == "" {
		return profile{}
	}
	path, _ := filepath.Abs(filepath.Join(dir, "bridge-"+name+".pprof"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		logf("profile %s: %v", name, err)
		return profile{}
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/bench/cpu/start?file=%s", addr, url.QueryEscape(path)))
	if err != nil {
		logf("profile %s: %v", name, err)
		return profile{}
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		logf("profile %s: the bridge answered %s", name, resp.Status)
		return profile{}
	}
	logf("profiling the bridge into %s", path)
	return profile{addr: addr}
}

func (p profile) finish() {
	if p.addr == "" {
		return
	}
	if resp, err := http.Get("http://" + p.addr + "/bench/cpu/stop"); err == nil {
		_ = resp.Body.Close()
	}
}
