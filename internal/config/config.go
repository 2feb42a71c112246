package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration.
type Config struct {
	Listen       string      `yaml:"listen"`
	DisableHTTP3 bool        `yaml:"disable_http3"`
	TrustDomains []string    `yaml:"trust_domains"`
	SVID         SVID        `yaml:"svid"`
	Principals   []Principal `yaml:"principals"`
	Policy       Policy      `yaml:"policy"`
	Providers    []Provider  `yaml:"providers"`
	Audit        Audit       `yaml:"audit"`
	Limits       Limits      `yaml:"limits"`
	Log          Log         `yaml:"log"`
	Ops          Ops         `yaml:"ops"`
	// Grants, UserContext and RateLimits are described in grants.go.
	Grants      Grants               `yaml:"grants"`
	UserContext UserContext          `yaml:"user_context"`
	RateLimits  map[string]RateLimit `yaml:"rate_limits"`
	// Approvals is described in approvals.go.
	Approvals Approvals `yaml:"approvals"`
	// Store chooses the state backend (store.go).
	Store Store `yaml:"store"`
	// MCPServers are the upstream MCP servers (mcp.go).
	MCPServers []MCPServer `yaml:"mcp_servers"`
}

// Ops is the operations listener: plain HTTP, for /metrics, /healthz and
// /readyz. It carries no data-plane or admin operation.
type Ops struct {
	Listen  string `yaml:"listen"`
	Disable bool   `yaml:"disable"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ for profiling
	// a running gateway. Off by default.
	Pprof bool `yaml:"pprof"`
}

// SVID says where the gateway's own X.509-SVID and the trust bundles come from.
type SVID struct {
	// Source is "workload_api" or "files".
	Source      string      `yaml:"source"`
	WorkloadAPI WorkloadAPI `yaml:"workload_api"`
	Files       Files       `yaml:"files"`
}

// WorkloadAPI is a SPIFFE Workload API endpoint (a SPIRE agent).
type WorkloadAPI struct {
	// Socket is a unix:// address; empty means $SPIFFE_ENDPOINT_SOCKET.
	Socket  string        `yaml:"socket"`
	Timeout time.Duration `yaml:"timeout"`
}

// Files are PEM files re-read when they change.
type Files struct {
	Cert     string        `yaml:"cert"`
	Key      string        `yaml:"key"`
	Bundle   string        `yaml:"bundle"`
	Interval time.Duration `yaml:"interval"`
}

// Principal maps a SPIFFE ID template to a principal kind (and tenant).
type Principal struct {
	Match  string `yaml:"match"`
	Kind   string `yaml:"kind"`
	Tenant string `yaml:"tenant"`
}

// Policy locates the Rego bundle.
type Policy struct {
	// Bundle is a directory; empty means the embedded default bundle.
	Bundle    string        `yaml:"bundle"`
	Timeout   time.Duration `yaml:"timeout"`
	CacheSize int           `yaml:"cache_size"`
	// Watch re-reads the bundle when its files change (SIGHUP always does).
	Watch bool `yaml:"watch"`
}

// Provider is one upstream LLM service.
type Provider struct {
	Name       string        `yaml:"name"`
	Format     string        `yaml:"format"`
	BaseURL    string        `yaml:"base_url"`
	APIKeyEnv  string        `yaml:"api_key_env"`
	APIKeyFile string        `yaml:"api_key_file"`
	Timeout    time.Duration `yaml:"timeout"`
	Models     []Model       `yaml:"models"`
	// AnthropicVersion is the anthropic-version header for format
	// anthropic; default 2023-06-01.
	AnthropicVersion string `yaml:"anthropic_version"`
}

// Model is a client-facing model name and the provider's name for it.
type Model struct {
	Name     string `yaml:"name"`
	Upstream string `yaml:"upstream"`
	// Fallback lists "provider/model" targets tried in order when this
	// provider cannot be reached or answers 429 or 5xx (providers.go).
	Fallback []string `yaml:"fallback"`
}

// Audit configures the audit log.
type Audit struct {
	Dir string `yaml:"dir"`
	// DigestKeyFile holds the key for prompt digests (≥16 bytes); created if missing.
	DigestKeyFile string `yaml:"digest_key_file"`
	// SigningKeyFile holds the Ed25519 checkpoint signing key (made with
	// `portcullis audit key --generate`); it must exist when set. Empty: a
	// key beside Dir, generated on first start.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Origin names the log in its checkpoints; it must be the signing key's name.
	Origin string `yaml:"origin"`
	// CheckpointInterval is how often a checkpoint is signed (and at shutdown).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// SegmentMaxBytes and SegmentMaxAge rotate segment files.
	SegmentMaxBytes int64         `yaml:"segment_max_bytes"`
	SegmentMaxAge   time.Duration `yaml:"segment_max_age"`
}

// Limits bound what one request may cost.
type Limits struct {
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	BodyReadTimeout   time.Duration `yaml:"body_read_timeout"`
	RequestTimeout    time.Duration `yaml:"request_timeout"`
	WriteByteTimeout  time.Duration `yaml:"write_byte_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// MaxInFlightPerPrincipal caps one SPIFFE ID's requests in flight on a
	// replica; 0 is the default, negative is unlimited.
	MaxInFlightPerPrincipal int `yaml:"max_in_flight_per_principal"`
}

// Log configures process logging.
type Log struct {
	Format string `yaml:"format"` // json or text
	Level  string `yaml:"level"`
}

// Defaults.
const (
	DefaultListen          = "127.0.0.1:8443"
	DefaultOpsListen       = "127.0.0.1:9090"
	DefaultMaxBodyBytes    = 4 << 20
	DefaultShutdownTimeout = 30 * time.Second

	DefaultCheckpointInterval = time.Minute
)

// FieldError is a problem with one configuration field.
type FieldError struct {
	Field string // YAML path, e.g. providers[0].base_url
	Msg   string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Msg }

// Load reads, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b)
}

// Parse decodes and validates a YAML document.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: the file is empty")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Ops.Listen == "" && !c.Ops.Disable {
		c.Ops.Listen = DefaultOpsListen
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Limits.ShutdownTimeout == 0 {
		c.Limits.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.SVID.WorkloadAPI.Timeout == 0 {
		c.SVID.WorkloadAPI.Timeout = 30 * time.Second
	}
	for i := range c.Providers {
		if c.Providers[i].Format == "" {
			c.Providers[i].Format = "openai"
		}
	}
	c.setGrantDefaults()
	c.Store.setDefaults()
}

// Validate checks every field and returns the first problem found.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &FieldError{"listen", fmt.Sprintf("%q is not host:port", c.Listen)}
	}
	if !c.Ops.Disable {
		if _, _, err := net.SplitHostPort(c.Ops.Listen); err != nil {
			return &FieldError{"ops.listen", fmt.Sprintf("%q is not host:port", c.Ops.Listen)}
		}
	}
	if len(c.TrustDomains) == 0 {
		return &FieldError{"trust_domains", "at least one trust domain is required"}
	}
	for i, td := range c.TrustDomains {
		if td == "" || strings.ContainsAny(td, "/:") || strings.ToLower(td) != td {
			return &FieldError{fmt.Sprintf("trust_domains[%d]", i), fmt.Sprintf("%q is not a trust domain name (lowercase, no scheme or path)", td)}
		}
	}
	if err := c.SVID.validate(); err != nil {
		return err
	}
	if len(c.Principals) == 0 {
		return &FieldError{"principals", "at least one principal template is required; without one every caller is refused"}
	}
	for i, p := range c.Principals {
		f := fmt.Sprintf("principals[%d]", i)
		if !strings.HasPrefix(p.Match, "spiffe://") {
			return &FieldError{f + ".match", fmt.Sprintf("%q must be a SPIFFE ID template starting with spiffe://", p.Match)}
		}
		switch p.Kind {
		case "human", "application", "agent":
		default:
			return &FieldError{f + ".kind", fmt.Sprintf("%q must be one of human, application, agent", p.Kind)}
		}
		if !strings.Contains(p.Match, "{tenant}") && p.Tenant == "" {
			return &FieldError{f + ".tenant", "required when match has no {tenant} placeholder"}
		}
	}
	if c.Policy.Bundle != "" {
		if st, err := os.Stat(c.Policy.Bundle); err != nil || !st.IsDir() {
			return &FieldError{"policy.bundle", fmt.Sprintf("%q is not a readable directory", c.Policy.Bundle)}
		}
	}
	if c.Policy.Timeout < 0 {
		return &FieldError{"policy.timeout", "must not be negative"}
	}
	if len(c.Providers) == 0 {
		return &FieldError{"providers", "at least one provider is required"}
	}
	seenProv := map[string]bool{}
	seenModel := map[string]string{}
	for i, p := range c.Providers {
		f := fmt.Sprintf("providers[%d]", i)
		if p.Name == "" {
			return &FieldError{f + ".name", "required"}
		}
		if seenProv[p.Name] {
			return &FieldError{f + ".name", fmt.Sprintf("provider %q is defined twice", p.Name)}
		}
		seenProv[p.Name] = true
		if p.Format != "openai" && p.Format != "anthropic" {
			return &FieldError{f + ".format", fmt.Sprintf("%q is not supported (supported: openai, anthropic)", p.Format)}
		}
		u, err := url.Parse(p.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &FieldError{f + ".base_url", fmt.Sprintf("%q must be an absolute http(s) URL", p.BaseURL)}
		}
		if p.APIKeyEnv != "" && p.APIKeyFile != "" {
			return &FieldError{f, "set api_key_env or api_key_file, not both"}
		}
		if p.APIKeyEnv != "" {
			if _, ok := os.LookupEnv(p.APIKeyEnv); !ok {
				return &FieldError{f + ".api_key_env", fmt.Sprintf("environment variable %s is not set", p.APIKeyEnv)}
			}
		}
		if p.APIKeyFile != "" {
			if _, err := os.ReadFile(p.APIKeyFile); err != nil {
				return &FieldError{f + ".api_key_file", fmt.Sprintf("cannot read %q: %v", p.APIKeyFile, err)}
			}
		}
		if p.Timeout < 0 {
			return &FieldError{f + ".timeout", "must not be negative"}
		}
		if len(p.Models) == 0 {
			return &FieldError{f + ".models", "at least one model is required"}
		}
		for j, m := range p.Models {
			mf := fmt.Sprintf("%s.models[%d]", f, j)
			if m.Name == "" {
				return &FieldError{mf + ".name", "required"}
			}
			if other, dup := seenModel[m.Name]; dup {
				return &FieldError{mf + ".name", fmt.Sprintf("model %q is already served by provider %q", m.Name, other)}
			}
			seenModel[m.Name] = p.Name
		}
	}
	if err := c.validateFallbacks(); err != nil {
		return err
	}
	if c.Audit.Dir == "" {
		return &FieldError{"audit.dir", "required: the gateway refuses to run without an audit log"}
	}
	switch {
	case c.Audit.CheckpointInterval < time.Second:
		return &FieldError{"audit.checkpoint_interval", "must be at least 1s"}
	case c.Audit.SegmentMaxBytes < 0:
		return &FieldError{"audit.segment_max_bytes", "must not be negative"}
	case c.Audit.SegmentMaxAge < 0:
		return &FieldError{"audit.segment_max_age", "must not be negative"}
	case c.Audit.Origin != "" && strings.ContainsAny(c.Audit.Origin, " +\t\n"):
		return &FieldError{"audit.origin", fmt.Sprintf("%q must not contain spaces or +", c.Audit.Origin)}
	}
	if c.Limits.MaxBodyBytes < 0 {
		return &FieldError{"limits.max_body_bytes", "must not be negative"}
	}
	if c.Limits.MaxHeaderBytes < 0 {
		return &FieldError{"limits.max_header_bytes", "must not be negative"}
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return &FieldError{"log.format", fmt.Sprintf("%q must be json or text", c.Log.Format)}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &FieldError{"log.level", fmt.Sprintf("%q must be one of debug, info, warn, error", c.Log.Level)}
	}
	if err := c.validateGrants(); err != nil {
		return err
	}
	if err := c.validateApprovals(); err != nil {
		return err
	}
	if err := c.validateMCP(); err != nil {
		return err
	}
	return c.Store.validate()
}

func (s *SVID) validate() error {
	switch s.Source {
	case "workload_api":
		if s.WorkloadAPI.Socket == "" && os.Getenv("SPIFFE_ENDPOINT_SOCKET") == "" {
			return &FieldError{"svid.workload_api.socket", "required when SPIFFE_ENDPOINT_SOCKET is not set"}
		}
		if s.WorkloadAPI.Socket != "" && !strings.HasPrefix(s.WorkloadAPI.Socket, "unix://") && !strings.HasPrefix(s.WorkloadAPI.Socket, "tcp://") {
			return &FieldError{"svid.workload_api.socket", fmt.Sprintf("%q must be a unix:// or tcp:// address", s.WorkloadAPI.Socket)}
		}
	case "files":
		for _, f := range []struct{ name, path string }{{"cert", s.Files.Cert}, {"key", s.Files.Key}, {"bundle", s.Files.Bundle}} {
			if f.path == "" {
				return &FieldError{"svid.files." + f.name, "required"}
			}
			if _, err := os.Stat(f.path); err != nil {
				return &FieldError{"svid.files." + f.name, fmt.Sprintf("cannot read %q: %v", f.path, err)}
			}
		}
	case "":
		return &FieldError{"svid.source", "required: workload_api or files"}
	default:
		return &FieldError{"svid.source", fmt.Sprintf("%q must be workload_api or files", s.Source)}
	}
	return nil
}

// APIKey reads the provider's credential from its environment variable or file.
func (p *Provider) APIKey() (string, error) {
	switch {
	case p.APIKeyEnv != "":
		return os.Getenv(p.APIKeyEnv), nil
	case p.APIKeyFile != "":
		b, err := os.ReadFile(p.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("config: provider %s: %w", p.Name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}
