# The single entry point for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BUILD_TAGS := sqlite_omit_load_extension
GOFLAGS_BUILD := -tags '$(BUILD_TAGS)'
DATA_DIR ?= ./data
GRPC_ADDR ?= 127.0.0.1:7443
HTTP_ADDR ?= 127.0.0.1:7080
FUZZTIME ?= 2m
VULNDB ?= https://vuln.go.dev

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build sipasd and sipas into ./bin.
	$(GO) build $(GOFLAGS_BUILD) -buildvcs=auto -o bin/ ./cmd/sipasd ./cmd/sipas

.PHONY: run
run: build ## Start the server on the embedded SQLite default (data in ./data, loopback ports).
	./bin/sipasd --data-dir $(DATA_DIR) --grpc-addr $(GRPC_ADDR) --http-addr $(HTTP_ADDR)

.PHONY: test
test: proto-check ## Run the test suite (vet, race-free unit and end-to-end tests, fuzz seeds, short crash test, browser tests when Chromium is installed; the PostgreSQL suite against SIPAS_TEST_POSTGRES).
	@if [ -z "$$SIPAS_CHROMIUM" ] && [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then \
		echo "SKIP browser tests of the web dashboard and the kiosk app: no Chromium found; install it with: apt-get install chromium"; fi
	@hp=$$(echo "$${SIPAS_TEST_POSTGRES:-postgres://127.0.0.1:5432/}" | sed -E 's|^[a-z]+://||; s|^[^@/]*@||; s|[/?].*$$||'); \
	host=$${hp%:*}; port=$${hp##*:}; [ "$$port" = "$$hp" ] && port=5432; \
	if ! timeout 2 bash -c "</dev/tcp/$${host:-127.0.0.1}/$$port" 2>/dev/null; then \
		echo "SKIP PostgreSQL tests: no server at $${host:-127.0.0.1}:$$port; set SIPAS_TEST_POSTGRES=postgres://user@host:port/db to run them"; fi
	$(GO) vet $(GOFLAGS_BUILD) ./...
	@./scripts/pgprobe.sh
	$(GO) test $(GOFLAGS_BUILD) -count=1 -timeout 9m ./...

.PHONY: test-race
test-race: ## Run the test suite under the race detector.
	$(GO) test $(GOFLAGS_BUILD) -race -count=1 -timeout 20m ./...

.PHONY: proto
proto: ## Regenerate the Go code of proto/sipas/v1 (protoc 3.21.12 or tools/protocgo; plugins pinned in tools/go.mod).
	./scripts/protogen.sh proto

.PHONY: proto-check
proto-check: ## Fail when the committed generated code differs from a fresh generation (needs only Go).
	./scripts/protocheck.sh

.PHONY: lint
lint: ## gofmt, go vet and govulncheck (fails when govulncheck cannot run; VULNCHECK=skip skips it loudly).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_BUILD) ./...
	@if [ "$(VULNCHECK)" = skip ]; then \
	  echo "*** govulncheck NOT RUN (VULNCHECK=skip): known vulnerabilities were not checked ***"; \
	else \
	  cd tools && $(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db $(VULNDB) -C .. ./... || { \
	    echo "make lint: govulncheck failed or found vulnerabilities (see above). It needs its vulnerability database;"; \
	    echo "offline, point it at a local copy ('make lint VULNDB=file:///path') or skip it explicitly with 'make lint VULNCHECK=skip'."; \
	    exit 1; }; \
	fi

.PHONY: bench
bench: ## Run the benchmarks; prints BENCH lines with each figure beside its ceiling.
	$(GO) run $(GOFLAGS_BUILD) ./cmd/sipasbench

.PHONY: reliability
reliability: ## The long crash tests (200+ kill -9s on SQLite and on PostgreSQL) and longer fuzzing (FUZZTIME each, default 2m).
	SIPAS_CRASH_KILLS=200 $(GO) test $(GOFLAGS_BUILD) -count=1 -timeout 60m -run TestCrash ./test/crash/
	$(GO) test $(GOFLAGS_BUILD) -run XXX -fuzz FuzzDecodeValidate -fuzztime $(FUZZTIME) ./server/
	$(GO) test $(GOFLAGS_BUILD) -run XXX -fuzz FuzzUploadBatch -fuzztime $(FUZZTIME) ./server/

.PHONY: dev-certs
dev-certs: ## Create a local CA and server/client certificates in ./dev-certs for trying TLS.
	$(GO) run ./cmd/devcerts -out dev-certs

.PHONY: docker
docker: ## Build the container image (needs a Docker engine; see deploy/).
	docker build -f deploy/Dockerfile -t sipas:dev .

.PHONY: clean
clean: ## Remove build output (not ./data).
	rm -rf bin
