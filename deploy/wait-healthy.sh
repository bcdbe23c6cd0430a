#!/bin/sh
# wait-healthy.sh PROJECT COMPOSE_FILE [TIMEOUT_SECONDS]: waits until every
# container of the Compose project is running and healthy (its health
# check, `skein health`, passes). On timeout it prints each container's
# state, last health check output and log tail, and exits 1.
set -eu

project=${1:?usage: deploy/wait-healthy.sh PROJECT COMPOSE_FILE [TIMEOUT_SECONDS]}
file=${2:?usage: deploy/wait-healthy.sh PROJECT COMPOSE_FILE [TIMEOUT_SECONDS]}
timeout=${3:-120}
compose=${COMPOSE:-docker-compose}

start=$(date +%s)
last=""
while :; do
	ids=$($compose -p "$project" -f "$file" ps -q)
	if [ -z "$ids" ]; then
		echo "wait-healthy.sh: project $project has no containers" >&2
		exit 1
	fi
	# One line per container: name status health.
	states=$(docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids |
		sed 's|^/||' | sort)
	waiting=$(echo "$states" | awk '$2 != "running" || $3 != "healthy"' | awk '{print $1 "(" $2 "/" $3 ")"}' | tr '\n' ' ')
	now=$(date +%s)
	if [ -z "$waiting" ]; then
		echo "all $(echo "$states" | wc -l | tr -d ' ') containers healthy after $((now - start)) s"
		exit 0
	fi
	if [ "$waiting" != "$last" ]; then
		echo "$((now - start)) s: waiting for $waiting"
		last=$waiting
	fi
	if [ $((now - start)) -ge "$timeout" ]; then
		echo "wait-healthy.sh: not healthy after $timeout s:" >&2
		for id in $ids; do
			docker inspect --format '== {{.Name}}: {{.State.Status}}{{if .State.Health}}, {{.State.Health.Status}}; last check:{{range .State.Health.Log}}
   exit {{.ExitCode}}: {{.Output}}{{end}}{{end}}' "$id" >&2
			docker logs --tail 20 "$id" >&2 2>&1 || true
		done
		exit 1
	fi
	sleep 1
done
