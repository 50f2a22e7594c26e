package bridge

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"
)

// Requests sent at once to the homeserver reuse the connections of the last such round instead of
// dialing new ones (Go's default keeps only 2 idle), and never open more than the bound.
func TestHomeserverConnectionsAreReused(t *testing.T) {
	var dials atomic.Int64
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // the requests overlap
	}))
	hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	hs.Start()
	defer hs.Close()
	as := appservice.Create()
	poolHomeserverConnections(as)
	round := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := as.HTTPClient.Get(hs.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	round(16)
	first := dials.Load()
	round(16)
	if again := dials.Load() - first; again > 0 {
		t.Fatalf("the second round dialed %d new connections (the first %d)", again, first)
	}
	// More requests at once than the bound wait for a connection: never more than the bound are
	// opened, and a later round dials none.
	round(3 * homeserverConns)
	if n := dials.Load(); n > homeserverConns {
		t.Fatalf("%d requests at once opened %d connections, want at most %d", 3*homeserverConns, n, homeserverConns)
	}
	opened := dials.Load()
	round(3 * homeserverConns)
	if again := dials.Load() - opened; again > 0 {
		t.Fatalf("the second round of %d dialed %d new connections", 3*homeserverConns, again)
	}
}
