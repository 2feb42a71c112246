package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// startStream opens a slow stream and waits for its first chunk.
func startStream(t *testing.T, env *gatewayEnv, directive string) (chan error, *http.Response) {
	t.Helper()
	var resp *http.Response
	stream := env.chat(identity.DevAppID).NewStreaming(context.Background(), chatParams("gpt-4o-mini", directive), option.WithResponseInto(&resp))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	done := make(chan error, 1)
	go func() {
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		done <- stream.Err()
	}()
	return done, resp
}

func TestShutdownLetsInFlightStreamsFinish(t *testing.T) {
	env := startGateway(t, envOptions{})
	done, _ := startStream(t, env, "[fake:chunks=6] [fake:slow=50]")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want a clean drain", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight stream failed during a graceful drain: %v", err)
	}
}

func TestShutdownCancelsStreamsAfterDrainTime(t *testing.T) {
	env := startGateway(t, envOptions{})
	done, resp := startStream(t, env, "[fake:chunks=200] [fake:slow=100]")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := env.srv.Shutdown(ctx); !errors.Is(err, proxy.ErrDrainTimeout) {
		t.Fatalf("Shutdown = %v, want ErrDrainTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stream cut by shutdown ended cleanly")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still running after shutdown")
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 {
		t.Fatalf("want decision and completion records, got %v", recs)
	}
	if msg, _ := recs[1]["error"].(string); !strings.Contains(msg, "drain time exceeded") {
		t.Errorf("completion record error = %q; want the shutdown reason", msg)
	}
}
