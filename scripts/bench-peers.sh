#!/bin/sh
# bench-peers.sh — `make bench-peers DEX=/path/to/dex`: Bridgekeeper beside
# Dex on this machine, in one run, driven by the same load tool
# (cmd/loadgen) at the same concurrency with the same signing algorithm:
#
#   client_credentials  one signed access token per response (Dex stores
#                       nothing for it)
#   refresh             each worker redeems its own user's refresh chain
#                       (an access and an ID token per response; both sides
#                       rotate the refresh token)
#
# Bridgekeeper runs on SQLite (a WAL file, every token recorded); Dex on its
# memory storage and on its sqlite3 storage. The three servers are measured
# in turn, scenario by scenario, in short runs (BENCH_ROUNDS rounds of
# BENCH_DURATION each), so each comparison is made within seconds on the
# same machine; the last row of each scenario is the median of the
# rounds' ratios (a shared VM's speed drifts by a third within a minute,
# more than the gaps measured). The server's CPU time per response is
# measured by loadgen (--server-pid) over each run alone. Without a Dex binary (DEX, or
# dex on PATH) it says so and exits 0; build one from
# github.com/dexidp/dex outside this repository (CGO_ENABLED=1 for sqlite3):
#
#   git clone https://github.com/dexidp/dex /tmp/dex && (cd /tmp/dex && go build -o /tmp/dex/bin/dex ./cmd/dex)
#   make bench-peers DEX=/tmp/dex/bin/dex
#
# DEX_CLIENT_CREDENTIALS may name another Dex binary for the
# client_credentials runs: Dex's releases up to 2.45.1 lack that grant, and
# its master (December 2026) has it but hangs on every refresh (a storage
# transaction calls back into storage). A run that fails or hangs is
# reported as such (each is cut off after its duration + 60 s).
#
# BENCH_BRIDGEKEEPER may name a bridgekeeper binary to measure instead of
# this tree's (another build, for a before/after beside the same Dex).
# `make bench-peers CRYPTO=boring` builds this tree's with BoringCrypto; the
# heading of each table says which implementation the broker signed with.
#
# Environment: DEX, DEX_CLIENT_CREDENTIALS, BENCH_BRIDGEKEEPER, BENCH_DURATION (5s), BENCH_CONCURRENCY (8),
# BENCH_ROUNDS (5), BENCH_ALGORITHMS ("RS256 ES256"; ES256 runs
# client_credentials only), BENCH_PORT (18480; it uses three ports from it).
set -eu

dex=${DEX:-$(command -v dex || true)}
if [ -z "$dex" ] || [ ! -x "$dex" ]; then
	echo "bench-peers: skipped: no Dex binary (set DEX=/path/to/dex, built from github.com/dexidp/dex)"
	exit 0
fi
dex_cc=${DEX_CLIENT_CREDENTIALS:-$dex}
# Dex's master has client_credentials behind this flag (ignored by 2.45).
export DEX_CLIENT_CREDENTIAL_GRANT_ENABLED_BY_DEFAULT=true
duration=${BENCH_DURATION:-5s}
concurrency=${BENCH_CONCURRENCY:-8}
rounds=${BENCH_ROUNDS:-5}
algorithms=${BENCH_ALGORITHMS:-RS256 ES256}
port=${BENCH_PORT:-18480}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=
rss_dex=
stop() { # a server stuck in a hung request would wait for it on SIGTERM
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	pids=
}
cleanup() {
	set +e
	stop
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# crypto_of binary: the crypto implementation it was built with.
crypto_of() {
	if go version -m "$1" 2>/dev/null | grep -q 'GOEXPERIMENT=.*boringcrypto'; then echo BoringCrypto; else echo Go; fi
}

cd "$root"
CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -o "$tmp/" ./cmd/bridgekeeper ./cmd/loadgen
[ -z "${BENCH_BRIDGEKEEPER:-}" ] || cp "$BENCH_BRIDGEKEEPER" "$tmp/bridgekeeper"
export BRIDGEKEEPER_SYSTEM_SECRET="${BRIDGEKEEPER_SYSTEM_SECRET:-$(head -c 32 /dev/urandom | base64)}"

# The benchmark's users and clients (loopback only; the password is no
# secret: bcrypt of "bench-peer-password", cost 10).
user_password=bench-peer-password
user_hash='$2a$10$p1PNr5V4gweJyXvFPOXvOeKnvesTSTBUb9DAL7ygPx8NkOmWj.LSq'
client_secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

dex_config() { # file port storage algorithm
	{
		echo "issuer: http://127.0.0.1:$2/dex"
		case $3 in
		memory) printf 'storage:\n  type: memory\n' ;;
		sqlite3) printf 'storage:\n  type: sqlite3\n  config:\n    file: %s\n' "$tmp/dex-$2.db" ;;
		esac
		printf 'web:\n  http: 127.0.0.1:%s\n' "$2"
		printf 'logger:\n  level: error\n'
		# RS256 is Dex's default (and only, before 2.46) algorithm.
		[ "$4" = RS256 ] || printf 'signer:\n  type: local\n  config:\n    keysRotationPeriod: 6h\n    algorithm: %s\n' "$4"
		printf 'oauth2:\n  passwordConnector: local\n  skipApprovalScreen: true\n'
		printf 'enablePasswordDB: true\n'
		printf 'staticClients:\n'
		printf -- '- id: bench\n  name: bench\n  secret: %s\n  redirectURIs: ["http://127.0.0.1:9/callback"]\n' "$client_secret"
		printf 'staticPasswords:\n'
		for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
			printf -- '- email: "bench%s@example.com"\n  hash: "%s"\n  username: "bench%s"\n  userID: "bench-user-%s"\n' \
				"$i" "$user_hash" "$i" "$i"
		done
	} >"$1"
}

ready() { # url: waits up to 30 s for its discovery document
	i=0
	until curl -fsS -o /dev/null "$1/.well-known/openid-configuration" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 300 ] && return 1
		sleep 0.1
	done
}

# rate server scenario: one loadgen run; prints req/s, p50, p99, errors
# and the server's CPU time per request in µs (user + system, measured by
# loadgen over the run itself, set-up excluded), or "- - - - -" when the
# server is down or the run failed.
rate() {
	eval "up=\$up_$1"
	if [ "$up" != yes ]; then
		echo "- - - - -"
		return
	fi
	case $1 in
	bk) args="--target http://127.0.0.1:$port --dsn sqlite:$tmp/bk-$alg.db --bridgekeeper $tmp/bridgekeeper --server-pid $bk_pid" ;;
	dexmem) args="--target http://127.0.0.1:$((port + 1))/dex --token-url http://127.0.0.1:$((port + 1))/dex/token --server-pid $dm_pid" ;;
	dexsql) args="--target http://127.0.0.1:$((port + 2))/dex --token-url http://127.0.0.1:$((port + 2))/dex/token --server-pid $ds_pid" ;;
	esac
	case $1 in
	dex*) args="$args --cc-client-id bench --cc-client-secret $client_secret --client-id bench --client-secret $client_secret
		--password-grant --email bench%d@example.com --password $user_password" ;;
	esac
	# shellcheck disable=SC2086
	if ! timeout "$(($(echo "$duration" | tr -d s) + 60))" "$tmp/loadgen" $args --scenarios "$2" \
		--concurrency "$concurrency" --duration "$duration" --format markdown 2>>"$tmp/loadgen.log" >"$tmp/run.md" ||
		! grep -q '^| [a-z]' "$tmp/run.md" || grep -q '^| [a-z_ ()]* | 0 |' "$tmp/run.md"; then
		echo "bench-peers: the $2 run against $1 failed or hung; it is left out" >&2
		echo "- - - - -"
		return
	fi
	awk -F'|' 'NR > 2 && NF > 9 {
		for (i = 3; i <= 10; i++) gsub(/ |ms/, "", $i)
		printf "%s %s %s %s %s\n", $5, $6, $8, $4, $10 }' "$tmp/run.md" | head -1
}

# median: the median of the numbers on standard input ("—" for none).
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "—"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# start_dex binary: a Dex on memory storage and one on sqlite3.
start_dex() {
	dex_config "$tmp/dex-mem.yaml" $((port + 1)) memory "$alg"
	rm -f "$tmp/dex-$((port + 2)).db"
	dex_config "$tmp/dex-sql.yaml" $((port + 2)) sqlite3 "$alg"
	"$1" serve "$tmp/dex-mem.yaml" >/dev/null 2>>"$tmp/dex-mem.log" &
	dm_pid=$!
	"$1" serve "$tmp/dex-sql.yaml" >/dev/null 2>>"$tmp/dex-sql.log" &
	ds_pid=$!
	up_dexmem=no up_dexsql=no
	ready "http://127.0.0.1:$((port + 1))/dex" && up_dexmem=yes
	ready "http://127.0.0.1:$((port + 2))/dex" && up_dexsql=yes
	dex_pids="$dm_pid $ds_pid"
	pids="$pids $dex_pids"
}

rss() { awk '/VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "—"; }

for alg in $algorithms; do
	"$tmp/bridgekeeper" migrate --dsn "sqlite:$tmp/bk-$alg.db" >/dev/null
	"$tmp/bridgekeeper" serve --issuer "http://127.0.0.1:$port" --listen "127.0.0.1:$port" \
		--dsn "sqlite:$tmp/bk-$alg.db" --keys.algorithm "$alg" --log.level warn >/dev/null 2>"$tmp/serve-$alg.log" &
	bk_pid=$!
	pids="$pids $!"
	up_bk=no
	ready "http://127.0.0.1:$port" && up_bk=yes
	[ $up_bk = yes ] || { echo "bench-peers: Bridgekeeper did not start:" >&2; cat "$tmp/serve-$alg.log" >&2; exit 1; }

	scenarios="client_credentials refresh"
	[ "$alg" = ES256 ] && scenarios=client_credentials
	echo "### $alg, concurrency $concurrency, $duration per run, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), Bridgekeeper's crypto: $(crypto_of "$tmp/bridgekeeper")"
	echo
	echo "Each cell: req/s (p50, p99 in ms; the server's CPU per response in µs)."
	echo
	echo "| scenario | round | Bridgekeeper, SQLite | Dex, memory | Dex, sqlite3 | rate ÷ Dex memory | ÷ Dex sqlite3 | CPU per response ÷ Dex memory |"
	echo "|---|---|---|---|---|---|---|---|"
	for s in $scenarios; do
		bin=$dex
		[ "$s" = client_credentials ] && bin=$dex_cc
		start_dex "$bin"
		: >"$tmp/ratios"
		r=1
		while [ $r -le "$rounds" ]; do
			set -- $(rate bk "$s") $(rate dexmem "$s") $(rate dexsql "$s")
			if [ $# -ne 15 ]; then
				echo "bench-peers: a run failed; see below" >&2
				cat "$tmp/loadgen.log" >&2
				exit 1
			fi
			errs=""
			[ "$4$9${14}" = "000" ] || errs=" (errors: $4, $9, ${14})"
			LC_ALL=C awk -v s="$s" -v r="$r" -v e="$errs" -v bk="$1" -v b50="$2" -v b99="$3" -v bc="$5" \
				-v dm="$6" -v m50="$7" -v m99="$8" -v mc="${10}" -v ds="${11}" -v s50="${12}" -v s99="${13}" -v sc="${15}" \
				'function cell(r, p50, p99, c) { return r == "-" ? "—" : sprintf("%.0f (%s, %s; %d µs)", r, p50, p99, c) }
				function ratio(a, b) { return b == "-" ? "—" : sprintf("%.2f×", a / b) }
				BEGIN { printf "| %s%s | %d | **%s** | %s | %s | **%s** | %s | %s |\n", s, e, r, cell(bk, b50, b99, bc),
					cell(dm, m50, m99, mc), cell(ds, s50, s99, sc), ratio(bk, dm), ratio(bk, ds), ratio(bc, mc) }'
			echo "$1 $6 ${11} $5 ${10}" >>"$tmp/ratios"
			r=$((r + 1))
		done
		# The medians of the rounds' ratios (runs that failed left out).
		m_dm=$(awk '$1 != "-" && $2 != "-" { print $1 / $2 }' "$tmp/ratios" | median)
		m_ds=$(awk '$1 != "-" && $3 != "-" { print $1 / $3 }' "$tmp/ratios" | median)
		m_cpu=$(awk '$4 != "-" && $5 != "-" { print $4 / $5 }' "$tmp/ratios" | median)
		LC_ALL=C awk -v s="$s" -v a="$m_dm" -v b="$m_ds" -v c="$m_cpu" \
			'function x(v) { return v == "—" ? v : sprintf("%.2f×", v) }
			BEGIN { printf "| %s | median | | | | **%s** | %s | %s |\n", s, x(a), x(b), x(c) }'
		rss_dex="$rss_dex $s: Dex memory $(rss $dm_pid), sqlite3 $(rss $ds_pid);"
		for p in $dex_pids; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	done
	echo
	echo "Peak RSS: Bridgekeeper $(rss $bk_pid);$rss_dex"
	echo "Dex binaries: $dex (refresh), $dex_cc (client_credentials)."
	echo
	rss_dex=
	stop
done
