# Skein build and test tiers. `make test` needs nothing but Go (kcat tests
# skip when kcat is absent, except under CI=true).

GO        ?= go
BIN       := bin/skein
# Unit-test flags: the race detector and the invariant checks.
UNIT_FLAGS ?= -race -tags invariants
# Every package except the end-to-end tests under test/.
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v '/test\(/\|$$\)')
# Fuzz time per target in `make fuzz`.
FUZZTIME      ?= 2m
# Fuzz targets as package:FuzzName:budget, the budget being the short run of
# `make test`: Nx runs, about 10 s each here. Counts, not durations: a timed
# run can end in a Go fuzz-coordinator race ("context deadline exceeded"
# after the last input, seen in CI on FuzzDecodeMetadataBatch 10s). One
# -fuzz per go test invocation.
FUZZ_TARGETS := ./storage:FuzzRecovery:4000x ./storage:FuzzRecoveryCompacted:2000x \
	./storage:FuzzRecoveryTxn:1500x \
	./storage:FuzzClean:300x ./storage:FuzzCleanTxn:500x ./dataplane/group:FuzzLoadOffsetsPartition:1000x \
	./internal/wire:FuzzRequestDecoding:60000x \
	./controller/metalog:FuzzDecodeMetadataBatch:60000x \
	./controller/metalog:FuzzDecodeMetadataDeltas:60000x \
	./internal/security/sasl:FuzzSASLExchange:20000x
# Fuzzed logs live on tmpfs where there is one: fuzzing checks logic, not
# durability (crash behaviour is TestLogModel's, over a crashable dir), and
# on disk a FuzzClean input with hundreds of tiny segments spends seconds in
# fsyncs, which the fuzz coordinator can take for a hung worker.
FUZZ_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm)
# Bound on the end-to-end tests (they start real processes).
E2E_TIMEOUT ?= 8m
# The end-to-end tests' data directories (t.TempDir) live on tmpfs where
# there is one, for the same reason: they check the cluster's logic, and a
# machine crash is simulated from each broker's fsync journal
# (test/harness/crash.go), not by the disk. On a disk shared with other
# work, fsyncs and removing thousands of segment files took seconds per
# test (TestScaleBrokerRestartISR: 40 s on disk, 7 s on tmpfs, same load).
# E2E_TMPDIR= (empty) keeps them on $TMPDIR.
E2E_TMPDIR ?= $(FUZZ_TMPDIR)

.PHONY: all build run test unit fuzz-short fuzz e2e test-slow bench bench-nats bench-latency bench-scale bench-reassign chaos clean \
	image compose-up compose-down chaos-docker

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

# Runs each fuzz target for its short budget; `make fuzz` for FUZZTIME.
# A missing target fails the run.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz SHORT=1

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$(FUZZTIME); \
		if [ -n "$(SHORT)" ]; then budget=$${rest#*:}; fi; \
		if ! $(GO) test -list "^$$name\$$" $$pkg 2>/dev/null | grep -qx "$$name"; then \
			echo "fuzz target $$name not found in $$pkg" >&2; exit 1; \
		fi; \
		echo "fuzz $$pkg $$name for $$budget"; \
		$(if $(FUZZ_TMPDIR),TMPDIR=$(FUZZ_TMPDIR)) $(GO) test -run=XXX -fuzz="^$$name\$$" -fuzztime=$$budget -fuzzminimizetime=10x $$pkg; \
	done

# End-to-end tests: real controller and broker processes on loopback,
# driven by franz-go, kcat and the skein CLI. They use the binary built
# above.
e2e: build
	$(if $(E2E_TMPDIR),TMPDIR=$(E2E_TMPDIR)) SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./test/...

# The end-to-end tests too slow for `make test` (tens of seconds each; they
# skip unless SKEIN_SLOW_TESTS=1): SLOW_TESTS names them, a -run pattern.
# Never part of `make test` or .ci/run.
SLOW_TESTS ?= ^(TestReassignThrottle|TestFranzGoSCRAMSuite)$$
test-slow: build
	SKEIN_SLOW_TESTS=1 SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -run '$(SLOW_TESTS)' -v ./test/

# Benchmarks, never part of `make test`.
bench: build
	$(GO) test -run=XXX -bench=. -benchmem ./storage/... ./dataplane/...
	@if [ -x test/bench/compare.sh ]; then test/bench/compare.sh; \
	else echo "test/bench/compare.sh not present; skipped"; fi

# Replicated produce, skein (3 brokers, RF=3, min.insync.replicas=2,
# acks=all) against a 3-node NATS JetStream cluster with an R3 file stream,
# side by side; the last phase is bench-latency's fixed-load scenario for
# both (JetStream's load from test/bench/natsref, a module of its own).
# Installs nats-server and natscli with `go install` into a temporary GOBIN
# when they are not on PATH. Never part of `make test`.
bench-nats: build
	SKEIN_BIN=$(CURDIR)/$(BIN) test/bench/compare-nats.sh

# Produce latency at a fixed load (issue 13), skein alone: `skein dev`
# (3 brokers), a topic of 6 partitions, RF 3, min.insync.replicas=2; 4
# clients at 20,000 msg/s of 1 KiB, acks=all, linger 0, 5 s warm-up, 30 s
# measured; REPEAT runs (default 3), each a row with p50/p99/p99.9/max,
# records over 50 ms and the brokers' CPU s/GB. RATE, CLIENTS, PARTITIONS,
# WARMUP and RATE_SECONDS override the scenario (see
# test/bench/compare-nats.sh, whose fixed-rate phase this is; `make
# bench-nats` runs it against JetStream too). Never part of `make test`.
bench-latency: REPEAT ?= 3
bench-latency: build
	ONLY=skein NUM_1K=0 NUM_100=0 REPEAT=$(REPEAT) SKEIN_BIN=$(CURDIR)/$(BIN) test/bench/compare-nats.sh

# Metadata at scale (issue 11): 3 controllers + 3 brokers as processes,
# BENCH_PARTITIONS (default 10000) partitions of RF 3 in topics of 100;
# prints create time, idle CPU, RSS, broker kill/restart, controller
# failover and snapshot figures (see test/bench/scale/main.go), e.g.
# `make bench-scale BENCH_PARTITIONS=3000`. Every phase is bounded; one run
# takes at most about 10 minutes. BENCH_PROFILE=DIR saves each node's CPU
# profile over the idle window; BENCH_IDLE_ONLY=1 stops after it. Never
# part of `make test`.
bench-scale: build
	SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) run ./test/bench/scale

# Partition reassignment (issue 12): 1 controller + 4 brokers as
# processes; a partition of BENCH_MB MB (default 200) on broker 101 gets a
# replica on 104, unthrottled and with --throttle BENCH_THROTTLE (10MB/s),
# under a fixed-rate acks=all load (BENCH_LOAD_RATE, 5000 records/s of
# 1 KiB) to a partition on the same brokers, after a baseline of the load
# alone; prints copy time, MB/s and the load's p50/p99/p99.9/max per phase
# (see test/bench/reassign/main.go). Never part of `make test`.
bench-reassign: build
	SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) run ./test/bench/reassign

clean:
	rm -rf bin skein-data
	$(GO) clean -testcache

# The long fault test (test/chaos_test.go, TestChaosLong): random faults
# (SIGKILL, SIGSTOP, network cut, controller-connection cut, machine crash,
# crash right after a leader change) for CHAOS_FOR under an acks=all
# workload on topics with tiny segments and retention running, and a
# transactional workload with read_committed checks (test/chaos_txn_test.go), e.g.
# `make chaos CHAOS_FOR=10m`. Never part of `make test`.
CHAOS_FOR     ?= 6m
CHAOS_TIMEOUT ?= 40m
chaos: build
	SKEIN_CHAOS=long SKEIN_CHAOS_FOR=$(CHAOS_FOR) SKEIN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -run '^TestChaosLong$$' -v ./test/

# Containers (deploy/): `make image` builds the FROM-scratch image of the
# static binary (IMAGE, default skein:dev); `make compose-up` starts
# deploy/docker-compose.yml (3 controllers, 3 brokers, project
# COMPOSE_PROJECT) and waits until every container is healthy (at most
# COMPOSE_WAIT seconds); `make compose-down` removes its containers,
# network and volumes (the data).
COMPOSE         ?= docker-compose
COMPOSE_FILE    := deploy/docker-compose.yml
COMPOSE_PROJECT ?= skein
COMPOSE_WAIT    ?= 120
IMAGE           ?= skein:dev

image: build
	deploy/build-image.sh $(BIN) $(IMAGE)

compose-up: image
	SKEIN_IMAGE=$(IMAGE) $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) up -d
	COMPOSE="$(COMPOSE)" deploy/wait-healthy.sh $(COMPOSE_PROJECT) $(COMPOSE_FILE) $(COMPOSE_WAIT)
	@echo
	@echo "skein is up: 3 controllers, 3 brokers (project $(COMPOSE_PROJECT), image $(IMAGE))."
	@echo "  bootstrap server (from this host): 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
	@echo "  kcat -b 127.0.0.1:19092 -L"
	@echo "  $(BIN) topic create demo --partitions 3 --bootstrap-server 127.0.0.1:19092"
	@echo "  $(BIN) cluster describe --bootstrap-server 127.0.0.1:19092"
	@echo "  $(BIN) top --bootstrap-server 127.0.0.1:19092"
	@echo "  metrics: http://127.0.0.1:18081/metrics (broker-1; 18082, 18083)"
	@echo "  from a container on the network $(COMPOSE_PROJECT)_skein: broker-1:9092,broker-2:9092,broker-3:9092"
	@echo "  logs: $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) logs -f broker-1"
	@echo "  stop and remove everything, data included: make compose-down"

compose-down:
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) --profile monitoring down -v --remove-orphans

# The long fault test across containers (test/compose_faults_test.go,
# TestComposeFaultsLong): the Compose cluster of deploy/ (a project, image
# and host ports of its own) under `skein verify workload` while Docker
# kills a partition leader's container and the active controller's,
# pauses a broker, cuts one from the network, isolates the active
# controller, cuts a broker and a controller off together and restarts
# every node one by one; after each, no anomaly, identical replicas, full
# ISRs. CHAOS_DOCKER_ROUNDS rounds of all seven, e.g. `make chaos-docker
# CHAOS_DOCKER_ROUNDS=3`; CHAOS_DOCKER_FAULTS=pause,net-cut picks faults
# (leader-kill, controller-kill, pause, net-cut, ctrl-isolate, minority,
# rolling-restart). A summary table at the end; the histories and the
# containers' logs are kept in a directory it names. `make test` runs three
# of the faults (TestComposeFaults). Never part of `make test`.
CHAOS_DOCKER_ROUNDS  ?= 2
CHAOS_DOCKER_FAULTS  ?=
CHAOS_DOCKER_TIMEOUT ?= 60m
chaos-docker: build
	SKEIN_CHAOS_DOCKER=long SKEIN_CHAOS_DOCKER_ROUNDS=$(CHAOS_DOCKER_ROUNDS) SKEIN_CHAOS_DOCKER_FAULTS=$(CHAOS_DOCKER_FAULTS) \
		SKEIN_BIN=$(CURDIR)/$(BIN) \
		$(GO) test -count=1 -timeout $(CHAOS_DOCKER_TIMEOUT) -run '^TestComposeFaultsLong$$' -v ./test/
