# Portcullis — build, run and test.
#
#   make run    start the gateway in dev mode (embedded dev CA, fake provider, default policy)
#   make test   vet, staticcheck, Rego tests and go test -race ./...

GO        ?= go
BIN       := bin
DATA_DIR  ?= ./.portcullis
LISTEN    ?= 127.0.0.1:8443
OPS_LISTEN ?= 127.0.0.1:9090
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test vet staticcheck rego-test gotest fmt-check clean

all: build

build:
	$(GO) build -o $(BIN)/portcullis ./cmd/portcullis

run: build
	$(BIN)/portcullis serve --dev --data-dir $(DATA_DIR) --listen $(LISTEN) --ops-listen $(OPS_LISTEN)

test: fmt-check vet staticcheck rego-test gotest

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

rego-test:
	$(GO) test -count=1 -run 'TestRego' ./policy/...

gotest:
	$(GO) test -race -count=1 -timeout 20m ./...

clean:
	rm -rf $(BIN)

# SPIRE targets (spire-build, spire-up, spire-down, demo) live beside their configs.
-include spire/spire.mk
-include bench/bench.mk
