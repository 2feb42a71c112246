# make bench — Portcullis against a bare Go mTLS reverse proxy (bench/baseline)
# and against no proxy, on loopback. See docs/performance.md.
#
#   make bench                    full run: 2 repeats x 8 s per target and mode (~2.5 min)
#   BENCH_SECONDS=2 make bench    smoke run (~40 s)
#   BENCH_REPEATS=3 make bench    more repeats, to see the noise
#   BENCH_PROXY_GOMAXPROCS=1 make bench   GOMAXPROCS of both proxies (default 2: Portcullis never runs with fewer)
#   BENCH_MODES=stream-light make bench   only some runs (chat, stream, stream-light, stream-open)
#   BENCH_LIGHT_RATE=100 make bench       open-loop rate of the TTFB run (streams/s, default 50)
#
# Results: bench/results/latest.json and latest.md; the table is printed.

BENCH_BIN     := $(BIN)/bench
BENCH_SECONDS ?= 8
BENCH_REPEATS ?= 2

.PHONY: bench bench-build bench-go

bench-build:
	$(GO) build -o $(BENCH_BIN)/ ./cmd/portcullis ./cmd/portcullis-load ./bench/baseline ./bench/fakeprovider ./bench/run

bench: bench-build
	BENCH_SECONDS=$(BENCH_SECONDS) BENCH_REPEATS=$(BENCH_REPEATS) $(BENCH_BIN)/run -bin $(BENCH_BIN) -out bench/results

# Go micro-benchmarks of the proxy's hot parts (short: the machine is shared).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x ./proxy/
