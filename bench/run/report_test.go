package main

import (
	"strings"
	"testing"
	"time"
)

func lightRun(rep int, target string, p50, p99, lag float64) run {
	return run{Repeat: rep, Target: target, Mode: modeLight, Proto: "h2", CPUPerReqUS: 100,
		Load: loadResult{Requests: 100, Rate: 50, TTFB: map[string]float64{"p50": p50, "p99": p99}, SendLag: map[string]float64{"p99": lag}}}
}

func TestReportAddedTTFB(t *testing.T) {
	o := options{seconds: 5, repeats: 3, light: 16, lightRate: 50, startedAt: time.Unix(0, 0),
		modes: map[string]bool{modeLight: true}}
	runs := []run{
		lightRun(1, "baseline", 2.0, 4.0, 1.0), lightRun(1, "portcullis", 3.0, 9.0, 1.2),
		lightRun(2, "baseline", 2.2, 5.0, 1.1), lightRun(2, "portcullis", 2.8, 6.0, 1.4),
		lightRun(3, "baseline", 1.8, 7.0, 0.9), lightRun(3, "portcullis", 2.6, 8.0, 1.3),
	}
	rep := buildReport(o, runs)
	tests := []struct {
		target                 string
		addedP50, addedP99, lg float64
	}{
		// medians: baseline 2.0 / 5.0, portcullis 2.8 / 8.0
		{"baseline", 0, 0, 1.0},
		{"portcullis", 0.8, 3.0, 1.3},
	}
	for i, tt := range tests {
		s := rep.Results[i]
		if s.Target != tt.target || s.Mode != modeLight {
			t.Fatalf("result %d = %s %s, want %s %s", i, s.Target, s.Mode, tt.target, modeLight)
		}
		if d := s.AddedTTFBP50 - tt.addedP50; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: added TTFB p50 = %v, want %v", tt.target, s.AddedTTFBP50, tt.addedP50)
		}
		if d := s.AddedTTFBP99 - tt.addedP99; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: added TTFB p99 = %v, want %v", tt.target, s.AddedTTFBP99, tt.addedP99)
		}
		if s.SendLagP99 != tt.lg {
			t.Errorf("%s: send lag p99 = %v, want %v", tt.target, s.SendLagP99, tt.lg)
		}
	}
	md := rep.markdown()
	for _, want := range []string{
		"| portcullis | stream-light | h2 | 0 | 0.00 / 0.00 | — | 2.80 / 8.00 | +0.80 / +3.00 |",
		"50 streams/s with Poisson arrivals",
		"stream-light portcullis: send lag p99 1.30 ms",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
