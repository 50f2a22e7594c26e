package main

import (
	"regexp"
	"strings"
)

// releaseTag matches the tags releases are made from (v1.2.3) and what `git describe --tags` says
// after one (v1.2.3-4-gabcdef0).
var releaseTag = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(-\d+-g[0-9a-f]+)?$`)

// baseVersion is the version the build's git tag names: the tag itself on a release tag, the last
// release before it otherwise (mautrix then reports "+dev" and the commit), and 0.0.0 where there
// is no tag at all. The version lives in git tags only; nothing in the code repeats it.
func baseVersion(tag string) string {
	m := releaseTag.FindStringSubmatch(strings.TrimSpace(tag))
	if m == nil {
		return "0.0.0"
	}
	return m[1]
}
