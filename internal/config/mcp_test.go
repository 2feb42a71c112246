package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMCPServers(t *testing.T) {
	t.Setenv("PORTCULLIS_TEST_MCP_TOKEN", "tok-env")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("tok-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := MCPServer{Name: "tools", URL: "https://mcp.internal/mcp", Headers: []MCPHeader{
		{Name: "Authorization", ValueEnv: "PORTCULLIS_TEST_MCP_TOKEN", Prefix: "Bearer "},
		{Name: "X-Api-Key", ValueFile: file},
	}}
	tests := []struct {
		name      string
		edit      func(s *MCPServer)
		wantField string // "" = valid
	}{
		{"valid", func(*MCPServer) {}, ""},
		{"bad name", func(s *MCPServer) { s.Name = "a/b" }, "mcp_servers[0].name"},
		{"relative url", func(s *MCPServer) { s.URL = "/mcp" }, "mcp_servers[0].url"},
		{"negative timeout", func(s *MCPServer) { s.Timeout = -1 }, "mcp_servers[0].timeout"},
		{"value in neither place", func(s *MCPServer) { s.Headers = []MCPHeader{{Name: "Authorization"}} }, "mcp_servers[0].headers[0]"},
		{"unset env", func(s *MCPServer) { s.Headers = []MCPHeader{{Name: "A", ValueEnv: "PORTCULLIS_TEST_UNSET_VAR"}} }, "mcp_servers[0].headers[0].value_env"},
		{"missing file", func(s *MCPServer) { s.Headers = []MCPHeader{{Name: "A", ValueFile: file + ".nope"}} }, "mcp_servers[0].headers[0].value_file"},
		{"bad header name", func(s *MCPServer) { s.Headers = []MCPHeader{{Name: "A B", ValueEnv: "PORTCULLIS_TEST_MCP_TOKEN"}} }, "mcp_servers[0].headers[0].name"},
	}
	for _, tt := range tests {
		s := good
		s.Headers = append([]MCPHeader(nil), good.Headers...)
		tt.edit(&s)
		err := (&Config{MCPServers: []MCPServer{s}}).validateMCP()
		var fe *FieldError
		switch {
		case tt.wantField == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tt.name, err)
		case tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField):
			t.Errorf("%s: got %v, want a FieldError on %s", tt.name, err, tt.wantField)
		}
	}
	if err := (&Config{MCPServers: []MCPServer{good, good}}).validateMCP(); err == nil {
		t.Error("a server defined twice is accepted")
	}
	h, err := good.Header()
	if err != nil || h.Get("Authorization") != "Bearer tok-env" || h.Get("X-Api-Key") != "tok-file" {
		t.Errorf("Header() = %v, %v", h, err)
	}
}
