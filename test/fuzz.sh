#!/usr/bin/env bash
# Runs every fuzz target of the given packages for FUZZTIME each, one after the other, then prints a
# table of executions per target (parsed from go test's "fuzz: elapsed: ..., execs: N (R/sec)"
# progress lines). Used by `make fuzz-short` (8s each) and `make fuzz` (2m each).
#
#   FUZZTIME=30s test/fuzz.sh ./bridge/... ./config/...
#
# Environment: GO (go), TAGS (goolm), FUZZTIME (8s), FUZZMINIMIZETIME (100x), FUZZ_TARGETS (an
# optional regexp: only targets matching it run). Every target runs even after one fails; the exit
# status is 1 when any failed. A failing input is written by go under the package's
# testdata/fuzz/<Target>/ and becomes a regression test of `go test`: keep it.
#
# Go 1.26's fuzz coordinator can end a duration-bound run with a bare "context deadline exceeded"
# and no failing input (golang/go#75804, fixed in Go 1.27); such a run is reported as "ok (go#75804)"
# with its executions, and does not fail the script. Any run that writes a failing input fails.
set -uo pipefail

GO=${GO:-go}
TAGS=${TAGS:-goolm}
FUZZTIME=${FUZZTIME:-8s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-100x}
FUZZ_TARGETS=${FUZZ_TARGETS:-.}
if [ $# -eq 0 ]; then
	set -- ./bridge/... ./cmd/... ./config/... ./sbdb/...
fi

# seconds turns a Go duration (8s, 2m, 1h30m, 1m0s) into whole seconds; "" for anything else (100x).
seconds() {
	local d=$1 total=0 n unit
	[[ $d =~ ^([0-9]+[hms])+$ ]] || return 0
	while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
		n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
		case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
	done
	echo "$total"
}

# go test's default -timeout (10m) would kill a long run: allow twice FUZZTIME plus 10 minutes.
fuzzsecs=$(seconds "$FUZZTIME")
timeout=30m
[ -n "$fuzzsecs" ] && timeout=$((fuzzsecs * 2 + 600))s

cd "$(dirname "$0")/.." || exit 1
pkgs=$("$GO" list -tags "$TAGS" "$@") || exit 1

summary=()
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $pkgs; do
	targets=$("$GO" test -tags "$TAGS" -list '^Fuzz' "$pkg" | grep '^Fuzz' | grep -E -- "$FUZZ_TARGETS" || true)
	for target in $targets; do
		echo "fuzz: $pkg $target ($FUZZTIME)"
		start=$(date +%s)
		"$GO" test -tags "$TAGS" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" \
			-fuzzminimizetime "$FUZZMINIMIZETIME" -timeout "$timeout" "$pkg" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		secs=$(($(date +%s) - start))
		# The last progress line with an execs count is the total of the run.
		last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1)
		execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
		# Average over the run (the last line's own rate covers only the last interval).
		elapsed=$(seconds "$(sed -nE 's/^fuzz: elapsed: ([0-9hms]+),.*/\1/p' <<<"$last")")
		rate=-
		[ -n "$execs" ] && [ -n "$elapsed" ] && [ "$elapsed" -gt 0 ] && rate=$((execs / elapsed))
		result=ok
		input=$(grep -oE 'testdata/fuzz/[^ ]+' "$log" | tail -n 1)
		if [ "$rc" -ne 0 ]; then
			if [ -z "$input" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -qE '^\s+\S+_test\.go:[0-9]+:' "$log"; then
				result="ok (go#75804)"
			else
				result=FAIL
				failed=1
				[ -n "$input" ] && result="FAIL (input: ${pkg#github.com/sealbridge/sealbridge/}/$input)"
			fi
		fi
		summary+=("$(printf '%-42s %-24s %8s %14s %10s  %s' "${pkg#github.com/sealbridge/sealbridge/}" "$target" "${secs}s" "${execs:--}" "$rate" "$result")")
	done
done

echo
echo "fuzz summary (FUZZTIME=$FUZZTIME per target)"
printf '%-42s %-24s %8s %14s %10s  %s\n' package target wall execs execs/sec result
for line in "${summary[@]}"; do
	echo "$line"
done
if [ ${#summary[@]} -eq 0 ]; then
	echo "no fuzz targets found"
	exit 1
fi
exit $failed
