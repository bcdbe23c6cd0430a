#!/usr/bin/env bash
# Side-by-side produce benchmark: skein (one broker, started with `skein dev`)
# against franz-go's in-memory test broker kfake (reference only), same
# client (`skein bench produce`), same machine, same run.
#
#   test/bench/compare.sh                 # 1 KiB and 100 B records, acks=all
#   NUM_1K=500000 NUM_100=2000000 test/bench/compare.sh
#   GROUP_NUM=500000 ...                  # records read by a group consumer (0: skip)
#
# Prints one line per run and a ratio table (skein / kfake).
set -euo pipefail
cd "$(dirname "$0")/../.."

SKEIN=${SKEIN_BIN:-bin/skein}
NUM_1K=${NUM_1K:-300000}
NUM_100=${NUM_100:-1500000}
ROUNDS=${ROUNDS:-1}
GROUP_NUM=${GROUP_NUM:-300000}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

[ -x "$SKEIN" ] || make build >/dev/null
go build -o "$work/kfakeref" ./test/bench/kfakeref

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

kport=$(free_port)
"$work/kfakeref" --port "$kport" >"$work/kfake.log" 2>&1 &
pids+=($!)
sport=$(free_port)
while [ "$sport" = "$kport" ] || [ "$((sport + 1))" = "$kport" ]; do sport=$(free_port); done
"$SKEIN" dev --brokers 1 --data-dir "$work/skein" --base-port "$sport" --log-level warn >"$work/skein.log" 2>&1 &
pids+=($!)
wait_port "$kport"
wait_port "$sport"

declare -A result
run() { # name port size num
	local name=$1 port=$2 size=$3 num=$4 topic="bench-$3-$RANDOM"
	local out
	out=$("$SKEIN" bench produce --bootstrap-server "127.0.0.1:$port" --topic "$topic" \
		--record-size "$size" --num-records "$num" --acks all --no-progress --json --log-level error)
	echo "$name ${size}B: $out"
	result["$name-$size"]=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["records_per_sec"], d["mb_per_sec"], d["p50_ms"], d["p99_ms"])' "$out")
}

for _ in $(seq 1 "$ROUNDS"); do
	for size in 1024 100; do
		num=$NUM_1K; [ "$size" = 100 ] && num=$NUM_100
		run kfake "$kport" "$size" "$num"
		run skein "$sport" "$size" "$num"
	done
done

# Group consumption: a 6-partition topic read by one consumer-group member
# (join, assignment, offset fetch, commits every 5 s and on close).
group_run() { # name port
	local name=$1 port=$2 topic="group-bench-$RANDOM" out
	"$SKEIN" topic create "$topic" --partitions 6 --bootstrap-server "127.0.0.1:$port" --log-level error >/dev/null
	"$SKEIN" bench produce --bootstrap-server "127.0.0.1:$port" --topic "$topic" --record-size 1024 \
		--num-records "$GROUP_NUM" --acks all --no-progress --json --log-level error >/dev/null
	out=$("$SKEIN" bench consume --bootstrap-server "127.0.0.1:$port" --topic "$topic" --group "g-$topic" \
		--num-records "$GROUP_NUM" --no-progress --json --log-level error)
	echo "$name group consume 1024B: $out"
	result["$name-group"]=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["records_per_sec"], d["mb_per_sec"], d["first_record_ms"])' "$out")
}
if [ "$GROUP_NUM" -gt 0 ]; then
	group_run kfake "$kport"
	group_run skein "$sport"
fi

printf '\n%-8s %-6s %14s %10s %9s %9s\n' size broker records/s MB/s p50_ms p99_ms
for size in 1024 100; do
	for name in kfake skein; do
		read -r rps mbs p50 p99 <<<"${result[$name-$size]}"
		printf '%-8s %-6s %14.0f %10.2f %9s %9s\n' "${size}B" "$name" "$rps" "$mbs" "$p50" "$p99"
	done
	read -r krps _ <<<"${result[kfake-$size]}"
	read -r srps _ <<<"${result[skein-$size]}"
	printf '%-8s ratio skein/kfake: %.2fx\n' "${size}B" "$(python3 -c "print($srps/$krps)")"
done
if [ "$GROUP_NUM" -gt 0 ]; then
	printf '\ngroup consume, 6 partitions, 1 KiB records\n%-6s %14s %10s %16s\n' broker records/s MB/s first_record_ms
	for name in kfake skein; do
		read -r rps mbs first <<<"${result[$name-group]}"
		printf '%-6s %14.0f %10.2f %16s\n' "$name" "$rps" "$mbs" "$first"
	done
	read -r krps _ <<<"${result[kfake-group]}"
	read -r srps _ <<<"${result[skein-group]}"
	printf 'ratio skein/kfake: %.2fx\n' "$(python3 -c "print($srps/$krps)")"
fi
