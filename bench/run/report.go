package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is latest.json.
type report struct {
	Date     string    `json:"date"`
	Command  string    `json:"command"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	Results  []summary `json:"results"` // one per target, mode and protocol
	Runs     []run     `json:"runs"`    // every measured run, in order
	Notes    []string  `json:"notes"`
}

type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Pinned    bool   `json:"pinned"`
}

type settings struct {
	SecondsPerRun float64  `json:"seconds_per_run"`
	Repeats       int      `json:"repeats"`
	Concurrency   int      `json:"concurrency"`
	Connections   int      `json:"connections"`
	StreamEvents  int      `json:"stream_content_events"`
	BodyBytes     int      `json:"body_bytes"`
	LoadCPU       int      `json:"load_cpu"`
	ProxyCPU      int      `json:"proxy_cpu"`
	Light         int      `json:"stream_light_max_in_flight"`
	LightRate     float64  `json:"stream_light_rate"` // streams/s, open loop, Poisson arrivals
	Modes         []string `json:"modes"`
	OpenStreams   int      `json:"stream_open_concurrency"`
}

// summary aggregates the repeats of one target, mode and protocol. Figures
// are medians over repeats unless named otherwise.
type summary struct {
	Target          string  `json:"target"`
	Mode            string  `json:"mode"`
	Proto           string  `json:"proto"`
	Runs            int     `json:"runs"`
	Requests        int     `json:"requests"` // total over runs
	Errors          int     `json:"errors"`   // total over runs
	RPS             float64 `json:"rps"`
	LatencyP50      float64 `json:"latency_p50_ms"`
	LatencyP90      float64 `json:"latency_p90_ms"`
	LatencyP99      float64 `json:"latency_p99_ms"`
	LatencyP999     float64 `json:"latency_p99_9_ms"`
	AddedP50        float64 `json:"added_latency_p50_ms_vs_direct"`
	AddedP99        float64 `json:"added_latency_p99_ms_vs_direct"`
	TTFBP50         float64 `json:"ttfb_p50_ms"`
	TTFBP99         float64 `json:"ttfb_p99_ms"`
	AddedTTFBP50    float64 `json:"added_ttfb_p50_ms_vs_baseline"`
	AddedTTFBP99    float64 `json:"added_ttfb_p99_ms_vs_baseline"`
	SendLagP99      float64 `json:"send_lag_p99_ms,omitempty"` // open loop: how late the generator sent
	Missed          int     `json:"missed,omitempty"`          // open loop: total over runs
	CPUPerReqUS     float64 `json:"cpu_us_per_req"`
	CPUPerReqMinUS  float64 `json:"cpu_us_per_req_min"`
	CPUPerReqMaxUS  float64 `json:"cpu_us_per_req_max"`
	RatioVsBaseline float64 `json:"cpu_ratio_vs_baseline"` // median of per-repeat ratios
	UpstreamCPUUS   float64 `json:"upstream_cpu_us_per_req,omitempty"`
	PeakRSSMB       float64 `json:"peak_rss_mb"` // max over runs
	EventsPerStream float64 `json:"events_per_stream,omitempty"`
	MeasuredProcess string  `json:"measured_process"`
}

func buildReport(o options, runs []run) *report {
	rep := &report{
		Date:    o.startedAt.UTC().Format(time.RFC3339),
		Command: fmt.Sprintf("make bench (BENCH_SECONDS=%g BENCH_REPEATS=%d)", o.seconds, o.repeats),
		Machine: machineInfo(o),
		Settings: settings{
			SecondsPerRun: o.seconds, Repeats: o.repeats, Concurrency: o.conc, Connections: o.conns,
			StreamEvents: o.events, BodyBytes: 1024, LoadCPU: o.loadCPU, ProxyCPU: o.proxyCPU,
			Light: o.light, LightRate: o.lightRate, OpenStreams: o.open, Modes: o.modeList(),
		},
		Runs: runs,
	}
	type key struct{ target, mode, proto string }
	var order []key
	groups := map[key][]run{}
	for _, r := range runs {
		k := key{r.Target, r.Mode, r.Proto}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	med := func(rs []run, f func(run) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	for _, k := range order {
		rs := groups[k]
		s := summary{Target: k.target, Mode: k.mode, Proto: k.proto, Runs: len(rs), MeasuredProcess: k.target}
		if k.target == "direct" {
			s.MeasuredProcess = "fake provider (no proxy)"
		}
		cpus := make([]float64, 0, len(rs))
		for _, r := range rs {
			s.Requests += r.Load.Requests
			s.Errors += r.Load.Errors
			s.PeakRSSMB = max(s.PeakRSSMB, r.PeakRSSMB)
			s.Missed += r.Load.Missed
			cpus = append(cpus, r.CPUPerReqUS)
		}
		s.RPS = med(rs, func(r run) float64 { return r.Load.RPS })
		s.LatencyP50 = med(rs, func(r run) float64 { return r.Load.Latency["p50"] })
		s.LatencyP90 = med(rs, func(r run) float64 { return r.Load.Latency["p90"] })
		s.LatencyP99 = med(rs, func(r run) float64 { return r.Load.Latency["p99"] })
		s.LatencyP999 = med(rs, func(r run) float64 { return r.Load.Latency["p99_9"] })
		s.TTFBP50 = med(rs, func(r run) float64 { return r.Load.TTFB["p50"] })
		s.TTFBP99 = med(rs, func(r run) float64 { return r.Load.TTFB["p99"] })
		s.SendLagP99 = med(rs, func(r run) float64 { return r.Load.SendLag["p99"] })
		s.CPUPerReqUS = median(cpus)
		s.CPUPerReqMinUS, s.CPUPerReqMaxUS = slices.Min(cpus), slices.Max(cpus)
		s.UpstreamCPUUS = med(rs, func(r run) float64 { return r.UpstreamUS })
		s.EventsPerStream = med(rs, func(r run) float64 { return r.Load.EventsPerStream })
		if d, ok := groups[key{"direct", k.mode, "h2"}]; ok {
			s.AddedP50 = s.LatencyP50 - med(d, func(r run) float64 { return r.Load.Latency["p50"] })
			s.AddedP99 = s.LatencyP99 - med(d, func(r run) float64 { return r.Load.Latency["p99"] })
		}
		if b, ok := groups[key{"baseline", k.mode, "h2"}]; ok && k.target != "direct" {
			s.AddedTTFBP50 = s.TTFBP50 - med(b, func(r run) float64 { return r.Load.TTFB["p50"] })
			s.AddedTTFBP99 = s.TTFBP99 - med(b, func(r run) float64 { return r.Load.TTFB["p99"] })
			// Ratios pair each run with the baseline run of the same repeat,
			// which ran seconds before it: that cancels slow drifts in the machine.
			var ratios []float64
			for _, r := range rs {
				for _, br := range b {
					if br.Repeat == r.Repeat && br.CPUPerReqUS > 0 {
						ratios = append(ratios, r.CPUPerReqUS/br.CPUPerReqUS)
					}
				}
			}
			s.RatioVsBaseline = median(ratios)
		}
		rep.Results = append(rep.Results, s)
	}
	return rep
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func machineInfo(o options) machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Pinned: o.proxyCPU >= 0}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// markdown renders the side-by-side table and its notes.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s, %s), pinned: %v.\n", rep.Date, rep.Machine.CPU, rep.Machine.Cores,
		rep.Machine.Kernel, rep.Machine.GoVersion, rep.Machine.Pinned)
	fmt.Fprintf(&b, "%d concurrent streams over %d HTTP/2 connections, ~%d-byte chat bodies, streams of %d content events; "+
		"%d repeats of %gs per target and mode, interleaved. Medians over repeats; CPU range in brackets. "+
		"stream-light: open loop, %g streams/s with Poisson arrivals (the same per repeat for both proxies), at most %d in flight, "+
		"over one connection, latency and TTFB from each stream's due time (time to first byte below saturation); "+
		"stream-open: %d concurrent streams over 8 connections (peak RSS). Modes run: %s.\n\n",
		rep.Settings.Concurrency, rep.Settings.Connections, rep.Settings.BodyBytes, rep.Settings.StreamEvents, rep.Settings.Repeats, rep.Settings.SecondsPerRun,
		rep.Settings.LightRate, rep.Settings.Light, rep.Settings.OpenStreams, strings.Join(rep.Settings.Modes, ", "))
	b.WriteString("| target | mode | proto | req/s | latency p50 / p99 ms | added p50 / p99 vs direct ms | TTFB p50 / p99 ms | added TTFB p50 / p99 vs baseline ms | CPU µs/req | × baseline | peak RSS MB | errors |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range rep.Results {
		added, ttfbAdd, ratio := "—", "—", "—"
		if s.Target != "direct" {
			if s.Mode == "chat" || s.Mode == "stream" { // the modes with a direct run
				added = fmt.Sprintf("%+.2f / %+.2f", s.AddedP50, s.AddedP99)
			}
			ttfbAdd = fmt.Sprintf("%+.2f / %+.2f", s.AddedTTFBP50, s.AddedTTFBP99)
			ratio = fmt.Sprintf("%.2f", s.RatioVsBaseline)
		}
		name := s.Target
		if s.Target == "direct" {
			name = "direct (provider CPU)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.2f / %.2f | %s | %.2f / %.2f | %s | %.0f (%.0f–%.0f) | %s | %.0f | %d |\n",
			name, s.Mode, s.Proto, s.RPS, s.LatencyP50, s.LatencyP99, added, s.TTFBP50, s.TTFBP99, ttfbAdd,
			s.CPUPerReqUS, s.CPUPerReqMinUS, s.CPUPerReqMaxUS, ratio, s.PeakRSSMB, s.Errors)
	}
	b.WriteString("\n")
	for _, s := range rep.Results {
		if s.Mode == modeLight {
			fmt.Fprintf(&b, "- stream-light %s: send lag p99 %.2f ms (how late the load generator sent; in the TTFB of both proxies), %d streams missed\n",
				s.Target, s.SendLagP99, s.Missed)
		}
	}
	for _, n := range rep.Notes {
		if n != "" {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// write saves latest.json and latest.md in dir and prints the table.
func (rep *report) write(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	md := rep.markdown()
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md)
	fmt.Fprintf(stdout, "\nwritten: %s, %s\n", filepath.Join(dir, "latest.json"), filepath.Join(dir, "latest.md"))
	return nil
}
