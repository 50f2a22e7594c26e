#!/usr/bin/env bash
# The lint gate of `make vet` (and so of `make check`, `make test` and CI):
#   - goimports: imports grouped standard library / third party / sealbridge's own;
#   - staticcheck, on every package and build tag set;
#   - zerolog's Msgf is banned (mautrix's convention: fixed messages, values as fields).
# The linters are built from test/lint (pinned versions) into test/lint/bin on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
TAGS=${TAGS:-goolm}
bin=test/lint/bin
if [ ! -x "$bin/staticcheck" ] || [ ! -x "$bin/goimports" ] || [ test/lint/go.mod -nt "$bin/staticcheck" ]; then
	echo "lint: building staticcheck and goimports (test/lint)"
	(cd test/lint && "$GO" build -o bin/ honnef.co/go/tools/cmd/staticcheck golang.org/x/tools/cmd/goimports)
fi
status=0
dirs=(bridge cmd config sbdb internal test bench)
if out=$("$bin/goimports" -local github.com/sealbridge/sealbridge -l "${dirs[@]}") && [ -n "$out" ]; then
	echo "lint: imports not grouped (run $bin/goimports -local github.com/sealbridge/sealbridge -w on them):"
	echo "$out"
	status=1
fi
if grep -rn --include='*.go' -E '\.Msgf\(' "${dirs[@]}"; then
	echo "lint: zerolog Msgf is not used here: write a fixed message and add the values as fields"
	status=1
fi
"$bin/staticcheck" -tags "$TAGS" ./bridge/... ./cmd/... ./config/... ./sbdb/... ./internal/... || status=1
"$bin/staticcheck" -tags "$TAGS,e2e" ./test/... || status=1
"$bin/staticcheck" -tags "$TAGS" ./bench/ || status=1
exit $status
