package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

// Health for the process managers: `sealbridge --healthcheck` asks a running bridge's appservice
// listener whether it is ready (the container image's HEALTHCHECK), and under systemd with
// Type=notify the bridge says READY=1 once started and, with WatchdogSec, pings the watchdog only
// while its own listener answers, so that systemd restarts a bridge that hangs.

// probeTimeout bounds one request to the listener.
const probeTimeout = 5 * time.Second

// probe asks the appservice listener at hostname:port for path and reports an error unless it
// answers 200.
func probe(ctx context.Context, hostname string, port uint16, path string) error {
	if hostname == "" || hostname == "0.0.0.0" || hostname == "::" {
		hostname = "127.0.0.1" // listening everywhere: ask over loopback
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(hostname, strconv.Itoa(int(port))) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	return nil
}

// handleHealthcheck runs `sealbridge --healthcheck [-c config.yaml]`: exit 0 when the bridge the
// config describes is ready, 1 otherwise (with the reason on stderr).
func handleHealthcheck(args []string) bool {
	want := false
	for _, a := range args {
		if a == "--healthcheck" {
			want = true
		}
	}
	if !want {
		return false
	}
	err := func() error {
		data, err := os.ReadFile(configPathFromArgs(args))
		if err != nil {
			return err
		}
		var cfg struct {
			AppService struct {
				Hostname string `yaml:"hostname"`
				Port     uint16 `yaml:"port"`
			} `yaml:"appservice"`
		}
		if err = yaml.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("reading the config: %w", err)
		}
		return probe(context.Background(), cfg.AppService.Hostname, cfg.AppService.Port, "/_matrix/mau/ready")
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sealbridge is not ready:", err)
		os.Exit(1)
	}
	return true
}

// notifySystemd tells systemd the bridge is ready (Type=notify) and, when the unit has
// WatchdogSec, pings the watchdog at half its interval for as long as the appservice listener
// answers. Outside systemd it does nothing.
func notifySystemd(ctx context.Context, hostname string, port uint16, log zerolog.Logger) {
	if sent, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn().Err(err).Msg("Failed to notify systemd")
	} else if !sent {
		return // not run by systemd with Type=notify
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	go func() {
		tick := time.NewTicker(interval / 2)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-ctx.Done():
				_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
				return
			}
			if err := probe(ctx, hostname, port, "/_matrix/mau/live"); err != nil {
				log.Warn().Err(err).Msg("The appservice listener does not answer; not pinging the systemd watchdog")
				continue
			}
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}()
}
