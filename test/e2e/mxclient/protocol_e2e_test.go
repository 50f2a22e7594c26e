// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package mxclient_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/e2e/mxclient"
)

// TestProtocol checks the process plumbing without a homeserver: start-up,
// error replies, concurrent calls and shutdown.
func TestProtocol(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := mxclient.New(ctx, filepath.Join(t.TempDir(), "client.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Members(ctx, "!nowhere:example.org"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("members before login: err = %v, want 'not logged in'", err)
	}
	if err := c.Call(ctx, "no_such_command", nil, nil); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: err = %v", err)
	}
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			var res struct {
				Autojoin bool `json:"autojoin"`
			}
			err := c.Call(ctx, "set_autojoin", map[string]any{"enabled": true}, &res)
			if err == nil && !res.Autojoin {
				err = context.Canceled
			}
			errs <- err
		}()
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent call: %v", err)
		}
	}
	// A login against nothing fails cleanly.
	if _, _, err := c.Login(ctx, "http://127.0.0.1:1", "nobody", "x", false); err == nil {
		t.Fatal("login against a closed port succeeded")
	}

	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer wcancel()
	if _, err := c.WaitEvent(wctx, func(mxclient.Event) bool { return true }); err == nil {
		t.Fatal("WaitEvent returned an event although none was sent")
	}
	if _, err := c.WaitDecrypted(wctx, "$nope"); err == nil || !strings.Contains(err.Error(), "never arrived") {
		t.Fatalf("WaitDecrypted: err = %v, want 'never arrived'", err)
	}

	c.Close()
	if err := c.Call(ctx, "set_autojoin", map[string]any{"enabled": false}, nil); err == nil {
		t.Fatal("call after Close succeeded")
	}
	c.Close() // idempotent
}
