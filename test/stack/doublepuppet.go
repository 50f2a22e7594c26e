package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// WriteDoublePuppetRegistration writes the second appservice registration an admin adds for
// double puppeting, as docs/admin-guide.md describes: no URL (the homeserver pushes it nothing), a
// non-exclusive namespace over every local user, and an as_token the bridge then uses to act as
// those users. It returns the file and the token; the bridge config names the token in
// double_puppet.secrets (BridgeSetup.DoublePuppetToken).
func WriteDoublePuppetRegistration(dir, serverName string) (path, asToken string, err error) {
	asToken = randomHex(32)
	path = filepath.Join(dir, "doublepuppet.yaml")
	reg := fmt.Sprintf(`id: doublepuppet
url:
as_token: %q
hs_token: %q
sender_localpart: %q
rate_limited: false
namespaces:
  users:
  - regex: %q
    exclusive: false
`, asToken, randomHex(32), randomHex(16), "@.*:"+regexp.QuoteMeta(serverName))
	return path, asToken, os.WriteFile(path, []byte(reg), 0o600)
}
