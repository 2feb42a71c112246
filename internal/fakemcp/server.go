package fakemcp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is the bearer token every request must present.
	Token string
	// Stateful gives each client a session (an Mcp-Session-Id), as most
	// real servers do; the default is stateless.
	Stateful bool
}

// Call is one tool call the server executed.
type Call struct {
	Tool      string
	Arguments map[string]any
}

// Server is a running fake MCP server.
type Server struct {
	opts  Options
	mcp   *mcp.Server
	h     http.Handler
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	calls []Call
	ended int // sessions the client ended (HTTP DELETE)
}

// New builds a Server without listening: use Handler.
func New(opts Options) *Server {
	s := &Server{opts: opts}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "fakemcp", Version: "1.0.0"}, nil)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "get_weather", Description: "Current weather for a location."}, s.getWeather)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "search_docs", Description: "Search the documentation; returns page titles."}, s.searchDocs)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "delete_records", Description: "Delete the rows of a table that match a filter.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)}}, s.deleteRecords)
	s.h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{Stateless: !opts.Stateful})
	return s
}

// Listen starts a Server on addr (use a loopback address).
func Listen(addr string, opts Options) (*Server, error) {
	s := New(opts)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakemcp: %w", err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.Handler())
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's MCP endpoint.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/mcp" }

// Close stops a Server started with Listen.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Handler serves the MCP endpoint, checking the bearer token if one is set.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != "" {
			got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) != 1 {
				http.Error(w, "fakemcp: missing or wrong bearer token", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodDelete {
			s.mu.Lock()
			s.ended++
			s.mu.Unlock()
		}
		s.h.ServeHTTP(w, r)
	})
}

// Ended is how many sessions their clients have ended (with HTTP DELETE,
// as the streamable HTTP transport closes a session).
func (s *Server) Ended() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Calls returns the tool calls executed so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *Server) record(tool string, args map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Tool: tool, Arguments: args})
}

func ptr[T any](v T) *T { return &v }

// WeatherIn are get_weather's arguments.
type WeatherIn struct {
	Location string `json:"location" jsonschema:"city or place name"`
	Unit     string `json:"unit,omitempty" jsonschema:"celsius or fahrenheit"`
}

// WeatherOut is get_weather's structured result.
type WeatherOut struct {
	Location    string  `json:"location"`
	Temperature float64 `json:"temperature"`
	Unit        string  `json:"unit"`
	Conditions  string  `json:"conditions"`
}

func (s *Server) getWeather(_ context.Context, _ *mcp.CallToolRequest, in WeatherIn) (*mcp.CallToolResult, WeatherOut, error) {
	s.record("get_weather", map[string]any{"location": in.Location, "unit": in.Unit})
	if strings.EqualFold(in.Location, "nowhere") {
		return nil, WeatherOut{}, errors.New("no weather station near nowhere")
	}
	out := WeatherOut{Location: in.Location, Temperature: 21, Unit: "celsius", Conditions: "sunny"}
	if in.Unit == "fahrenheit" {
		out.Temperature, out.Unit = 69.8, "fahrenheit"
	}
	return nil, out, nil
}

// SearchIn are search_docs's arguments.
type SearchIn struct {
	Query string `json:"query" jsonschema:"words to look for"`
	Limit int    `json:"limit,omitempty" jsonschema:"most results to return (default 3)"`
}

// SearchOut is search_docs's structured result.
type SearchOut struct {
	Results []string `json:"results"`
}

var docTitles = []string{"Configuration", "Policy contract", "Audit log format", "Task grants", "Human approvals", "MCP endpoint", "Providers"}

func (s *Server) searchDocs(_ context.Context, _ *mcp.CallToolRequest, in SearchIn) (*mcp.CallToolResult, SearchOut, error) {
	s.record("search_docs", map[string]any{"query": in.Query, "limit": in.Limit})
	limit := in.Limit
	if limit <= 0 {
		limit = 3
	}
	out := SearchOut{Results: []string{}}
	for _, t := range docTitles {
		if len(out.Results) < limit && (in.Query == "" || strings.Contains(strings.ToLower(t), strings.ToLower(in.Query))) {
			out.Results = append(out.Results, t)
		}
	}
	return nil, out, nil
}

// DeleteIn are delete_records's arguments.
type DeleteIn struct {
	Table  string `json:"table" jsonschema:"table name"`
	Filter string `json:"filter" jsonschema:"which rows, e.g. id = 42"`
}

// DeleteOut is delete_records's structured result.
type DeleteOut struct {
	Deleted int `json:"deleted"`
}

func (s *Server) deleteRecords(_ context.Context, _ *mcp.CallToolRequest, in DeleteIn) (*mcp.CallToolResult, DeleteOut, error) {
	s.record("delete_records", map[string]any{"table": in.Table, "filter": in.Filter})
	return nil, DeleteOut{Deleted: 1}, nil
}
