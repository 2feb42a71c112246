package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	if err := mainErr(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "portcullis-load:", err)
		os.Exit(1)
	}
}

func mainErr(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("portcullis-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		id       identityFiles
		jsonPath string
		quiet    bool
	)
	fs.StringVar(&cfg.Target, "target", "https://127.0.0.1:8443", "base URL of the target")
	fs.StringVar(&cfg.Path, "path", "/v1/chat/completions", "request path")
	fs.StringVar(&cfg.Proto, "proto", protoH2, "h2 (HTTP/2 over TLS) or h3 (HTTP/3 over QUIC)")
	fs.StringVar(&id.Cert, "cert", "", "client SVID certificate (PEM)")
	fs.StringVar(&id.Key, "key", "", "client SVID private key (PEM)")
	fs.StringVar(&id.Bundle, "bundle", "", "trust bundle (PEM) that verifies the server")
	fs.StringVar(&id.ServerID, "server-id", "", "accept only this server SPIFFE ID (default: any in the client's trust domain)")
	fs.IntVar(&cfg.Concurrency, "c", 64, "concurrent streams")
	fs.IntVar(&cfg.Connections, "m", 4, "connections the streams are spread over")
	fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "run duration (ignored when -n is set)")
	fs.IntVar(&cfg.Requests, "n", 0, "fixed number of requests instead of a duration")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&cfg.Body.Model, "model", "gpt-4o-mini", "model in the request body")
	fs.IntVar(&cfg.Body.Bytes, "body-bytes", 1024, "approximate request body size")
	fs.BoolVar(&cfg.Body.Stream, "stream", false, "stream the response (SSE) and measure time to first event")
	fs.IntVar(&cfg.Body.Events, "events", 0, "content events per response, as the fake provider's [fake:chunks=N] (0: the provider's own answer)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests/s over all workers, -c bounds those in flight, latency counts from each due time (0: closed loop, each worker sends its next request at once)")
	fs.StringVar(&cfg.Arrival, "arrival", arrivalPoisson, "open loop: poisson (exponential gaps) or fixed (even gaps)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "open loop: seed of the Poisson gaps")
	fs.IntVar(&cfg.Body.SlowMS, "slow", 0, "ask the fake provider to wait this many ms before each chunk or answer ([fake:slow=MS])")
	fs.StringVar(&cfg.APIKey, "api-key", "", "bearer token to send (the fake provider wants one; the gateway ignores it)")
	fs.StringVar(&jsonPath, "json", "", `write the result as JSON to this file ("-" for stdout)`)
	fs.BoolVar(&quiet, "q", false, "no human summary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if id.Cert == "" || id.Key == "" || id.Bundle == "" {
		return fmt.Errorf("-cert, -key and -bundle are required")
	}
	tlsCfg, err := clientTLS(id)
	if err != nil {
		return err
	}
	cfg.TLS = tlsCfg
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	if !quiet {
		res.writeSummary(stderr)
	}
	switch jsonPath {
	case "":
	case "-":
		if err := res.writeJSON(stdout); err != nil {
			return err
		}
	default:
		f, err := os.Create(jsonPath)
		if err != nil {
			return err
		}
		if err := res.writeJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
