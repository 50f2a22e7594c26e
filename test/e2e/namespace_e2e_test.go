//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/test/stack"
)

// TestNamespaceClashWarning: `-g` warns when another appservice on the homeserver already reserves
// the namespace, and only then. On each homeserver two bridges are installed, "other" (its own
// namespace) and "first" (the default one); a third, "second", is set up with the default
// namespace too. Re-running -g for the installed two must not warn (their reservations are their
// own); -g for "second" must name both of first's reservations, the bot and the ghosts.
func TestNamespaceClashWarning(t *testing.T) {
	for _, hsKind := range []string{"synapse", "dendrite"} {
		t.Run(hsKind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			dir := t.TempDir()
			run := func(args ...string) string {
				t.Helper()
				out, err := exec.Command(bridgeBinary, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("sealbridge %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			setup := func(name string, edit func(map[string]any)) (cfgPath, regPath string) {
				cfgPath, regPath = filepath.Join(dir, name+".yaml"), filepath.Join(dir, name+"-registration.yaml")
				run("-e", "-c", cfgPath)
				must(t, stack.EditYAML(cfgPath, func(cfg map[string]any) {
					stack.SetYAML(cfg, "http://127.0.0.1:1", "homeserver", "address")
					stack.SetYAML(cfg, "localhost", "homeserver", "domain")
					if edit != nil {
						edit(cfg)
					}
				}))
				if out := run("-g", "-c", cfgPath, "-r", regPath); strings.Contains(out, "WARNING") {
					t.Errorf("-g for %s before the homeserver runs warned:\n%s", name, out)
				}
				return cfgPath, regPath
			}
			otherCfg, otherReg := setup("other", func(cfg map[string]any) {
				stack.SetYAML(cfg, "other", "appservice", "id")
				stack.SetYAML(cfg, "otherbot", "appservice", "bot", "username")
				stack.SetYAML(cfg, "other_{{.}}", "appservice", "username_template")
			})
			firstCfg, firstReg := setup("first", nil)
			secondCfg, _ := setup("second", nil)

			hs, hsURL, _, err := startHomeserver(ctx, hsKind, filepath.Join(dir, hsKind), otherReg, firstReg)
			must(t, err)
			defer hs.Stop()
			for _, c := range []string{otherCfg, firstCfg, secondCfg} {
				must(t, stack.SetHomeserver(c, hsURL, "localhost"))
			}
			for name, c := range map[string]string{"other": otherCfg, "first": firstCfg} {
				if out := run("-g", "-c", c, "-r", filepath.Join(dir, name+"-again.yaml")); strings.Contains(out, "WARNING") || strings.Contains(out, "Could not check") {
					t.Errorf("-g again for the installed %s: %s", name, out)
				}
			}
			out := run("-g", "-c", secondCfg, "-r", filepath.Join(dir, "second-registration.yaml"))
			for _, userID := range []string{"@sealbridgebot:localhost", "@sealbridge_namespace-check:localhost"} {
				if !strings.Contains(out, "WARNING: "+userID+" is already ") {
					t.Errorf("-g for a second bridge in the default namespace did not warn about %s:\n%s", userID, out)
				}
			}
			if strings.Contains(out, "otherbot") {
				t.Errorf("warned about the other namespace:\n%s", out)
			}
		})
	}
}
