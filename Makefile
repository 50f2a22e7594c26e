# sealbridge: build, test and try it out. Every target builds with the goolm tag (pure-Go Olm/Megolm).
GO        ?= go
TAGS      := goolm
VERSION   := $(shell git describe --tags --always 2>/dev/null || echo dev)
COMMIT    := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.Tag=$(VERSION) -X main.Commit=$(COMMIT) -X 'main.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)'
FUZZTIME  ?= 8s
PKGS      := ./bridge/... ./cmd/... ./config/... ./sbdb/... ./internal/...
# The unit tests also run test/stack's untagged ones (EvilIRC's), which need no real stack.
UNITPKGS  := $(PKGS) ./test/stack/

.PHONY: all build release test check test-deps vet lint unit fuzz-short fuzz e2e faults demo bench example-config docker-verify clean

all: build

build:
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o sealbridge ./cmd/sealbridge

# `make test`: installs the real test stack (InspIRCd + Anope, PostgreSQL, Dendrite, the E2EE
# Matrix client) on this machine, then runs vet, the unit tests with the race detector, every fuzz
# target briefly, and the end-to-end tests against the real stack. Each test stops what it started.
test: test-deps vet unit fuzz-short e2e

# `make check`: the contributors' fast lane: vet, lint and the unit tests, without root and without
# the real stack (no race detector, no fuzzing, no end-to-end tests: `make test` runs those).
check: vet
	$(GO) test -tags $(TAGS) -count=1 $(UNITPKGS)

test-deps:
	bash test/install.sh

vet:
	@unformatted=$$(gofmt -l bridge cmd config sbdb internal test bench 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet -tags $(TAGS) $(PKGS)
	$(GO) vet -tags $(TAGS),e2e ./test/...
	$(GO) vet -tags $(TAGS) ./bench/
	GO=$(GO) TAGS=$(TAGS) bash test/lint.sh

# staticcheck, goimports grouping and no zerolog Msgf (test/lint.sh; part of vet).
lint:
	GO=$(GO) TAGS=$(TAGS) bash test/lint.sh

unit:
	$(GO) test -race -tags $(TAGS) -count=1 $(UNITPKGS)

# Runs each fuzz target for FUZZTIME (test/fuzz.sh) and prints the executions per target at the
# end; the invariants (no CR/LF/NUL on the wire, nothing lost by splitting) are asserted inside the
# targets. `make fuzz` runs each for 2m, or for FUZZTIME when given (make fuzz FUZZTIME=10m).
fuzz-short:
	GO=$(GO) TAGS=$(TAGS) FUZZTIME=$(FUZZTIME) bash test/fuzz.sh $(PKGS)

fuzz:
	GO=$(GO) TAGS=$(TAGS) FUZZTIME=$(if $(filter file,$(origin FUZZTIME)),2m,$(FUZZTIME)) bash test/fuzz.sh $(PKGS)

e2e:
	$(GO) test -tags $(TAGS),e2e -count=1 -timeout 25m -v ./test/...

# `make faults`: the fault suite (test/faults) at full size: 10,000 messages each way across a
# kill -9 of the bridge, a 60 s homeserver outage and an IRC server restart, plus 1,000 flood lines
# (about 1,000 s at the bridge's default 1 line/s), a reconnect storm of 200 logins, a 5,000-line
# burst at wire speed from IRC, and a hostile IRC server attacking for 60 s. Prints a table,
# writes test/faults/results.json.
faults: test-deps
	SEALBRIDGE_FAULTS_N=10000 SEALBRIDGE_FLOOD_LINES=1000 SEALBRIDGE_STORM_LOGINS=200 SEALBRIDGE_BURST_LINES=5000 SEALBRIDGE_HOSTILE_S=60 \
	  SEALBRIDGE_FAULTS_OUT=$(CURDIR)/test/faults/results.json \
	  $(GO) test -tags $(TAGS),e2e -count=1 -timeout 240m -v -run 'TestFaults|TestFlood|TestReconnectStorm|TestBurst|TestHostileServer' ./test/faults/

# `make demo`: a homeserver, an IRC network and the bridge, all on loopback, until Ctrl-C.
demo: test-deps build
	$(GO) run -tags $(TAGS) ./test/demo -bridge ./sealbridge -dir ./demo

# `make bench`: the benchmark harness (bench/README.md); prints a table and writes bench/results.json.
bench:
	$(GO) run -tags $(TAGS) ./bench -out bench/results.json

# `make release`: static binaries for linux/amd64 and linux/arm64 with SHA256SUMS in dist/, versioned
# by the git tag (contrib/release.sh; installs Debian's aarch64 cross compiler when run as root).
release:
	GO=$(GO) bash contrib/release.sh

example-config: build
	rm -f example-config.yaml && ./sealbridge -e -c example-config.yaml

# `make docker-verify` (root): builds the Dockerfile with buildah from locally made base images (no
# registry, no Docker engine) and checks the image's first-run flow. REUSE_IMAGE=1 skips the rebuild.
docker-verify:
	bash test/docker/verify.sh

clean:
	rm -rf sealbridge demo dist
