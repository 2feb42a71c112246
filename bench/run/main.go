package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin       string
	seconds   float64
	repeats   int
	conc      int
	conns     int
	events    int
	open      int     // concurrent streams of the open-streams run; 0: skip it
	light     int     // streams in flight at most in the light (open-loop) stream run; 0: skip it
	lightRate float64 // streams/s of the light run; 0: skip it
	modes     map[string]bool
	out       string
	keep      bool
	h3        bool
	loadCPU   int
	proxyCPU  int
	startedAt time.Time
}

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory holding portcullis, portcullis-load, baseline and fakeprovider")
	flag.Float64Var(&o.seconds, "seconds", envFloat("BENCH_SECONDS", 8), "seconds per measured run (env BENCH_SECONDS)")
	flag.IntVar(&o.repeats, "repeats", int(envFloat("BENCH_REPEATS", 2)), "repeats of the interleaved sequence (env BENCH_REPEATS)")
	flag.IntVar(&o.conc, "c", 64, "concurrent streams")
	flag.IntVar(&o.conns, "m", 4, "client connections")
	flag.IntVar(&o.events, "events", 50, "content events per streamed response")
	flag.IntVar(&o.open, "open-streams", int(envFloat("BENCH_OPEN_STREAMS", 1000)), "concurrent streams of the open-streams run, over 8 connections (0: skip; env BENCH_OPEN_STREAMS)")
	flag.IntVar(&o.light, "light", int(envFloat("BENCH_LIGHT", 16)), "streams in flight at most in the light open-loop stream run for TTFB, over 1 connection (0: skip; env BENCH_LIGHT)")
	flag.Float64Var(&o.lightRate, "light-rate", envFloat("BENCH_LIGHT_RATE", 50), "streams/s of the light open-loop run, Poisson arrivals (env BENCH_LIGHT_RATE)")
	modes := flag.String("modes", envString("BENCH_MODES", strings.Join(allModes, ",")), "modes to run, comma-separated, of "+strings.Join(allModes, ",")+" (env BENCH_MODES)")
	flag.StringVar(&o.out, "out", "bench/results", "directory for latest.json and latest.md")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (SVIDs, config, logs, audit log)")
	flag.BoolVar(&o.h3, "h3", true, "also measure Portcullis over HTTP/3 when it serves it")
	flag.IntVar(&o.loadCPU, "load-cpu", 0, "CPU for the load generator and the provider (-1: no pinning)")
	flag.IntVar(&o.proxyCPU, "proxy-cpu", 1, "CPU for the proxies (-1: no pinning)")
	flag.Parse()
	if o.seconds <= 0 || o.repeats < 1 {
		return errors.New("seconds and repeats must be positive")
	}
	o.modes = map[string]bool{}
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); !slices.Contains(allModes, m) {
			return fmt.Errorf("unknown mode %q (want some of %s)", m, strings.Join(allModes, ","))
		}
		o.modes[m] = true
	}
	if o.light <= 0 || o.lightRate <= 0 {
		delete(o.modes, modeLight)
	}
	if o.open <= 0 {
		delete(o.modes, modeOpen)
	}
	o.startedAt = time.Now()
	for _, b := range []string{"portcullis", "portcullis-load", "baseline", "fakeprovider"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("missing binary %s (build with: go build -o %s/ ./cmd/portcullis ./cmd/portcullis-load ./bench/...)", b, o.bin)
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: taskset not found: processes are not pinned, expect noisier CPU figures")
		o.loadCPU, o.proxyCPU = -1, -1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	env, err := startTargets(o, tmp)
	if err != nil {
		return err
	}
	defer env.stop()

	runs, h3note, err := measure(ctx, o, env)
	if err != nil {
		return err
	}
	auditNote := env.verifyAudit(o)
	rep := buildReport(o, runs)
	rep.Notes = append(rep.Notes, h3note, auditNote)
	rep.Notes = append(rep.Notes, "both proxies ran with GOMAXPROCS="+proxyProcs()+" (BENCH_PROXY_GOMAXPROCS)")
	return rep.write(o.out, os.Stdout)
}

// proxyProcs is the GOMAXPROCS both proxies run with.
func proxyProcs() string { return envString("BENCH_PROXY_GOMAXPROCS", "2") }

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// env is the running set of targets.
type env struct {
	f                             *files
	provider, baseline, gateway   *proc
	providerTLS, baseAddr, gwAddr string
}

func startTargets(o options, dir string) (*env, error) {
	f, err := writeIdentities(dir)
	if err != nil {
		return nil, err
	}
	e := &env{f: f}
	addr := func() string {
		if err != nil {
			return ""
		}
		var a string
		a, err = freePort()
		return a
	}
	plain, tlsAddr, baseAddr, gwAddr := addr(), addr(), addr(), addr()
	if err != nil {
		return nil, err
	}
	e.providerTLS, e.baseAddr, e.gwAddr = tlsAddr, baseAddr, gwAddr
	upstream := "http://" + plain + "/v1"
	if err := f.writeConfig(gwAddr, upstream); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			e.stop()
		}
	}()
	e.provider, err = start("fakeprovider", dir, o.loadCPU, nil, filepath.Join(o.bin, "fakeprovider"),
		"-listen", plain, "-api-key-file", f.providerKey,
		"-tls-listen", tlsAddr, "-cert", f.cert["provider"], "-key", f.key["provider"], "-bundle", f.bundle)
	if err != nil {
		return nil, err
	}
	// Both proxies get the same GOMAXPROCS: 2 by default, because
	// cmd/portcullis never runs with fewer (its audit fsync must not hold
	// the only scheduler slot) and the runtime would give a pinned baseline
	// 1; BENCH_PROXY_GOMAXPROCS overrides.
	procEnv := []string{"GOMAXPROCS=" + proxyProcs()}
	e.baseline, err = start("baseline", dir, o.proxyCPU, procEnv, filepath.Join(o.bin, "baseline"),
		"-listen", baseAddr, "-upstream", upstream, "-api-key-file", f.providerKey,
		"-cert", f.cert["baseline"], "-key", f.key["baseline"], "-bundle", f.bundle)
	if err != nil {
		return nil, err
	}
	e.gateway, err = start("portcullis", dir, o.proxyCPU, procEnv, filepath.Join(o.bin, "portcullis"), "serve", "--config", f.config)
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		p    *proc
		addr string
	}{{e.provider, plain}, {e.provider, tlsAddr}, {e.baseline, baseAddr}, {e.gateway, gwAddr}} {
		if err := waitTCP(w.p, w.addr, 20*time.Second); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

func (e *env) stop() {
	for _, p := range []*proc{e.gateway, e.baseline, e.provider} {
		if p != nil {
			p.stop()
		}
	}
	e.gateway, e.baseline, e.provider = nil, nil, nil
}

// target is one thing the load generator is pointed at.
type target struct {
	name  string // direct, baseline, portcullis
	url   string
	p     *proc // the process whose CPU is measured
	proto string
}

// run is one measured load run.
type run struct {
	Repeat       int        `json:"repeat"`
	Target       string     `json:"target"`
	Mode         string     `json:"mode"`
	Proto        string     `json:"proto"`
	Load         loadResult `json:"load"`
	CPUSeconds   float64    `json:"cpu_seconds"`    // measured process, over the run
	CPUPerReqUS  float64    `json:"cpu_us_per_req"` // measured process
	UpstreamUS   float64    `json:"upstream_cpu_us_per_req,omitempty"`
	PeakRSSMB    float64    `json:"peak_rss_mb"`
	PeakRSSReset bool       `json:"peak_rss_per_run"` // false: VmHWM is the process's lifetime peak
}

// loadResult is the part of portcullis-load's JSON the bench uses.
type loadResult struct {
	Requests        int                `json:"requests"`
	Errors          int                `json:"errors"`
	ErrorKinds      map[string]int     `json:"error_kinds,omitempty"`
	FirstError      string             `json:"first_error,omitempty"`
	Seconds         float64            `json:"seconds"`
	RPS             float64            `json:"rps"`
	Connections     int                `json:"connections"`
	Latency         map[string]float64 `json:"latency_ms"`
	TTFB            map[string]float64 `json:"ttfb_ms"`
	EventsPerStream float64            `json:"events_per_stream,omitempty"`
	Rate            float64            `json:"rate,omitempty"` // open loop only
	SendLag         map[string]float64 `json:"send_lag_ms,omitempty"`
	Missed          int                `json:"missed,omitempty"`
}

var errUnsupported = errors.New("not supported by target")

func measure(ctx context.Context, o options, e *env) ([]run, string, error) {
	targets := []target{
		{"direct", "https://" + e.providerTLS, e.provider, "h2"},
		{"baseline", "https://" + e.baseAddr, e.baseline, "h2"},
		{"portcullis", "https://" + e.gwAddr, e.gateway, "h2"},
	}
	h3 := target{"portcullis", "https://" + e.gwAddr, e.gateway, "h3"}
	h3note := "HTTP/3: not measured (-h3=false)"
	var modes []string
	for _, m := range []string{"chat", "stream"} {
		if o.modes[m] {
			modes = append(modes, m)
		}
	}

	// Warm up every target in both modes: pools, heaps, decision cache.
	warm := min(1.0, o.seconds/8)
	for _, m := range []string{"chat", "stream"} {
		for _, t := range targets {
			if _, err := loadRun(ctx, o, e, t, m, warm, 0); err != nil {
				return nil, "", fmt.Errorf("warm-up %s %s: %w", t.name, m, err)
			}
		}
	}
	if o.h3 {
		if _, err := loadRun(ctx, o, e, h3, "chat", warm, 0); err != nil {
			if !errors.Is(err, errUnsupported) {
				return nil, "", fmt.Errorf("warm-up portcullis h3: %w", err)
			}
			o.h3, h3note = false, "HTTP/3: not measured, the gateway does not serve it in this build"
		} else if len(modes) > 0 {
			h3note = "HTTP/3: Portcullis measured over h3 as well (rows proto h3)"
		} else {
			h3note = "HTTP/3: served, not measured (no chat or stream runs)"
		}
	}
	var runs []run
	for rep := 1; rep <= o.repeats; rep++ {
		for _, m := range modes {
			seq := targets
			if o.h3 {
				seq = append(seq[:len(seq):len(seq)], h3)
			}
			for _, t := range seq {
				if ctx.Err() != nil {
					return nil, "", ctx.Err()
				}
				r, err := measureOne(ctx, o, e, t, m, rep)
				if err != nil {
					return nil, "", err
				}
				fmt.Fprintf(os.Stderr, "bench: repeat %d %-6s %-10s %s  %8.1f req/s  %7.1f µs CPU/req  p99 %.2f ms  ttfb p99 %.2f ms  errors %d\n",
					rep, m, t.name, t.proto, r.Load.RPS, r.CPUPerReqUS, r.Load.Latency["p99"], r.Load.TTFB["p99"], r.Load.Errors)
				runs = append(runs, r)
			}
		}
	}
	// Once per repeat, outside the interleaved sequence: streams at a load
	// that does not saturate the proxy's CPU (time to first byte without
	// queueing), and many open streams at once (peak RSS).
	// All light runs first: a process's peak RSS after many open streams
	// stays high, and would be read as the light run's.
	// The light runs alternate baseline and Portcullis (A B A B), each pair
	// with the same Poisson arrivals.
	for _, m := range []string{modeLight, modeOpen} {
		for rep := 1; rep <= o.repeats; rep++ {
			if !o.modes[m] {
				continue
			}
			for _, t := range targets[1:] {
				r, err := measureOne(ctx, o, e, t, m, rep)
				if err != nil {
					return nil, "", err
				}
				fmt.Fprintf(os.Stderr, "bench: repeat %d %-6s %-10s %s  %8.1f req/s  %7.1f µs CPU/req  ttfb p50 %.2f p99 %.2f ms  send lag p99 %.2f ms  peak RSS %.0f MB  errors %d missed %d\n",
					rep, m, t.name, t.proto, r.Load.RPS, r.CPUPerReqUS, r.Load.TTFB["p50"], r.Load.TTFB["p99"], r.Load.SendLag["p99"], r.PeakRSSMB, r.Load.Errors, r.Load.Missed)
				runs = append(runs, r)
			}
		}
	}
	return runs, h3note, nil
}

// The extra stream modes (besides "chat" and "stream").
const (
	modeLight = "stream-light" // open loop, o.lightRate streams/s, at most o.light in flight, one connection
	modeOpen  = "stream-open"  // o.open streams over 8 connections
)

var allModes = []string{"chat", "stream", modeLight, modeOpen}

// shape is the load of a mode: concurrent streams, connections, streaming.
func (o options) shape(mode string) (conc, conns int, stream bool) {
	switch mode {
	case modeLight:
		return o.light, 1, true
	case modeOpen:
		return o.open, 8, true
	}
	return o.conc, o.conns, mode == "stream"
}

func measureOne(ctx context.Context, o options, e *env, t target, mode string, rep int) (run, error) {
	pid, upPID := t.p.pid(), e.provider.pid()
	reset := resetPeakRSS(pid)
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return run{}, err
	}
	up0, _ := cpuSeconds(upPID)
	lr, err := loadRun(ctx, o, e, t, mode, o.seconds, uint64(rep))
	if err != nil {
		return run{}, fmt.Errorf("%s %s %s: %w", t.name, mode, t.proto, err)
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return run{}, err
	}
	up1, _ := cpuSeconds(upPID)
	rss, _ := peakRSSMB(pid)
	// The load generator's preflight sends one request per connection
	// before its clock starts; the process served those too.
	served := float64(lr.Requests + lr.Errors + lr.Connections)
	r := run{
		Repeat: rep, Target: t.name, Mode: mode, Proto: t.proto, Load: lr,
		CPUSeconds: cpu1 - cpu0, PeakRSSMB: rss, PeakRSSReset: reset,
	}
	if served > 0 {
		r.CPUPerReqUS = (cpu1 - cpu0) / served * 1e6
		if t.name != "direct" {
			r.UpstreamUS = (up1 - up0) / served * 1e6
		}
	}
	return r, nil
}

// loadRun runs portcullis-load pinned to the load CPU and decodes its JSON.
// seed picks the arrivals of an open-loop (light) run.
func loadRun(ctx context.Context, o options, e *env, t target, mode string, seconds float64, seed uint64) (loadResult, error) {
	out := filepath.Join(e.f.dir, "load.json")
	conc, conns, stream := o.shape(mode)
	argv := []string{filepath.Join(o.bin, "portcullis-load"),
		"-target", t.url, "-proto", t.proto,
		"-cert", e.f.cert["client"], "-key", e.f.key["client"], "-bundle", e.f.bundle,
		"-c", strconv.Itoa(conc), "-m", strconv.Itoa(conns),
		"-d", strconv.FormatFloat(seconds, 'f', 3, 64) + "s",
		"-json", out, "-q", "-timeout", "10s"}
	if t.name == "direct" {
		key, err := os.ReadFile(e.f.providerKey)
		if err != nil {
			return loadResult{}, err
		}
		argv = append(argv, "-api-key", strings.TrimSpace(string(key)))
	}
	if stream {
		argv = append(argv, "-stream", "-events", strconv.Itoa(o.events))
	}
	if mode == modeLight {
		argv = append(argv, "-rate", strconv.FormatFloat(o.lightRate, 'f', -1, 64), "-arrival", "poisson",
			"-seed", strconv.FormatUint(seed, 10))
	}
	argv = pinned(o.loadCPU, argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(msg), errUnsupported.Error()) {
			return loadResult{}, fmt.Errorf("%w: %s", errUnsupported, strings.TrimSpace(string(msg)))
		}
		return loadResult{}, fmt.Errorf("portcullis-load: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return loadResult{}, err
	}
	var lr loadResult
	if err := json.Unmarshal(b, &lr); err != nil {
		return loadResult{}, fmt.Errorf("portcullis-load JSON: %w", err)
	}
	return lr, nil
}

// verifyAudit stops the gateway and checks its audit log with
// `portcullis audit verify`, so the figures are known to come with an intact log.
func (e *env) verifyAudit(o options) string {
	e.gateway.stop()
	e.gateway = nil
	out, err := exec.Command(filepath.Join(o.bin, "portcullis"), "audit", "verify", e.f.auditDir).CombinedOutput()
	if err != nil {
		return "audit log: verification FAILED: " + tail(out, 300)
	}
	return "audit log after the run: " + strings.Join(strings.Fields(tail(out, 300)), " ")
}

// modeList is the modes run, in the order they run.
func (o options) modeList() []string {
	var l []string
	for _, m := range allModes {
		if o.modes[m] {
			l = append(l, m)
		}
	}
	return l
}
