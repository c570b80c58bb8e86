#!/bin/sh
# bench-wrk.sh — `make bench-wrk`: client_credentials, JWKS and discovery
# against a fresh broker on SQLite, driven by wrk (Debian package wrk), a
# load generator light enough that the broker gets most of the two cores.
# Each client_credentials run is followed by the signing floor measured the
# same minute (BenchmarkSign/AccessToken: one RS256 signature per response),
# so the ratio holds on a machine whose speed drifts.
#
# Environment: BENCH_DURATION (10s), BENCH_CONCURRENCY (8), BENCH_RUNS (2),
# BENCH_PORT (18475), BENCH_ALGORITHM (RS256; or ES256).
set -eu

duration=${BENCH_DURATION:-10s}
concurrency=${BENCH_CONCURRENCY:-8}
runs=${BENCH_RUNS:-2}
port=${BENCH_PORT:-18475}
algorithm=${BENCH_ALGORITHM:-RS256}

if ! command -v wrk >/dev/null 2>&1; then
	echo "bench-wrk: wrk is not installed (apt-get install -y wrk)" >&2
	exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
serve_pid=
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cd "$root"
CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -o "$tmp/" ./cmd/bridgekeeper
go test -c -o "$tmp/broker.test" ./broker/ >/dev/null
export BRIDGEKEEPER_SYSTEM_SECRET="${BRIDGEKEEPER_SYSTEM_SECRET:-$(head -c 32 /dev/urandom | base64)}"

dsn="sqlite:$tmp/bk.db"
target=http://127.0.0.1:$port
secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
"$tmp/bridgekeeper" migrate --dsn "$dsn" >/dev/null
printf %s "$secret" | "$tmp/bridgekeeper" client create --dsn "$dsn" --id bench-cc --secret-stdin \
	--grant client_credentials >/dev/null
"$tmp/bridgekeeper" serve --issuer "$target" --listen "127.0.0.1:$port" --dsn "$dsn" \
	--keys.algorithm "$algorithm" --log.level warn 2>"$tmp/serve.log" &
serve_pid=$!
for _ in $(seq 50); do
	curl -fs "$target/.well-known/openid-configuration" >/dev/null 2>&1 && break
	sleep 0.1
done

cat >"$tmp/cc.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "bench-cc:$secret" | base64 | tr -d '\n')"
EOF

rate() { # wrk arguments…: prints "req/s p50 p99" of one run, failing on non-2xx answers
	out=$(wrk -t2 -c"$concurrency" -d"$duration" --latency "$@")
	if printf '%s\n' "$out" | grep -q 'Non-2xx'; then
		printf '%s\n' "$out" >&2
		echo "bench-wrk: the broker answered with errors" >&2
		exit 1
	fi
	printf '%s\n' "$out" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "%.0f | %s | %s", r, p50, p99}'
}

echo "### wrk against a fresh broker on SQLite ($algorithm, concurrency $concurrency, $duration per run, $(nproc) cores)"
echo
echo "| operation | req/s | p50 | p99 | signing floor, same minute (req/s) |"
echo "|---|---|---|---|---|"
for i in $(seq "$runs"); do
	cc=$(rate -s "$tmp/cc.lua" "$target/oauth2/token")
	floor=$(BENCH_ALGORITHM=$algorithm "$tmp/broker.test" -test.run '^$' -test.bench 'Sign/AccessToken$' -test.benchtime 3s |
		awk '/req\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "req/s") printf "%.0f", $i}')
	echo "| client_credentials, run $i | $cc | $floor |"
done
echo "| jwks | $(rate "$target/.well-known/jwks.json") | |"
echo "| discovery | $(rate "$target/.well-known/openid-configuration") | |"
echo
echo "Broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$serve_pid/status)"
