package fakemcp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-dev/portcullis/internal/fakemcp"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, url, token string) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	return c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: bearer{token}}, MaxRetries: -1}, nil)
}

func TestToolsOverStreamableHTTP(t *testing.T) {
	srv, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cs, err := connect(t, srv.URL(), "secret")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	if got, want := strings.Join(names, ","), "delete_records,get_weather,search_docs"; got != want {
		t.Errorf("tools = %s, want %s", got, want)
	}

	tests := []struct {
		tool    string
		args    map[string]any
		isError bool
		want    string
	}{
		{"get_weather", map[string]any{"location": "Paris"}, false, `"conditions":"sunny"`},
		{"get_weather", map[string]any{"location": "Paris", "unit": "fahrenheit"}, false, `"temperature":69.8`},
		{"get_weather", map[string]any{"location": "nowhere"}, true, "no weather station"},
		{"search_docs", map[string]any{"query": "audit"}, false, `"Audit log format"`},
		{"delete_records", map[string]any{"table": "orders", "filter": "id = 42"}, false, `"deleted":1`},
	}
	for _, tt := range tests {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.tool, Arguments: tt.args})
		if err != nil {
			t.Fatalf("%s: %v", tt.tool, err)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if res.IsError != tt.isError || !strings.Contains(text, tt.want) {
			t.Errorf("%s(%v) = error %v %q, want error %v containing %q", tt.tool, tt.args, res.IsError, text, tt.isError, tt.want)
		}
	}
	if got := len(srv.Calls()); got != len(tests) {
		t.Errorf("recorded %d calls, want %d", got, len(tests))
	}
}

func TestTokenRequired(t *testing.T) {
	srv, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if cs, err := connect(t, srv.URL(), "wrong"); err == nil {
		cs.Close()
		t.Fatal("connected with a wrong token")
	}
}
