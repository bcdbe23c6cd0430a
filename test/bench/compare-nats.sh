#!/usr/bin/env bash
# Side-by-side replicated produce benchmark, same machine, same run:
#
#   skein:     `skein dev --brokers 3` (1 controller, 3 brokers in one
#              process), topics of replication factor 3 with
#              min.insync.replicas=2; `skein bench produce --acks all`
#              (idempotent franz-go producers)
#   JetStream: 3 nats-server processes in one cluster on loopback, each with
#              its own store dir; R3 file streams; `nats bench js pub async`
#
# Both acknowledge a write once a majority (JetStream) or
# min.insync.replicas=2 of the in-sync replicas (skein acks=all) have it.
# The systems run one after the other, never at the same time.
#
# Phases:
#   1. unthrottled, 1 KiB then 100 B records (NUM_1K, NUM_100 records; 0
#      skips the phase): one producer, one ordered log (1 partition / one
#      stream; JetStream 500 publishes in flight).
#   2. fixed rate, the latency scenario of issue 13: RATE msg/s (default
#      20000; "auto": half of JetStream's unthrottled 1 KiB rate; 0 skips)
#      of 1 KiB incompressible records from CLIENTS producers (default 4),
#      each with its own connection(s), open loop; WARMUP seconds (default
#      5) not measured, then RATE_SECONDS (default 30) measured; REPEAT
#      times (default 1), one report row per run. Latency per message, from
#      its publish call to its acknowledgement.
#      skein: a fresh topic of PARTITIONS partitions (default 6) per run;
#      `skein bench produce --clients --throughput --warmup --duration
#      --linger 0`.
#      JetStream: a fresh R3 stream per run (one stream: JetStream does not
#      partition); test/bench/natsref (nats.go async publishes, the same
#      pacing, warm-up and report as skein bench produce; a Go module of its
#      own, built by this script). NATS_RATE_TOOL=bench uses `nats bench js
#      pub async --clients --throughput` instead, after a separate warm-up
#      run (it has none); its latency is per batch of NATS_RATE_BATCH
#      (default 100) publishes less the pacing sleeps it asked for, so each
#      sleep's overshoot counts as latency: at 2000 msg/s its p50 read 4.8,
#      43 and 229 ms with batches of 10, 100 and 500. Only its msgs/s and
#      CPU are comparable.
# Every phase reports the servers' CPU time per GB (1e9 bytes) of
# acknowledged message bytes: skein's from `skein bench produce
# --server-pids` (the measured window), JetStream's from /proc/PID/stat of
# the 3 nats-server processes before and after the measured run.
#
#   test/bench/compare-nats.sh
#   NUM_1K=500000 NUM_100=3000000 REPEAT=3 test/bench/compare-nats.sh
#   ONLY=skein NUM_1K=0 NUM_100=0 REPEAT=3 test/bench/compare-nats.sh  # skein's fixed-rate phase alone
#
# ONLY=skein or ONLY=jetstream runs one system. nats-server and natscli are
# installed with `go install` into $NATS_GOBIN (default: a cache dir under
# $TMPDIR) when not on PATH; the binaries are never written into the
# repository.
set -euo pipefail
cd "$(dirname "$0")/../.."

SKEIN=${SKEIN_BIN:-bin/skein}
NUM_1K=${NUM_1K:-300000}
NUM_100=${NUM_100:-1000000}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-4}
PARTITIONS=${PARTITIONS:-6}
WARMUP=${WARMUP:-5}
RATE_SECONDS=${RATE_SECONDS:-30}
REPEAT=${REPEAT:-1}
ONLY=${ONLY:-}
NATS_RATE_TOOL=${NATS_RATE_TOOL:-natsref}
NATS_RATE_BATCH=${NATS_RATE_BATCH:-100}
NATS_SERVER_VERSION=${NATS_SERVER_VERSION:-v2.15.2}
NATSCLI_VERSION=${NATSCLI_VERSION:-v0.5.0}
NATS_GOBIN=${NATS_GOBIN:-${TMPDIR:-/tmp}/skein-bench-gobin}

case "$NATS_RATE_TOOL" in
natsref | bench) ;;
*) echo "NATS_RATE_TOOL=$NATS_RATE_TOOL: want natsref or bench" >&2; exit 2 ;;
esac
case "$ONLY" in
"" | skein | jetstream) ;;
*) echo "ONLY=$ONLY: want skein, jetstream or nothing (both)" >&2; exit 2 ;;
esac
run_skein() { [ "$ONLY" != jetstream ]; }
run_nats() { [ "$ONLY" != skein ]; }
if [ "$RATE" = auto ] && { ! run_nats || [ "$NUM_1K" = 0 ]; }; then
	echo "RATE=auto is half of JetStream's unthrottled 1 KiB rate: it needs JetStream and NUM_1K > 0" >&2
	exit 2
fi

work=$(mktemp -d)
pids=() client_ports=() route_ports=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

[ -x "$SKEIN" ] || make build >/dev/null

# Tools: PATH first, then NATS_GOBIN, else go install there.
tool() { # name module@version
	if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
	if [ ! -x "$NATS_GOBIN/$1" ]; then
		echo "installing $2 into $NATS_GOBIN" >&2
		mkdir -p "$NATS_GOBIN"
		(cd "$work" && GOBIN="$NATS_GOBIN" GOFLAGS=-mod=mod go install "$2") >&2
	fi
	echo "$NATS_GOBIN/$1"
}
if run_nats; then
	NATS_SERVER=$(tool nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
	NATS=$(tool nats "github.com/nats-io/natscli/nats@$NATSCLI_VERSION")
	if [ "$NATS_RATE_TOOL" = natsref ]; then
		NATSREF=$work/natsref
		(cd test/bench/natsref && go build -o "$NATSREF" .)
	fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
# cpu_seconds PID...: user+system CPU time of the processes (all their
# threads) so far, from /proc/PID/stat fields 14 and 15.
cpu_seconds() {
	local hz ticks=0 p
	hz=$(getconf CLK_TCK)
	for p in "$@"; do
		ticks=$((ticks + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
	done
	python3 -c "print($ticks / $hz)"
}
per_gb() { python3 -c "b = $2 * $3; print(round($1 / (b / 1e9), 2) if b else 0)"; } # cpu_s msgs size

versions="skein $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
run_nats && versions+="; $("$NATS_SERVER" --version); natscli $("$NATS" --version 2>&1)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $versions"

# Report rows: label|system|msgs/s|MiB/s|p50|p99|p99.9|max|over_50ms|cpu s/GB
rows=()
declare -A result # system-phase -> "msgs/s MiB/s p99_ms" for the ratios

# json_row label system json: a report row from the JSON of skein bench
# produce or natsref.
json_row() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[3]); f=d.get("failed", 0); print("%s|%s|%.0f|%.2f|%.2f|%.2f|%.2f|%.2f|%d|%.2f" % (sys.argv[1] + (" (%d refused)" % f if f else ""), sys.argv[2], d["records_per_sec"], d["mb_per_sec"], d["p50_ms"], d["p99_ms"], d["p999_ms"], d["max_ms"], d["over_50ms"], d["server_cpu_s_per_gb"]))' "$1" "$2" "$3"
}

# ---- JetStream: 3-node cluster, R3 file streams ---------------------------
if run_nats; then
	for i in 1 2 3; do client_ports+=("$(free_port)"); route_ports+=("$(free_port)"); done
	routes=$(printf 'nats://127.0.0.1:%s,' "${route_ports[@]}"); routes=${routes%,}
	urls=$(printf 'nats://127.0.0.1:%s,' "${client_ports[@]}"); urls=${urls%,}
fi
start_nats() {
	for i in 0 1 2; do
		mkdir -p "$work/nats/n$i"
		cat >"$work/nats/n$i.conf" <<-EOF
			server_name: n$i
			listen: 127.0.0.1:${client_ports[$i]}
			jetstream { store_dir: "$work/nats/n$i" }
			cluster { name: bench, listen: 127.0.0.1:${route_ports[$i]}, routes: [${routes//,/, }] }
		EOF
		"$NATS_SERVER" -c "$work/nats/n$i.conf" >"$work/nats/n$i.log" 2>&1 &
		pids+=($!)
	done
	nats_pids=("${pids[@]}")
	for p in "${client_ports[@]}"; do wait_port "$p"; done
	for _ in $(seq 1 150); do # until JetStream's meta group has a leader
		"$NATS" -s "$urls" account info >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "JetStream did not become ready" >&2
	return 1
}
nats_bench() { # out-file args...: one `nats bench js pub async` run
	local out=$1
	shift
	"$NATS" -s "$urls" bench js pub async "$@" --no-progress >"$out" 2>&1 || { cat "$out" >&2; return 1; }
}
nats_max() { # size num: one client, unthrottled
	local size=$1 num=$2 csv="$work/max-$1.csv" out="$work/max-$1.out" before cpu
	before=$(cpu_seconds "${nats_pids[@]}")
	nats_bench "$out" "bench.max.$size" --stream "b-max-$size" --create --replicas 3 --storage file \
		--msgs "$num" --size "$size" --csv "$csv"
	cpu=$(python3 -c "print($(cpu_seconds "${nats_pids[@]}") - $before)")
	grep -m1 'stats:' "$out" | sed "s/^/jetstream ${size}B unthrottled: /"
	# MsgsPerSec, BytesPerSec, Max, P50, P99, P99.9 latency in µs (columns 5, 6, 10, 11, 13, 14).
	read -r mps mib p50 p99 p999 max < <(awk -F, 'NR==2 { printf "%s %.2f %.2f %.2f %.2f %.2f\n", $5, $6/1048576, $11/1000, $13/1000, $14/1000, $10/1000 }' "$csv")
	rows+=("${size}B unthrottled|jetstream|$mps|$mib|$p50|$p99|$p999|$max|-|$(per_gb "$cpu" "$num" "$size")")
	result["jetstream-max-$size"]="$mps $mib $p99"
}
nats_rate() { # run: CLIENTS clients at RATE msg/s of 1 KiB, warm-up included
	local run=$1 stream="b-rate-$1" out row
	[ "$NATS_RATE_TOOL" = bench ] && { nats_rate_bench "$run"; return; }
	out=$("$NATSREF" --server "$urls" --stream "$stream" --subject "bench.rate.$run" --create --replicas 3 \
		--clients "$CLIENTS" --rate "$RATE" --warmup "${WARMUP}s" --duration "${RATE_SECONDS}s" --size 1024 \
		--server-pids "$(IFS=,; echo "${nats_pids[*]}")")
	"$NATS" -s "$urls" stream rm -f "$stream" >/dev/null 2>&1 || true
	echo "jetstream 1024B at $RATE msg/s, run $run: $out"
	row=$(json_row "1024B at $RATE msg/s" jetstream "$out")
	rows+=("$row")
	IFS='|' read -r _ _ mps mib _ p99 _ <<<"$row"
	result["jetstream-rate-$run"]="$mps $mib $p99"
}
nats_rate_bench() { # run: as nats_rate with nats bench, after a warm-up run
	local run=$1 stream="b-rate-$1" subject="bench.rate.$1" out="$work/rate-$1.out" before cpu num maxmb
	head -c 1024 /dev/urandom >"$work/payload-1k"
	num=$((RATE * RATE_SECONDS))
	maxmb=$(((RATE * (WARMUP + RATE_SECONDS) * 1024) / 1000000 + 256))
	local common=(--clients "$CLIENTS" --throughput "$RATE" --batch "$NATS_RATE_BATCH" --payload "$work/payload-1k" --size 1024)
	if [ "$WARMUP" != 0 ]; then
		nats_bench "$work/warmup-$run.out" "$subject" --stream "$stream" --create --replicas 3 --storage file \
			--maxbytes "${maxmb}MB" "${common[@]}" --duration "${WARMUP}s"
	else
		"$NATS" -s "$urls" stream add "$stream" --subjects "$subject" --replicas 3 --storage file \
			--max-bytes "${maxmb}MB" --defaults >/dev/null
	fi
	before=$(cpu_seconds "${nats_pids[@]}")
	nats_bench "$out" "$subject" --stream "$stream" "${common[@]}" --duration "${RATE_SECONDS}s"
	cpu=$(python3 -c "print($(cpu_seconds "${nats_pids[@]}") - $before)")
	"$NATS" -s "$urls" stream rm -f "$stream" >/dev/null 2>&1 || true
	# With one client the stats line holds everything; with more, the
	# aggregated line the rate and "latencies per operation" the quantiles.
	local parsed
	parsed=$(python3 - "$out" <<-'EOF'
		import re, sys
		out = open(sys.argv[1]).read()
		num = lambda s: float(s.replace(",", ""))
		m = re.search(r"aggregated stats: ([\d,]+) msgs/sec", out) or re.search(r"stats: ([\d,]+) msgs/sec", out)
		lines = [l for l in out.splitlines() if "latencies per operation" in l] or [l for l in out.splitlines() if " stats: " in l]
		lat = lambda name: num(re.search(name + r":? ([\d,.]+)us", lines[0]).group(1)) / 1000
		rate = num(m.group(1))
		print("%.0f %.2f %.2f %.2f %.2f %.2f" % (rate, rate * 1024 / 1048576, lat("P50"), lat("P99"), lat(r"P99\.9"), lat("max")))
	EOF
	) || { echo "cannot parse nats bench output:" >&2; cat "$out" >&2; return 1; }
	read -r mps mib p50 p99 p999 max <<<"$parsed"
	echo "jetstream (nats bench) 1024B at $RATE msg/s, run $run: $mps msgs/s, p50 $p50 ms, p99 $p99 ms, p99.9 $p999 ms, max $max ms, server CPU $cpu s"
	rows+=("1024B at $RATE msg/s|js-bench|$mps|$mib|$p50|$p99|$p999|$max|-|$(per_gb "$cpu" "$num" 1024)")
	result["jetstream-rate-$run"]="$mps $mib $p99"
}

if run_nats; then
	start_nats
	[ "$NUM_1K" != 0 ] && nats_max 1024 "$NUM_1K"
	[ "$NUM_100" != 0 ] && nats_max 100 "$NUM_100"
	if [ "$RATE" = auto ]; then
		read -r jrps _ <<<"${result[jetstream-max-1024]}"
		RATE=$(python3 -c "print(int(float('$jrps') / 2))")
	fi
	if [ "$RATE" != 0 ]; then
		for run in $(seq 1 "$REPEAT"); do nats_rate "$run"; done
	fi
	stop_all
fi

# ---- skein: 1 controller + 3 brokers, RF=3, min.insync.replicas=2 --------
if run_skein; then
	sport=$(free_port)
	for _ in 1 2 3 4 5; do
		ok=1
		for p in "${client_ports[@]}" "${route_ports[@]}"; do
			[ "$p" -ge "$sport" ] && [ "$p" -le "$((sport + 3))" ] && ok=0
		done
		[ "$ok" = 1 ] && break
		sport=$(free_port)
	done
fi
start_skein() {
	"$SKEIN" dev --brokers 3 --data-dir "$work/skein" --base-port "$sport" --log-level warn >"$work/skein.log" 2>&1 &
	skein_pid=$!
	pids+=($!)
	for _ in $(seq 1 300); do grep -q 'Bootstrap server:' "$work/skein.log" && return 0; sleep 0.1; done
	echo "skein dev did not start:" >&2; cat "$work/skein.log" >&2
	return 1
}
skein() { "$SKEIN" "$@" --bootstrap-server "127.0.0.1:$sport" --log-level error; }
skein_max() { # size num: one client, unthrottled, one partition
	local size=$1 num=$2 topic="bench-max-$1" out row
	skein topic create "$topic" --partitions 1 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
	out=$(skein bench produce --topic "$topic" --partitions 1 --record-size "$size" --num-records "$num" --acks all \
		--server-pids "$skein_pid" --no-progress --json)
	echo "skein ${size}B unthrottled: $out"
	row=$(json_row "${size}B unthrottled" skein "$out")
	rows+=("$row")
	IFS='|' read -r _ _ mps mib _ p99 _ <<<"$row"
	result["skein-max-$size"]="$mps $mib $p99"
}
skein_rate() { # run: CLIENTS clients at RATE msg/s of 1 KiB, warm-up included
	local run=$1 topic="bench-rate-$1" out row
	skein topic create "$topic" --partitions "$PARTITIONS" --replication-factor 3 --config min.insync.replicas=2 >/dev/null
	out=$(skein bench produce --topic "$topic" --partitions "$PARTITIONS" --record-size 1024 --clients "$CLIENTS" --throughput "$RATE" \
		--warmup "${WARMUP}s" --duration "${RATE_SECONDS}s" --acks all --linger 0 --server-pids "$skein_pid" \
		--no-progress --json)
	skein topic delete "$topic" >/dev/null 2>&1 || true
	echo "skein 1024B at $RATE msg/s, run $run: $out"
	row=$(json_row "1024B at $RATE msg/s" skein "$out")
	rows+=("$row")
	IFS='|' read -r _ _ mps mib _ p99 _ <<<"$row"
	result["skein-rate-$run"]="$mps $mib $p99"
}

if run_skein; then
	start_skein
	[ "$NUM_1K" != 0 ] && skein_max 1024 "$NUM_1K"
	[ "$NUM_100" != 0 ] && skein_max 100 "$NUM_100"
	if [ "$RATE" != 0 ]; then
		for run in $(seq 1 "$REPEAT"); do skein_rate "$run"; done
	fi
	stop_all
fi

# ---- report ---------------------------------------------------------------
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
[ "$RATE" != 0 ] && echo "fixed rate: $CLIENTS clients, 1 KiB, ${WARMUP} s warm-up, ${RATE_SECONDS} s measured; skein $PARTITIONS partitions, linger 0"
printf '%-22s %-10s %9s %8s %8s %8s %9s %8s %6s %9s\n' run system msgs/s MiB/s p50_ms p99_ms p99.9_ms max_ms '>50ms' 'cpu_s/GB'
for r in "${rows[@]}"; do
	IFS='|' read -r label system mps mib p50 p99 p999 max over cpu <<<"$r"
	printf '%-22s %-10s %9.0f %8.2f %8.2f %8.2f %9.2f %8.2f %6s %9s\n' "$label" "$system" "$mps" "$mib" "$p50" "$p99" "$p999" "$max" "$over" "$cpu"
done
ratio() { python3 -c "print('%.2fx' % (float('$1') / float('$2')))"; }
if [ -n "${result[jetstream-max-1024]:-}" ] && [ -n "${result[skein-max-1024]:-}" ]; then
	read -r _ j1mb _ <<<"${result[jetstream-max-1024]}"; read -r _ s1mb _ <<<"${result[skein-max-1024]}"
	echo "skein/JetStream MiB/s at 1 KiB: $(ratio "$s1mb" "$j1mb") (target >= 2x)"
fi
if [ -n "${result[jetstream-max-100]:-}" ] && [ -n "${result[skein-max-100]:-}" ]; then
	read -r j100 _ _ <<<"${result[jetstream-max-100]}"; read -r s100 _ _ <<<"${result[skein-max-100]}"
	echo "skein/JetStream msgs/s at 100 B: $(ratio "$s100" "$j100") (target >= 3x)"
fi
median_p99() { # system: the median p99 of its fixed-rate runs
	local v=() run
	for run in $(seq 1 "$REPEAT"); do
		[ -n "${result[$1-rate-$run]:-}" ] && v+=("$(cut -d' ' -f3 <<<"${result[$1-rate-$run]}")")
	done
	[ "${#v[@]}" -gt 0 ] && python3 -c "import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))" "${v[@]}"
}
if [ "$RATE" != 0 ] && run_skein && run_nats; then
	note=""
	[ "$NATS_RATE_TOOL" = bench ] && note="; nats bench's latency counts its pacing sleeps' overshoot, not comparable"
	echo "p99 at $RATE msg/s, 1 KiB (median of $REPEAT): skein $(median_p99 skein) ms, JetStream $(median_p99 jetstream) ms (target: skein <= JetStream$note)"
fi
