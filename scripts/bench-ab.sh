#!/bin/sh
# bench-ab.sh — `make bench-ab A=/path/to/old/bridgekeeper [B=…]`: two
# Bridgekeeper builds side by side, to see what a change did on a machine
# whose speed drifts. Both serve at once (SQLite, fresh databases, ports
# BENCH_PORT and BENCH_PORT+1) and loadgen drives them alternately, one
# short run each per round, so both see the same machine; it prints each
# run and the means: req/s and the server's CPU time per response
# (loadgen --server-pid, set-up excluded). B defaults to this tree's build.
#
# Environment: A (required), B, BENCH_ALGORITHM (RS256), BENCH_SCENARIO
# (client_credentials; or refresh), BENCH_DURATION (4s), BENCH_ROUNDS (5),
# BENCH_CONCURRENCY (8), BENCH_PORT (18490).
set -eu

[ -n "${A:-}" ] && [ -x "$A" ] || { echo "bench-ab: set A=/path/to/bridgekeeper (the build to compare with)" >&2; exit 2; }
alg=${BENCH_ALGORITHM:-RS256}
scenario=${BENCH_SCENARIO:-client_credentials}
duration=${BENCH_DURATION:-4s}
rounds=${BENCH_ROUNDS:-5}
concurrency=${BENCH_CONCURRENCY:-8}
port=${BENCH_PORT:-18490}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cd "$root"
CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -o "$tmp/" ./cmd/bridgekeeper ./cmd/loadgen
b=${B:-$tmp/bridgekeeper}
export BRIDGEKEEPER_SYSTEM_SECRET="${BRIDGEKEEPER_SYSTEM_SECRET:-$(head -c 32 /dev/urandom | base64)}"

# serve name binary port: a fresh broker; sets pid_<name>.
serve() {
	"$2" migrate --dsn "sqlite:$tmp/$1.db" >/dev/null
	"$2" serve --issuer "http://127.0.0.1:$3" --listen "127.0.0.1:$3" --dsn "sqlite:$tmp/$1.db" \
		--keys.algorithm "$alg" --log.level warn >/dev/null 2>"$tmp/$1.log" &
	eval "pid_$1=$!"
	pids="$pids $!"
	i=0
	until curl -fsS -o /dev/null "http://127.0.0.1:$3/.well-known/openid-configuration" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "bench-ab: $2 did not start:" >&2; cat "$tmp/$1.log" >&2; exit 1; }
		sleep 0.1
	done
}
serve a "$A" "$port"
serve b "$b" $((port + 1))

# run name port: one loadgen run; prints "name req/s cpu-µs".
run() {
	eval "pid=\$pid_$1"
	"$tmp/loadgen" --target "http://127.0.0.1:$2" --dsn "sqlite:$tmp/$1.db" --bridgekeeper "$tmp/bridgekeeper" \
		--scenarios "$scenario" --concurrency "$concurrency" --duration "$duration" --format markdown \
		--server-pid "$pid" 2>>"$tmp/loadgen.log" |
		awk -F'|' -v n="$1" 'NR > 2 && NF > 9 { gsub(/ /, "", $5); gsub(/ /, "", $10); print n, $5, $10 }'
}

echo "$alg $scenario, concurrency $concurrency, $duration per run, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A: $A"
echo "B: $b"
r=1
while [ $r -le "$rounds" ]; do
	run a "$port"
	run b $((port + 1))
	r=$((r + 1))
done | tee "$tmp/runs"
awk '{ n[$1]++; rate[$1] += $2; cpu[$1] += $3 }
	END { for (k in n) printf "%s mean: %.0f req/s, %.0f µs CPU per response\n", toupper(k), rate[k] / n[k], cpu[k] / n[k] }' "$tmp/runs" | sort
