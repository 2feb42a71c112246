package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyCheck is one readiness condition; nil means ready.
type readyCheck struct {
	name  string
	check func(now time.Time) (detail string, err error)
}

// svidExpiryMargin is how long before its SVID expires an unrenewed gateway
// stops being ready, so a load balancer drains it before clients see
// handshake failures.
func svidExpiryMargin(lifetime time.Duration) time.Duration {
	return min(lifetime/10, 5*time.Minute)
}

func (g *gateway) readyChecks() []readyCheck {
	checks := []readyCheck{
		{"svid", func(now time.Time) (string, error) {
			svid, err := g.source.GetX509SVID()
			if err != nil {
				return "", fmt.Errorf("no SVID: %w", err)
			}
			leaf := svid.Certificates[0]
			left := leaf.NotAfter.Sub(now)
			if left <= svidExpiryMargin(leaf.NotAfter.Sub(leaf.NotBefore)) {
				return "", fmt.Errorf("SVID %s expires in %s and has not been renewed", svid.ID, left.Round(time.Second))
			}
			return fmt.Sprintf("%s, expires in %s", svid.ID, left.Round(time.Second)), nil
		}},
		{"policy", func(time.Time) (string, error) {
			rev := g.engine.Revision()
			if rev == "" {
				return "", errors.New("no policy bundle loaded")
			}
			return "revision " + rev, nil
		}},
		{"audit", func(time.Time) (string, error) {
			if err := g.audit.Err(); err != nil {
				return "", err
			}
			return fmt.Sprintf("%d records", g.audit.Stats().Records), nil
		}},
	}
	return append(checks, g.extraReady...)
}

type checkResult struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// opsHandler serves /metrics, /healthz (the process is alive) and /readyz
// (the gateway can serve: SVID valid and not about to expire, policy loaded,
// audit log writable, state store reachable).
func (g *gateway) opsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"alive"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		out := struct {
			Ready  bool                   `json:"ready"`
			Checks map[string]checkResult `json:"checks"`
		}{Ready: true, Checks: map[string]checkResult{}}
		for _, c := range g.readyChecks() {
			detail, err := c.check(now)
			if err != nil {
				out.Ready = false
				out.Checks[c.name] = checkResult{Detail: err.Error()}
				continue
			}
			out.Checks[c.name] = checkResult{OK: true, Detail: detail}
		}
		w.Header().Set("Content-Type", "application/json")
		if !out.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	if g.cfg != nil && g.cfg.Ops.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// registerGatewayCollectors adds process, Go runtime, SVID and audit metrics.
func (g *gateway) registerGatewayCollectors(reg *prometheus.Registry) error {
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portcullis_svid_expiry_timestamp_seconds",
			Help: "When the gateway's current X.509-SVID expires (Unix time).",
		}, func() float64 {
			svid, err := g.source.GetX509SVID()
			if err != nil {
				return 0
			}
			return float64(svid.Certificates[0].NotAfter.Unix())
		}),
		g.svidRotations,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_audit_records_total",
			Help: "Audit records durably written.",
		}, func() float64 { return float64(g.audit.Stats().Records) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_audit_fsyncs_total",
			Help: "fsyncs of audit segments; records_total / fsyncs_total is the mean group-commit size.",
		}, func() float64 { return float64(g.audit.Stats().Syncs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portcullis_audit_writable",
			Help: "1 while the audit log accepts records; 0 after a write or fsync failure (the gateway then refuses requests).",
		}, func() float64 {
			if g.audit.Err() != nil {
				return 0
			}
			return 1
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// watchSVID counts and logs rotations of the gateway's SVID.
func (g *gateway) watchSVID(ctx context.Context, every time.Duration) {
	var last string
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if svid, err := g.source.GetX509SVID(); err == nil {
			serial := svid.Certificates[0].SerialNumber.String()
			if last != "" && serial != last {
				g.svidRotations.Inc()
				g.log.WithField("expires", svid.Certificates[0].NotAfter).Info("gateway SVID rotated")
			}
			last = serial
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serveOps runs the operations listener until ctx ends.
func (g *gateway) serveOps(ctx context.Context, ln net.Listener, reg *prometheus.Registry) {
	srv := &http.Server{Handler: g.opsHandler(reg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.WithError(err).Error("ops listener failed")
	}
}
