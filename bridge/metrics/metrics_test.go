package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
)

func TestObserveAndGauges(t *testing.T) {
	m := New()
	m.Observe(IRCToMatrix, "libera", time.Now().Add(-3*time.Millisecond))
	m.Observe(IRCToMatrix, "libera", time.Now())
	m.Observe(MatrixToIRC, "oftc", time.Now())
	if got := testutil.ToFloat64(m.Messages.WithLabelValues(IRCToMatrix, "libera")); got != 2 {
		t.Errorf("irc_to_matrix on libera = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Messages.WithLabelValues(MatrixToIRC, "oftc")); got != 1 {
		t.Errorf("matrix_to_irc on oftc = %v, want 1", got)
	}
	m.SetBuildInfo("v1.2.3", "abc123")
	m.SetSources(func() map[string]int { return map[string]int{"connected": 3, "connecting": 1} },
		func() map[string]int { return map[string]int{QueueIRC: 7, QueueHomeserver: 2} })
	want := `
# HELP sealbridge_irc_connections IRC connections (one per login), by state.
# TYPE sealbridge_irc_connections gauge
sealbridge_irc_connections{state="connected"} 3
sealbridge_irc_connections{state="connecting"} 1
sealbridge_irc_connections{state="disconnected"} 0
# HELP sealbridge_send_queue_depth Lines waiting for IRC flood control (queue=irc) and IRC events waiting for the homeserver (queue=homeserver).
# TYPE sealbridge_send_queue_depth gauge
sealbridge_send_queue_depth{queue="homeserver"} 2
sealbridge_send_queue_depth{queue="irc"} 7
# HELP sealbridge_build_info The version and commit sealbridge was built from (always 1).
# TYPE sealbridge_build_info gauge
sealbridge_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "sealbridge_irc_connections", "sealbridge_send_queue_depth", "sealbridge_build_info"); err != nil {
		t.Error(err)
	}
}

type fakeCrypto struct {
	matrix.Crypto
	err error
}

func (f *fakeCrypto) Decrypt(context.Context, *event.Event) (*event.Event, error) { return nil, f.err }

func TestWrapCryptoCountsFailures(t *testing.T) {
	m := New()
	fake := &fakeCrypto{}
	c := WrapCrypto(fake, m)
	for _, err := range []error{nil, matrix.NoSessionFound, matrix.NoSessionFound, errors.New("bad mac")} {
		fake.err = err
		_, _ = c.Decrypt(context.Background(), &event.Event{})
	}
	if got := testutil.ToFloat64(m.DecryptionFailures.WithLabelValues("no_session")); got != 2 {
		t.Errorf("no_session = %v", got)
	}
	if got := testutil.ToFloat64(m.DecryptionFailures.WithLabelValues("other")); got != 1 {
		t.Errorf("other = %v", got)
	}
	if WrapCrypto(nil, m) != nil {
		t.Error("a nil crypto helper must stay nil (encryption off)")
	}
}

func TestServe(t *testing.T) {
	m := New()
	m.Observe(MatrixToIRC, "libera", time.Now())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, addr, zerolog.Nop()) }()
	var body string
	for i := 0; i < 50; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `sealbridge_messages_bridged_total{direction="matrix_to_irc",network="libera"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("scrape:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
