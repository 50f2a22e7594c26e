//go:build tools

// Package tools pins the real components the end-to-end tests build from source: the Dendrite
// homeserver and its helper commands, and the soju IRC bouncer (CHATHISTORY in front of InspIRCd).
// It is a separate module so that the bridge's own go.mod does not carry their dependency trees.
package tools

import (
	_ "git.sr.ht/~emersion/soju/cmd/soju"
	_ "git.sr.ht/~emersion/soju/cmd/sojuctl"
	_ "git.sr.ht/~emersion/soju/cmd/sojudb"
	_ "github.com/element-hq/dendrite/cmd/create-account"
	_ "github.com/element-hq/dendrite/cmd/dendrite"
	_ "github.com/element-hq/dendrite/cmd/generate-config"
	_ "github.com/element-hq/dendrite/cmd/generate-keys"
)
