#!/usr/bin/env bash
# Runs the whole demo on loopback (called by `make run` after `make build`):
#   fakeidp        http://127.0.0.1:5556  stand-in for Okta, Google and Facebook
#   bridgekeeper   http://127.0.0.1:8080  the broker, SQLite in data/demo/
#   example-api    http://127.0.0.1:9090  an API that verifies the broker's tokens
#   demo app       http://127.0.0.1:5173  the React app (Vite)
# Ctrl-C stops everything; the data in data/demo/ is kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=./bin
CONFIG=testdata/demo/bridgekeeper.yaml
ISSUER=http://127.0.0.1:8080
APP=http://127.0.0.1:5173
API=http://127.0.0.1:9090
DEMO_EMAIL=demo@example.com
DEMO_PASSWORD='bridgekeeper-demo-2026'
mkdir -p data/demo

pids=()
declare -A names=()
start() { # name command…: run a demo process in the background, its output in data/demo/NAME.log
	local name=$1
	shift
	"$@" >"data/demo/$name.log" 2>&1 &
	pids+=($!)
	names[$!]=$name
}
stop_all() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
# Ctrl-C is the way to stop the demo: say so, stop, and exit 0.
on_interrupt() {
	echo
	echo "Ctrl-C: stopping the demo…"
	stop_all
	echo "The demo has stopped. Its data stays in data/demo/; make run starts it again."
	exit 0
}
trap stop_all EXIT
trap on_interrupt INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 5556 8080 9090 5173; do
	if ! port_free "$port"; then
		echo "port $port on 127.0.0.1 is in use: stop whatever runs there (an earlier demo?) and retry" >&2
		exit 1
	fi
done

wait_for() { # url name
	for _ in $(seq 150); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	echo "$2 did not start; see data/demo/$2.log" >&2
	exit 1
}

# The browser client package and the demo app.
if [ -d wasm/example ]; then
	[ -d wasm/node_modules ] || npm ci --prefix wasm --no-audit --no-fund
	npm run --prefix wasm build >data/demo/wasm-build.log 2>&1 || { cat data/demo/wasm-build.log; exit 1; }
	[ -d wasm/example/node_modules ] || npm ci --prefix wasm/example --no-audit --no-fund
fi

# Clients and the demo user (created once; the database is kept between runs).
"$BIN/bridgekeeper" migrate --config "$CONFIG" >/dev/null
if ! "$BIN/bridgekeeper" client get --config "$CONFIG" demo >/dev/null 2>&1; then
	"$BIN/bridgekeeper" client create --config "$CONFIG" --id demo --name "Bridgekeeper demo" --public \
		--redirect-uri "$APP/callback" --allowed-origin "$APP" --post-logout-redirect-uri "$APP/" \
		--scope openid --scope profile --scope email --scope offline_access --scope checkout \
		--default-audience "$API" --require-dpop >/dev/null
fi
if ! "$BIN/bridgekeeper" user list --config "$CONFIG" | grep -q " $DEMO_EMAIL "; then
	echo "$DEMO_PASSWORD" | "$BIN/bridgekeeper" user create --config "$CONFIG" \
		--email "$DEMO_EMAIL" --name "Demo User" --password-stdin >/dev/null
fi

start fakeidp "$BIN/fakeidp" --listen 127.0.0.1:5556
start bridgekeeper "$BIN/bridgekeeper" serve --config "$CONFIG"
start example-api "$BIN/example-api" --issuer "$ISSUER" --listen 127.0.0.1:9090 --audience "$API" --allowed-origin "$APP" \
	--dpop-required-client demo
if [ -d wasm/example ]; then
	start app env VITE_BK_ISSUER="$ISSUER" VITE_BK_CLIENT_ID=demo VITE_BK_API="$API" \
		sh -c 'cd wasm/example && exec ./node_modules/.bin/vite --host 127.0.0.1 --port 5173 --strictPort'
fi

wait_for http://127.0.0.1:5556/.well-known/openid-configuration fakeidp
wait_for "$ISSUER/.well-known/openid-configuration" bridgekeeper
wait_for "$API/api/health" example-api
[ -d wasm/example ] && wait_for "$APP/" app

# The demo sends no e-mail: the broker logs each link of an e-mail on a
# line of its own (msg="mail link …" to=… link=…); show them here.
tail -n +1 -F data/demo/bridgekeeper.log 2>/dev/null > >(awk '/msg="mail link/ {
	to = ""; link = ""
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^to=/) to = substr($i, 4)
		if ($i ~ /^link=/) link = substr($i, 6)
	}
	gsub(/"/, "", to); gsub(/"/, "", link)
	printf "\n  E-mail to %s (not sent; open the link to continue):\n  %s\n", to, link
	fflush()
}') &
pids+=($!)
names[$!]=log-watcher

cat <<MSG

  Bridgekeeper demo is running: open $APP

  Sign in with    $DEMO_EMAIL / $DEMO_PASSWORD
                  or "Continue with Okta / Google / Facebook" (fakeidp):
                  alice@example.com, bob@example.org … password: password
  Sign up         $ISSUER/register (or from the app's sign-in page)
  Broker          $ISSUER/.well-known/openid-configuration
  Example API     $API/api/profile (called by the app with its access token)
  Logs            data/demo/*.log

  Activation and password-reset links appear below as the broker makes
  them (no e-mail is sent). Ctrl-C stops the demo.
MSG
exited=
wait -n -p exited "${pids[@]}" || true
name=${names[${exited:-0}]:-a demo process}
echo >&2
echo "The demo is stopping: $name exited unexpectedly (its log: data/demo/$name.log)." >&2
exit 1
