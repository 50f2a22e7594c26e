//go:build tools

// Package lint pins the linters `make vet` runs: staticcheck, and goimports for import grouping. It
// is a module of its own so that their dependencies stay out of the bridge's and the test stack's.
package lint

import (
	_ "golang.org/x/tools/cmd/goimports"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
