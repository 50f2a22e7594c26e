package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/id"
)

// wantsRegistration tells whether the command line asks mxmain for a registration (-g).
func wantsRegistration(args []string) bool {
	for _, a := range args {
		if a == "-g" || a == "--generate-registration" {
			return true
		}
	}
	return false
}

// warnNamespaceClash runs before `-g` writes a registration: where the configured homeserver
// answers, it asks whether the bot's and the ghosts' user IDs are already reserved by another
// appservice (another bridge with the same namespace, such as a second sealbridge), and says so on
// w. Nothing stops: the check only informs, and an unreachable homeserver skips it.
func warnNamespaceClash(configPath string, w io.Writer) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return // mxmain reports the missing config
	}
	var cfg bridgeconfig.Config
	if yaml.Unmarshal(data, &cfg) != nil || cfg.Homeserver.Address == "" || cfg.Homeserver.Domain == "example.com" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clashes, err := namespaceClashes(ctx, &cfg)
	if err != nil {
		_, _ = fmt.Fprintf(w, "Could not check the homeserver for appservices that already use this namespace: %v\n", err)
		return
	}
	for _, c := range clashes {
		_, _ = fmt.Fprintf(w, "WARNING: %s is already %s on %s. Two bridges in one namespace take each other's "+
			"users and events: change appservice.bot.username and appservice.username_template (and "+
			"appservice.id) in %s, then run -g again.\n", c.userID, c.why, cfg.Homeserver.Domain, configPath)
	}
}

type clash struct {
	userID id.UserID
	why    string
}

// namespaceClashes returns the user IDs of ours (the bot, a sample ghost) that the homeserver says
// are taken: reserved by an appservice (Synapse answers /register/available with M_EXCLUSIVE,
// Dendrite with M_USER_IN_USE) or, for the bot, an existing account. None are when the configured
// as_token already works: our own registration, installed after an earlier -g, holds them.
func namespaceClashes(ctx context.Context, cfg *bridgeconfig.Config) ([]clash, error) {
	cli, err := mautrix.NewClient(cfg.Homeserver.Address, "", "")
	if err != nil {
		return nil, err
	}
	var clashes []clash
	for _, localpart := range []string{cfg.AppService.Bot.Username, cfg.AppService.FormatUsername("namespace-check")} {
		_, err := cli.RegisterAvailable(ctx, localpart)
		why := ""
		switch {
		case err == nil:
			continue
		case errors.Is(err, mautrix.MExclusive):
			why = "reserved by another appservice"
		case errors.Is(err, mautrix.MUserInUse):
			why = "taken (by an account, or by another appservice's namespace)"
		default:
			var httpErr mautrix.HTTPError
			if errors.As(err, &httpErr) && httpErr.RespError != nil {
				continue // M_INVALID_USERNAME and the like: not about namespaces
			}
			return nil, err
		}
		clashes = append(clashes, clash{id.NewUserID(localpart, cfg.Homeserver.Domain), why})
	}
	if len(clashes) > 0 && installed(ctx, cfg) {
		return nil, nil
	}
	return clashes, nil
}

// installed tells whether the homeserver accepts the configured as_token (a secret of ours): a
// registration of ours is in place, and what it reserves is ours. (whoami answers with the
// registration's sender, a random localpart in mautrix's registrations, not the bot.)
func installed(ctx context.Context, cfg *bridgeconfig.Config) bool {
	if cfg.AppService.ASToken == "" {
		return false
	}
	cli, err := mautrix.NewClient(cfg.Homeserver.Address, "", cfg.AppService.ASToken)
	if err != nil {
		return false
	}
	_, err = cli.Whoami(ctx)
	return err == nil
}
