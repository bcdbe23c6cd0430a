#!/usr/bin/env bash
# Side-by-side replicated produce benchmark, same machine, same run:
#
#   skein:     `skein dev --brokers 3` (1 controller, 3 brokers), a topic with
#              1 partition, replication factor 3, min.insync.replicas=2;
#              `skein bench produce --acks all` (idempotent franz-go producer)
#   JetStream: 3 nats-server processes in one cluster on loopback, each with
#              its own store dir; an R3 file stream;
#              `nats bench js pub async` (one client, 500 in flight)
#
# Both systems run one ordered log replicated three times, one producer, and
# acknowledge a write once a majority (JetStream) or min.insync.replicas=2
# of the in-sync replicas (skein acks=all) have it. The systems run one
# after the other, never at the same time.
#
#   test/bench/compare-nats.sh
#   NUM_1K=500000 NUM_100=3000000 test/bench/compare-nats.sh
#   RATE=20000 test/bench/compare-nats.sh   # also compare p99 at a fixed load
#
# Phases: 1 KiB and 100 B records unthrottled; then, when RATE is set or
# left at "auto", both at the same offered load (half of JetStream's
# unthrottled 1 KiB rate unless RATE is a number) to compare p99 latency.
#
# nats-server and natscli are installed with `go install` into
# $NATS_GOBIN (default: a cache dir under $TMPDIR) when not on PATH; the
# binaries are never written into the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."

SKEIN=${SKEIN_BIN:-bin/skein}
NUM_1K=${NUM_1K:-300000}
NUM_100=${NUM_100:-1000000}
RATE=${RATE:-auto}
RATE_SECONDS=${RATE_SECONDS:-10}
NATS_SERVER_VERSION=${NATS_SERVER_VERSION:-v2.15.2}
NATSCLI_VERSION=${NATSCLI_VERSION:-v0.5.0}
NATS_GOBIN=${NATS_GOBIN:-${TMPDIR:-/tmp}/skein-bench-gobin}

work=$(mktemp -d)
pids=()
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
NATS_SERVER=$(tool nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
NATS=$(tool nats "github.com/nats-io/natscli/nats@$NATSCLI_VERSION")

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

echo "machine: $(nproc) cores; $("$NATS_SERVER" --version); natscli $("$NATS" --version 2>&1); skein $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# ---- JetStream: 3-node cluster, R3 file stream --------------------------
declare -A result # name-size -> "msgs/s MiB/s p99_ms"
client_ports=() route_ports=()
for i in 1 2 3; do client_ports+=("$(free_port)"); route_ports+=("$(free_port)"); done
routes=$(printf 'nats://127.0.0.1:%s,' "${route_ports[@]}"); routes=${routes%,}
urls=$(printf 'nats://127.0.0.1:%s,' "${client_ports[@]}"); urls=${urls%,}
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
	for p in "${client_ports[@]}"; do wait_port "$p"; done
	for _ in $(seq 1 150); do # until JetStream's meta group has a leader
		"$NATS" -s "$urls" account info >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "JetStream did not become ready" >&2
	return 1
}
nats_run() { # name size num [rate]
	local name=$1 size=$2 num=$3 rate=${4:-0} csv="$work/$1-$2.csv" extra=()
	[ "$rate" != 0 ] && extra=(--throughput "$rate")
	"$NATS" -s "$urls" bench js pub async "bench.$name.$size" --stream "b-$name-$size" --create \
		--replicas 3 --storage file --msgs "$num" --size "$size" --no-progress --csv "$csv" "${extra[@]}" \
		>"$work/$name-$size.out" 2>&1 || { cat "$work/$name-$size.out" >&2; return 1; }
	grep -m1 'stats:' "$work/$name-$size.out" | sed "s/^/jetstream $name ${size}B: /"
	# MsgsPerSec, BytesPerSec, P99LatencyMicroSecs (columns 5, 6, 13).
	result["$name-$size"]=$(awk -F, 'NR==2 { printf "%s %.2f %.2f", $5, $6/1048576, $13/1000 }' "$csv")
}

# ---- skein: 1 controller + 3 brokers, RF=3, min.insync.replicas=2 --------
sport=$(free_port)
for _ in 1 2 3 4 5; do
	ok=1
	for p in "${client_ports[@]}" "${route_ports[@]}"; do
		[ "$p" -ge "$sport" ] && [ "$p" -le "$((sport + 3))" ] && ok=0
	done
	[ "$ok" = 1 ] && break
	sport=$(free_port)
done
start_skein() {
	"$SKEIN" dev --brokers 3 --data-dir "$work/skein" --base-port "$sport" --log-level warn >"$work/skein.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 300); do grep -q 'Bootstrap server:' "$work/skein.log" && return 0; sleep 0.1; done
	echo "skein dev did not start:" >&2; cat "$work/skein.log" >&2
	return 1
}
skein_run() { # name size num [rate]
	local name=$1 size=$2 num=$3 rate=${4:--1} topic="bench-$1-$2" out
	"$SKEIN" topic create "$topic" --partitions 1 --replication-factor 3 --config min.insync.replicas=2 \
		--bootstrap-server "127.0.0.1:$sport" --log-level error >/dev/null
	out=$("$SKEIN" bench produce --bootstrap-server "127.0.0.1:$sport" --topic "$topic" \
		--record-size "$size" --num-records "$num" --throughput "$rate" --acks all --no-progress --json --log-level error)
	echo "skein $name ${size}B: $out"
	result["skein-$name-$size"]=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["records_per_sec"], round(d["mb_per_sec"], 2), d["p99_ms"])' "$out")
}

start_nats
nats_run max 1024 "$NUM_1K"
nats_run max 100 "$NUM_100"
if [ "$RATE" != 0 ]; then
	if [ "$RATE" = auto ]; then
		read -r jrps _ <<<"${result[max-1024]}"
		RATE=$(python3 -c "print(int(float('$jrps') / 2))")
	fi
	nats_run rate 1024 "$((RATE * RATE_SECONDS))" "$RATE"
fi
stop_all

start_skein
skein_run max 1024 "$NUM_1K"
skein_run max 100 "$NUM_100"
if [ "$RATE" != 0 ]; then
	skein_run rate 1024 "$((RATE * RATE_SECONDS))" "$RATE"
fi
stop_all

# ---- report ---------------------------------------------------------------
printf '\n%-22s %-10s %12s %9s %9s\n' run system msgs/s MiB/s p99_ms
row() { read -r a b c <<<"$3"; printf '%-22s %-10s %12.0f %9.2f %9.2f\n' "$1" "$2" "$a" "$b" "$c"; }
for size in 1024 100; do
	row "${size}B unthrottled" jetstream "${result[max-$size]}"
	row "${size}B unthrottled" skein "${result[skein-max-$size]}"
done
if [ "$RATE" != 0 ]; then
	row "1024B at $RATE msg/s" jetstream "${result[rate-1024]}"
	row "1024B at $RATE msg/s" skein "${result[skein-rate-1024]}"
fi
ratio() { python3 -c "print('%.2fx' % (float('$1') / float('$2')))"; }
read -r _ j1mb _ <<<"${result[max-1024]}"; read -r _ s1mb _ <<<"${result[skein-max-1024]}"
read -r j100 _ _ <<<"${result[max-100]}"; read -r s100 _ _ <<<"${result[skein-max-100]}"
echo
echo "skein/JetStream MiB/s at 1 KiB: $(ratio "$s1mb" "$j1mb") (target >= 2x)"
echo "skein/JetStream msgs/s at 100 B: $(ratio "$s100" "$j100") (target >= 3x)"
if [ "$RATE" != 0 ]; then
	read -r _ _ jp99 <<<"${result[rate-1024]}"; read -r _ _ sp99 <<<"${result[skein-rate-1024]}"
	echo "p99 at $RATE msg/s, 1 KiB: skein ${sp99} ms, JetStream ${jp99} ms (target: skein <= JetStream)"
fi
