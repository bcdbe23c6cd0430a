# Skein build and test tiers. `make test` needs nothing but Go (kcat tests
# skip when kcat is absent, except under CI=true).

GO        ?= go
BIN       := bin/skein
# Unit-test flags: the race detector and the invariant checks.
UNIT_FLAGS ?= -race -tags invariants
# Every package except the end-to-end tests under test/.
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v '/test\(/\|$$\)')
# Fuzz time per target: short in `make test`, longer in `make fuzz`.
FUZZTIME_TEST ?= 10s
FUZZTIME      ?= 2m
# Fuzz targets as package:FuzzName (one -fuzz per go test invocation).
FUZZ_TARGETS := ./storage:FuzzRecovery ./dataplane/wire:FuzzRequestDecoding
# Bound on the end-to-end tests (they start real processes).
E2E_TIMEOUT ?= 8m

.PHONY: all build run test unit fuzz-short fuzz e2e bench bench-nats chaos clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/skein

# A local cluster (1 controller, 3 brokers) in one process; it prints the
# bootstrap server and commands to try. Ctrl-C stops it.
run: build
	$(BIN) dev

test: build
	$(GO) vet ./...
	$(MAKE) unit
	$(MAKE) fuzz-short
	$(MAKE) e2e

unit:
	$(GO) test $(UNIT_FLAGS) $(UNIT_PKGS)

# Runs each fuzz target for FUZZTIME_TEST. A missing target fails the run.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_TEST)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		if ! $(GO) test -list "^$$name\$$" $$pkg 2>/dev/null | grep -qx "$$name"; then \
			echo "fuzz target $$name not found in $$pkg" >&2; exit 1; \
		fi; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run=XXX -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg; \
	done

# End-to-end tests: real controller and broker processes on loopback,
# driven by franz-go, kcat and the skein CLI. They use the binary built
# above.
e2e: build
	SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./test/...

# Benchmarks, never part of `make test`.
bench: build
	$(GO) test -run=XXX -bench=. -benchmem ./storage/... ./dataplane/...
	@if [ -x test/bench/compare.sh ]; then test/bench/compare.sh; \
	else echo "test/bench/compare.sh not present; skipped"; fi

# Replicated produce, skein (3 brokers, RF=3, min.insync.replicas=2,
# acks=all) against a 3-node NATS JetStream cluster with an R3 file stream,
# side by side. Installs nats-server and natscli with `go install` into a
# temporary GOBIN when they are not on PATH. Never part of `make test`.
bench-nats: build
	SKEIN_BIN=$(CURDIR)/$(BIN) test/bench/compare-nats.sh

clean:
	rm -rf bin skein-data
	$(GO) clean -testcache

# The long fault test (test/chaos_test.go, TestChaosLong): random faults
# (SIGKILL, SIGSTOP, network cut, controller-connection cut) for several
# minutes under an acks=all workload. Never part of `make test`.
chaos: build
	SKEIN_CHAOS=long SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -run '^TestChaosLong$$' -v ./test/
