package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The MCP endpoint (docs/mcp.md). /mcp/{server} is a Streamable HTTP MCP
// server in front of each configured upstream MCP server. Each HTTP request
// is handled statelessly, as the caller its SVID (and grant) says it is: the
// gateway answers initialize itself, filters tools/list through policy, and
// decides, audits and forwards each tools/call on its own (mcp_call.go).
// Other methods get the SDK's defaults (no prompts, no resources).

// MCPServer is an upstream MCP server, served to clients at /mcp/{Name}.
type MCPServer struct {
	// Name is the path segment and input.tool.server in policy.
	Name string
	// URL is the server's Streamable HTTP endpoint.
	URL string
	// Header is added to every upstream request: the gateway's credentials
	// for the server. Clients never see it and cannot set it.
	Header http.Header
	// Timeout bounds one upstream operation (connect, list, call); default
	// 60 seconds.
	Timeout time.Duration
	// Transport carries upstream requests; default a pooled transport.
	Transport http.RoundTripper
}

var mcpServerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// mcpUpstream is the gateway's client side of one upstream server: one
// shared session, opened on first use and reopened after it breaks.
type mcpUpstream struct {
	cfg    MCPServer
	client *mcp.Client
	httpc  *http.Client

	mu      sync.Mutex
	session *mcp.ClientSession
}

func newMCPUpstreams(list []MCPServer) (map[string]*mcpUpstream, error) {
	ups := make(map[string]*mcpUpstream, len(list))
	for _, s := range list {
		if !mcpServerName.MatchString(s.Name) {
			return nil, fmt.Errorf("proxy: config: MCP server name %q: want letters, digits, '_', '.', '-'", s.Name)
		}
		if ups[s.Name] != nil {
			return nil, fmt.Errorf("proxy: config: MCP server %q defined twice", s.Name)
		}
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("proxy: config: MCP server %s: URL %q is not an absolute http(s) URL", s.Name, s.URL)
		}
		if s.Timeout <= 0 {
			s.Timeout = 60 * time.Second
		}
		base := s.Transport
		if base == nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.ForceAttemptHTTP2 = true
			base = t
		}
		ups[s.Name] = &mcpUpstream{
			cfg:    s,
			client: mcp.NewClient(&mcp.Implementation{Name: "portcullis", Version: "1"}, nil),
			httpc:  &http.Client{Transport: headerTransport{next: base, header: s.Header}},
		}
	}
	return ups, nil
}

// headerTransport adds the gateway's credentials to upstream requests.
type headerTransport struct {
	next   http.RoundTripper
	header http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.header) > 0 {
		r = r.Clone(r.Context())
		for k, v := range t.header {
			r.Header[k] = v
		}
	}
	return t.next.RoundTrip(r)
}

// sessionFor returns the shared session, connecting if there is none. The
// session outlives the request that opens it, so connecting does not follow
// that request's cancellation; it is bounded by the server's timeout.
func (u *mcpUpstream) sessionFor() (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.session != nil {
		return u.session, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.Timeout) // outlives the request that opens it
	defer cancel()
	cs, err := u.client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: u.cfg.URL, HTTPClient: u.httpc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: MCP server %s: connect: %w", u.cfg.Name, err)
	}
	u.session = cs
	return cs, nil
}

// close ends the shared session, if there is one.
func (u *mcpUpstream) close() error {
	u.mu.Lock()
	cs := u.session
	u.session = nil
	u.mu.Unlock()
	if cs == nil {
		return nil
	}
	if err := cs.Close(); err != nil {
		return fmt.Errorf("proxy: MCP server %s: close session: %w", u.cfg.Name, err)
	}
	return nil
}

// drop forgets a broken session so that the next use reconnects.
func (u *mcpUpstream) drop(cs *mcp.ClientSession) {
	u.mu.Lock()
	if u.session == cs {
		u.session = nil
	}
	u.mu.Unlock()
	_ = cs.Close()
}

// broken reports whether err means the session itself is gone, rather than
// the server having answered with an error.
func broken(err error) bool {
	return errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, mcp.ErrSessionMissing)
}

// listTools returns every tool of the upstream server, all pages. A broken
// session is reopened once.
func (u *mcpUpstream) listTools(ctx context.Context) ([]*mcp.Tool, error) {
	for try := 0; ; try++ {
		cs, err := u.sessionFor()
		if err != nil {
			return nil, err
		}
		tools, err := u.listOnce(ctx, cs)
		if err == nil {
			return tools, nil
		}
		if broken(err) {
			u.drop(cs)
			if try == 0 {
				continue
			}
		}
		return nil, fmt.Errorf("proxy: MCP server %s: tools/list: %w", u.cfg.Name, err)
	}
}

// maxMCPTools caps the tools the gateway lists from one server.
const maxMCPTools = 1000

func (u *mcpUpstream) listOnce(ctx context.Context, cs *mcp.ClientSession) ([]*mcp.Tool, error) {
	ctx, cancel := upstreamContext(ctx, u.cfg.Timeout)
	defer cancel()
	var tools []*mcp.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		if len(tools) == maxMCPTools {
			return nil, fmt.Errorf("more than %d tools", maxMCPTools)
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// callTool forwards one call. It is never retried: the server may have run it.
func (u *mcpUpstream) callTool(ctx context.Context, name string, args []byte) (*mcp.CallToolResult, error) {
	cs, err := u.sessionFor()
	if err != nil {
		return nil, err
	}
	ctx, cancel := upstreamContext(ctx, u.cfg.Timeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: rawJSON(args)})
	if err != nil {
		if broken(err) {
			u.drop(cs)
		}
		return nil, err
	}
	return res, nil
}

// upstreamContext is the context of a request to an upstream server: it
// ends when ctx ends or after timeout, but carries none of ctx's values.
// The SDK keeps the downstream session's protocol version in the context of
// the request it serves, and a client call made with that context would
// send it upstream, where a server that speaks an older version refuses it.
func upstreamContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	up, cancel := context.WithTimeout(context.Background(), timeout)
	stop := context.AfterFunc(ctx, cancel)
	return up, func() { stop(); cancel() }
}

// rawJSON marshals as itself.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// serveMCP serves /mcp/{server}: it resolves the upstream and the caller's
// grant and user context, then lets the SDK's stateless Streamable HTTP
// handler serve the request with a server bound to this caller.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	// ServeMux.Handler (gateway.go) does not fill in PathValue.
	name := strings.TrimPrefix(r.URL.Path, "/mcp/")
	up := g.mcp[name]
	if up == nil {
		writeError(w, apiError{Status: http.StatusNotFound, Code: codeNotFound, RequestID: c.id, Shape: shapeOpenAI,
			Message: fmt.Sprintf("no MCP server %q on this gateway", name)})
		return
	}
	task, ok := g.mcpTask(w, r, c, up.cfg.Name)
	if !ok {
		return
	}
	srv := g.mcpServerFor(r, c, task, up)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, MaxRequestBodyBytes: g.cfg.MaxBodyBytes})
	h.ServeHTTP(w, r)
}

// mcpTask verifies the grant and user token an MCP request presents, as the
// model APIs do (checkTask). When it returns false it has audited and
// answered.
func (g *Gateway) mcpTask(w http.ResponseWriter, r *http.Request, c *caller, server string) (*taskContext, bool) {
	in := toolInput(c, nil, nil, toolUse{server: server})
	a := &action{c: c, name: "tool.call", in: in, shape: shapeOpenAI}
	gr, ref := g.presentedGrant(r, c)
	if gr != nil {
		in.Grant, in.Chain, in.User = policyGrant(gr), gr.Chain, policyUser(gr.User)
	}
	if ref != nil {
		g.refuseAction(w, r, a, ref.status, ref.code, ref.msg)
		return nil, false
	}
	user, ok := g.userContext(w, r, a)
	if !ok {
		return nil, false
	}
	tc := &taskContext{grant: gr, user: user}
	if gr != nil && gr.User != nil {
		if user != nil && *user != *gr.User {
			g.refuseAction(w, r, a, http.StatusForbidden, codeUserToken,
				"the user token names "+user.Subject+" but the task grant was issued for "+gr.User.Subject)
			return nil, false
		}
		tc.user = gr.User
	}
	return tc, true
}
