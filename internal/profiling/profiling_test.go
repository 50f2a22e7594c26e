package profiling

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"testing"
)

func TestServeRefusesAddressesBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "localhost:0"} {
		if err := Serve(addr); err == nil {
			t.Errorf("Serve(%q) listened", addr)
		}
	}
	if err := Serve("127.0.0.1:0"); err != nil {
		t.Errorf("Serve on loopback: %v", err)
	}
}

func TestCPUProfileBetweenStartAndStop(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, _ := get("/debug/cpu/stop"); code != http.StatusConflict {
		t.Errorf("stop without start: %d", code)
	}
	if code, body := get("/debug/cpu/start"); code != http.StatusOK {
		t.Fatalf("start: %d %s", code, body)
	}
	if code, _ := get("/debug/cpu/start"); code != http.StatusConflict {
		t.Errorf("a second start: %d", code)
	}
	code, body := get("/debug/cpu/stop")
	if code != http.StatusOK || len(body) == 0 {
		t.Errorf("stop: %d, %d bytes", code, len(body))
	}
}

func TestGOGCIsTheCollectorsTarget(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	prev := debug.SetGCPercent(73)
	defer debug.SetGCPercent(prev)
	resp, err := http.Get(srv.URL + "/debug/gogc")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "73" {
		t.Fatalf("/debug/gogc = %q, want 73", body)
	}
}
