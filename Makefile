# Bridgekeeper — build, run the demo, test.
#   make run    build everything and run the broker with the demo (SQLite)
#   make test   the whole test suite (SQLite; Postgres too when BRIDGEKEEPER_TEST_POSTGRES is set)

GO      ?= go
BIN     := $(CURDIR)/bin
GOFLAGS_BUILD := -trimpath
# One set of build flags everywhere (changing them rebuilds everything).
export CGO_ENABLED ?= 0

CMDS := bridgekeeper connector-oidc connector-facebook fakeidp example-api

.PHONY: all build run test test-go bench lint fmt clean npm-deps

all: build

build: $(addprefix $(BIN)/,$(CMDS))

$(BIN)/%: FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/$*

FORCE:

run: build
	./scripts/demo.sh

test: lint test-go

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./broker/ ./internal/password/ ./broker/keys/ ./storage/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
