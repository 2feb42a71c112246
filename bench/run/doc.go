// Command run is `make bench`: it measures what Portcullis costs against a
// bare Go mTLS reverse proxy (bench/baseline) and against no proxy at all,
// on loopback, in one go, and writes bench/results/latest.json and
// latest.md.
//
//	go build -o bin/bench/ ./cmd/portcullis ./cmd/portcullis-load ./bench/...
//	bin/bench/run -bin bin/bench -seconds 8 -repeats 2 -out bench/results
//
// It issues SVIDs from a throwaway dev CA into a temporary directory, then
// starts the fake provider (bench/fakeprovider; plain HTTP for the proxies,
// mTLS for direct runs), the baseline proxy and Portcullis in config mode
// (embedded default policy, decision cache, audit log with fsync, one JSON
// log line per request). The load generator and the provider are pinned to
// CPU 0 and the proxies to CPU 1 with taskset when it exists, so a proxy's
// CPU time is its own. For each repeat and each mode (non-streaming chat,
// then SSE streams of -events content events) it runs direct, baseline and
// Portcullis back to back (A B C A B C ...), and Portcullis again over
// HTTP/3 when the gateway serves it. Then, per repeat, baseline and
// Portcullis in turn at a light open-loop load (stream-light: -light-rate
// streams/s with Poisson arrivals, the same arrivals for both, at most -light
// in flight, latency and TTFB from each stream's due time), and with many
// streams open (stream-open). -modes (BENCH_MODES) picks a subset, e.g.
// BENCH_MODES=stream-light for the TTFB comparison alone. Around each run it reads the measured
// process's utime+stime from /proc/PID/stat and its peak RSS (VmHWM from
// /proc/PID/status, reset before each run through clear_refs).
//
// CPU per request is the headline: on a shared machine requests/s moves with
// the neighbours, CPU time per request much less. Each figure is the median
// over repeats; the spread is shown beside it.
package main
