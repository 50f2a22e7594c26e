package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/sealbridge/sealbridge/internal/profiling"
)

// The bridge child serves internal/profiling on a loopback port of its own (its ctlAddr): the
// harness collects garbage there before an RSS reading and takes CPU and heap profiles.

// profile is a CPU profile of a bridge during one phase (a no-op without -bridge-profile).
type profile struct {
	stop func() ([]byte, error)
	path string
}

// startProfile starts a CPU profile of the bridge whose profiling endpoints are at addr; finish
// writes it to dir/bridge-<name>.pprof.
func startProfile(dir, addr, name string) profile {
	if dir == "" || addr == "" {
		return profile{}
	}
	path, _ := filepath.Abs(filepath.Join(dir, "bridge-"+name+".pprof"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		logf("profile %s: %v", name, err)
		return profile{}
	}
	stop, err := profiling.StartCPU(addr)
	if err != nil {
		logf("profile %s: %v", name, err)
		return profile{}
	}
	logf("profiling the bridge into %s", path)
	return profile{stop: stop, path: path}
}

func (p profile) finish() {
	if p.stop == nil {
		return
	}
	data, err := p.stop()
	if err == nil {
		err = os.WriteFile(p.path, data, 0o644)
	}
	if err != nil {
		logf("profile %s: %v", p.path, err)
	}
}

// saveHeap writes the bridge child's heap profile into dir (a no-op without -bridge-profile): the
// profile, the same as text with runtime.MemStats, and the goroutines by stack.
func saveHeap(dir, addr, name string) {
	if dir == "" || addr == "" {
		return
	}
	for file, query := range map[string]string{"heap.pprof": "heap", "heap.txt": "heap?debug=1", "goroutines.txt": "goroutine?debug=1"} {
		path := filepath.Join(dir, "bridge-"+name+"."+file)
		if err := fetchTo(path, "http://"+addr+"/debug/pprof/"+query); err != nil {
			logf("heap profile %s: %v", name, err)
			return
		}
	}
	logf("heap profile of the bridge in %s", filepath.Join(dir, "bridge-"+name+".heap.*"))
}

func fetchTo(path, u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
