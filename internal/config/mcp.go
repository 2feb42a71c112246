package config

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// MCPServer is an upstream MCP server the gateway serves at /mcp/{name}
// (docs/mcp.md). Its credentials stay in the gateway: each header value
// comes from an environment variable or a file, never from the YAML itself,
// and clients never see it.
type MCPServer struct {
	Name string `yaml:"name"`
	// URL is the server's Streamable HTTP endpoint.
	URL string `yaml:"url"`
	// Headers are added to every upstream request, e.g. Authorization.
	Headers []MCPHeader   `yaml:"headers"`
	Timeout time.Duration `yaml:"timeout"`
}

// MCPHeader is one header and where its value comes from: an environment
// variable or a file (trimmed), and an optional prefix such as "Bearer ".
type MCPHeader struct {
	Name      string `yaml:"name"`
	ValueEnv  string `yaml:"value_env"`
	ValueFile string `yaml:"value_file"`
	Prefix    string `yaml:"prefix"`
}

var mcpNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Header reads the server's credential headers.
func (s *MCPServer) Header() (http.Header, error) {
	h := http.Header{}
	for _, hd := range s.Headers {
		v := os.Getenv(hd.ValueEnv)
		if hd.ValueFile != "" {
			b, err := os.ReadFile(hd.ValueFile)
			if err != nil {
				return nil, fmt.Errorf("config: mcp server %s: %w", s.Name, err)
			}
			v = strings.TrimSpace(string(b))
		}
		h.Add(hd.Name, hd.Prefix+v)
	}
	return h, nil
}

func (c *Config) validateMCP() error {
	seen := map[string]bool{}
	for i, s := range c.MCPServers {
		f := fmt.Sprintf("mcp_servers[%d]", i)
		switch {
		case !mcpNameRE.MatchString(s.Name):
			return &FieldError{f + ".name", fmt.Sprintf("%q must be letters, digits, '_', '.' or '-' (it is the path /mcp/NAME)", s.Name)}
		case seen[s.Name]:
			return &FieldError{f + ".name", fmt.Sprintf("MCP server %q is defined twice", s.Name)}
		case s.Timeout < 0:
			return &FieldError{f + ".timeout", "must not be negative"}
		}
		seen[s.Name] = true
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &FieldError{f + ".url", fmt.Sprintf("%q must be an absolute http(s) URL", s.URL)}
		}
		for j, h := range s.Headers {
			hf := fmt.Sprintf("%s.headers[%d]", f, j)
			switch {
			case h.Name == "" || strings.ContainsAny(h.Name, " :\r\n"):
				return &FieldError{hf + ".name", fmt.Sprintf("%q is not a header name", h.Name)}
			case (h.ValueEnv == "") == (h.ValueFile == ""):
				return &FieldError{hf, "set exactly one of value_env or value_file: credentials are not written in the config"}
			case h.ValueEnv != "":
				if _, ok := os.LookupEnv(h.ValueEnv); !ok {
					return &FieldError{hf + ".value_env", fmt.Sprintf("environment variable %s is not set", h.ValueEnv)}
				}
			default:
				if _, err := os.ReadFile(h.ValueFile); err != nil {
					return &FieldError{hf + ".value_file", fmt.Sprintf("cannot read %q: %v", h.ValueFile, err)}
				}
			}
		}
	}
	return nil
}
