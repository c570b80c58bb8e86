#!/bin/sh
# bench-load.sh — `make bench-load`: run cmd/loadgen against a fresh broker on
# SQLite and, when BRIDGEKEEPER_TEST_POSTGRES (or BENCH_POSTGRES_DSN) is set,
# on Postgres, and print one markdown table per backend (see BENCHMARKS.md).
#
# Environment: BENCH_DURATION (10s), BENCH_CONCURRENCY (8), BENCH_SCENARIOS
# (client_credentials,refresh,code,jwks), BENCH_PORT (18473),
# BENCH_ALGORITHM (RS256; or ES256).
set -eu

duration=${BENCH_DURATION:-10s}
concurrency=${BENCH_CONCURRENCY:-8}
scenarios=${BENCH_SCENARIOS:-client_credentials,refresh,code,jwks}
port=${BENCH_PORT:-18473}
algorithm=${BENCH_ALGORITHM:-RS256}
pg_dsn=${BENCH_POSTGRES_DSN:-${BRIDGEKEEPER_TEST_POSTGRES:-}}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
serve_pid=
schema=
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	[ -n "$schema" ] && psql -q "$pg_dsn" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cd "$root"
CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -o "$tmp/" ./cmd/bridgekeeper ./cmd/loadgen
export BRIDGEKEEPER_SYSTEM_SECRET="${BRIDGEKEEPER_SYSTEM_SECRET:-$(head -c 32 /dev/urandom | base64)}"

bench() { # name dsn
	name=$1 dsn=$2 target=http://127.0.0.1:$port
	"$tmp/bridgekeeper" migrate --dsn "$dsn" >/dev/null
	"$tmp/bridgekeeper" serve --issuer "$target" --listen "127.0.0.1:$port" --dsn "$dsn" \
		--keys.algorithm "$algorithm" --log.level warn 2>"$tmp/serve-$name.log" &
	serve_pid=$!
	echo "### $name ($algorithm, concurrency $concurrency, $duration per scenario, $(nproc) cores)"
	echo
	"$tmp/loadgen" --target "$target" --wait 30s --dsn "$dsn" --bridgekeeper "$tmp/bridgekeeper" \
		--scenarios "$scenarios" --concurrency "$concurrency" --duration "$duration" --format markdown
	echo
	echo "Broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$serve_pid/status)"
	echo
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=
}

bench sqlite "sqlite:$tmp/bk.db"

if [ -n "$pg_dsn" ]; then
	schema=bk_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
	psql -q "$pg_dsn" -c "CREATE SCHEMA $schema" >/dev/null
	case "$pg_dsn" in *\?*) sep='&' ;; *) sep='?' ;; esac
	bench postgres "$pg_dsn${sep}search_path=$schema"
else
	echo "(Postgres skipped: set BRIDGEKEEPER_TEST_POSTGRES or BENCH_POSTGRES_DSN)"
fi
