# Bridgekeeper — build, run the demo, test.
#   make run    build everything and run the broker with the demo (SQLite)
#   make test   the whole test suite (SQLite; Postgres too when BRIDGEKEEPER_TEST_POSTGRES is set)

GO      ?= go
BIN     := $(CURDIR)/bin
GOFLAGS_BUILD := -trimpath
# The race detector needs cgo (a C compiler); without one the tests run
# without it.
RACE ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)

CMDS := bridgekeeper connector-oidc connector-facebook fakeidp example-api

# CRYPTO=boring builds (and benchmarks) with Go's BoringCrypto
# (GOEXPERIMENT=boringcrypto: crypto/rsa, crypto/ecdsa and the rest run on
# BoringSSL, linked in through cgo; needs a C compiler). An RS256
# signature costs about a third less (BENCHMARKS.md). The default is Go's
# own implementation, with no cgo.
CRYPTO ?=
ifeq ($(CRYPTO),boring)
export CGO_ENABLED := 1
export GOEXPERIMENT := boringcrypto
else ifneq ($(CRYPTO),)
$(error CRYPTO=$(CRYPTO): the choices are CRYPTO=boring, or nothing for Go's own)
endif

.PHONY: all build run test test-go test-boring wasm-build test-browser bench bench-load bench-peers bench-ab bench-wrk fuzz-passkey test-resilience fuzz-long lint fmt clean npm-deps generate

all: build

build: $(addprefix $(BIN)/,$(CMDS))

$(BIN)/%: FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/$*

FORCE:

run: build
	./scripts/demo.sh

# npm packages the tests drive (openid-client, jose, the Node connector, the
# browser client); installed from their lockfiles when missing.
NPM_DIRS := e2e/oidc-client e2e/oidc-client-ts testdata/node-connector interop/node wasm wasm/example

npm-deps:
	@for d in $(NPM_DIRS); do \
		if [ -f $$d/package-lock.json ] && [ ! -d $$d/node_modules ]; then \
			echo "npm ci --prefix $$d"; npm ci --prefix $$d --no-audit --no-fund --loglevel=error || exit 1; \
		fi; \
	done

generate:
	$(GO) generate ./plugins/proto/...

test: lint npm-deps wasm-build test-go test-browser

# The browser client package (Go → WebAssembly, the worker, the modules).
wasm-build: npm-deps
	npm run --prefix wasm build

# The browser client in headless Chromium (skips, saying so, without it).
test-browser: wasm-build
	cd wasm && node --test test/

test-go:
	$(GO) test $(RACE) -count=1 -timeout 20m ./...

# The packages that sign, verify, encrypt or hash, built with BoringCrypto
# (CRYPTO=boring above), and a check that the build really uses it.
test-boring:
	CGO_ENABLED=1 GOEXPERIMENT=boringcrypto BRIDGEKEEPER_TEST_CRYPTO=BoringCrypto \
		$(GO) test -count=1 -timeout 15m ./internal/... ./broker/... ./storage/... ./rp/...

# The passkey sign-in form under 10 minutes of fuzzing (its seeds run in
# every go test). Each input costs a login page and a sign-in against the
# database, so minimizing a new input is capped at 5 s (the default 60 s
# per input left the run minimizing most of its time).
fuzz-passkey:
	$(GO) test -run '^$$' -fuzz '^FuzzPasskeyForms$$' -fuzztime 10m -fuzzminimizetime 5s -parallel 1 ./broker/

bench: wasm-build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./broker/ ./broker/passkey/ ./internal/password/ ./broker/keys/ ./storage/ ./rp/ ./plugins/ ./broker/federation/ ./wasm/oidc/
	cd wasm && node scripts/budget.mjs

# Load test of a real broker on SQLite and Postgres (BENCHMARKS.md).
bench-load:
	./scripts/bench-load.sh

# Bridgekeeper beside Dex on this machine in one run, same load tool, same
# algorithm (BENCHMARKS.md). DEX is a Dex binary built from its repository;
# without one the target says it skipped.
bench-peers:
	DEX="$(DEX)" ./scripts/bench-peers.sh

# client_credentials (beside its signing floor), JWKS and discovery driven
# by wrk, a lighter load generator (needs the wrk package).
# Two builds alternately against each other: make bench-ab A=/path/to/old/bridgekeeper
bench-ab:
	A="$(A)" B="$(B)" ./scripts/bench-ab.sh

bench-wrk:
	./scripts/bench-wrk.sh

# Mixed load on two replicas while a plugin is killed every 20 s and
# Postgres restarts once (about 2 minutes; it restarts the cluster, so run
# it alone: CI=true, or BRIDGEKEEPER_TEST_PG_RESTART_CMD for a private one).
test-resilience:
	BRIDGEKEEPER_TEST_RESILIENCE=1 $(GO) test -count=1 -timeout 10m -run TestResilience -v ./e2e/

# The long fuzz runs of SECURITY.md's fuzz table, one target at a time,
# FUZZTIME each (default 10m: about two hours in all), -parallel 1 as the
# table's runs. Not part of make test (which runs every seed corpus). A
# crash stops the run; its input is saved under the package's
# testdata/fuzz/ (commit it with the fix). FUZZ_TARGETS=pkg:Target … runs
# some only.
FUZZTIME ?= 10m
FUZZ_TARGETS ?= ./broker/:FuzzSecondStepForm ./broker/:FuzzPasskeyForms ./broker/:FuzzTokenErrorBody \
	./broker/:FuzzAuthorizeRedirect ./broker/:FuzzDPoPHeader \
	./broker/:FuzzTokenRequest ./broker/:FuzzAuthorizeQuery \
	./rp/:FuzzVerify ./rp/:FuzzScanPayload \
	./plugins/internal/wire/:FuzzIdentityReply ./plugins/internal/wire/:FuzzErrorReply \
	./internal/password/:FuzzDecode ./internal/dpop/:FuzzVerify ./internal/dpop/:FuzzDecodeClaims \
	./broker/:FuzzSessionRead
fuzz-long:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
