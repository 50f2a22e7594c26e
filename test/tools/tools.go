//go:build tools

// Package tools pins the real components the end-to-end tests build from source: the Dendrite
// homeserver and its helper commands. It is a separate module so that the bridge's own go.mod does
// not carry Dendrite's dependency tree.
package tools

import (
	_ "github.com/element-hq/dendrite/cmd/create-account"
	_ "github.com/element-hq/dendrite/cmd/dendrite"
	_ "github.com/element-hq/dendrite/cmd/generate-config"
	_ "github.com/element-hq/dendrite/cmd/generate-keys"
)
