package proxy_test

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-dev/portcullis/identity"
)

// TestGatewayCloseEndsMCPSessions: after a tool call the gateway holds one
// session with the (stateful) upstream server; Close ends it there (HTTP
// DELETE), and a later call opens a new one. Calls reach a stateful server
// at all only because upstream calls do not inherit the downstream
// request's context values (upstreamContext).
func TestGatewayCloseEndsMCPSessions(t *testing.T) {
	env, up := startMCPGateway(t) // a stateful upstream, as most are
	call := func() {
		t.Helper()
		if _, err := env.mustMCP(identity.DevAppID, "").CallTool(context.Background(), &mcp.CallToolParams{
			Name: "get_weather", Arguments: map[string]any{"location": "Oslo"}}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	if n := up.Ended(); n != 0 {
		t.Fatalf("sessions ended before Close: %d", n)
	}
	if err := env.gw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := up.Ended(); n != 1 {
		t.Fatalf("sessions ended by Close: %d, want 1", n)
	}
	call()
	if got := len(up.Calls()); got != 2 {
		t.Fatalf("upstream calls = %d, want 2 (the second over a new session)", got)
	}
}
