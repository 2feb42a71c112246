package fakeprovider

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// MaxBodyBytes caps a request body. Larger bodies are refused with 413 in the
// API's error shape, as the real providers do.
const MaxBodyBytes = 8 << 20

// defaultRecordLimit is how many requests Requests keeps when
// Options.RecordLimit is zero.
const defaultRecordLimit = 1024

// DefaultModels is the model list served when Options.Models is empty.
var DefaultModels = []string{
	"gpt-4o-mini",
	"gpt-4o",
	"gpt-4.1-mini",
	"o3-mini",
	"text-embedding-3-small",
	"text-embedding-3-large",
	"claude-sonnet-4-5",
	"claude-sonnet-5-5",
	"claude-haiku-4-5",
	"claude-opus-4-1",
}

// Options configures a Server. The zero value is usable.
type Options struct {
	// APIKey, if set, must be presented by every request: OpenAI endpoints
	// want "Authorization: Bearer KEY", Anthropic endpoints "x-api-key: KEY"
	// or "Authorization: Bearer KEY".
	// A missing or wrong key is a 401 in the provider's error shape.
	APIKey string
	// Models lists the model ids served; DefaultModels when empty. Ids that
	// start with "claude" are Anthropic models, ids that contain "embedding"
	// are embedding models, the rest are OpenAI chat models.
	Models []string
	// Logger receives one line per request; logrus's standard logger when nil.
	Logger logrus.FieldLogger
	// Clock stamps "created" fields; time.Now when nil.
	Clock func() time.Time
	// RecordLimit is how many requests Requests keeps (the most recent ones);
	// 1024 when zero, none when negative.
	RecordLimit int
	// TLS, if set, makes Listen serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN)
	// with this configuration. Otherwise Listen serves plain HTTP/1.1 and
	// HTTP/2 with prior knowledge (h2c).
	TLS *tls.Config
}

// Recorded is one request as the fake received it.
type Recorded struct {
	Method string
	Path   string // URL path, without the query
	Query  string // raw query
	Proto  string // "HTTP/1.1" or "HTTP/2.0"
	Header http.Header
	Body   []byte
	Time   time.Time // from Options.Clock
}

// Server is a fake OpenAI and Anthropic API. It is an http.Handler; Listen
// also serves it on a socket.
type Server struct {
	apiKey      string
	models      []string
	log         logrus.FieldLogger
	clock       func() time.Time
	recordLimit int

	seq       atomic.Int64
	cancelled atomic.Int64
	total     atomic.Int64

	mu       sync.Mutex
	recorded []Recorded

	httpSrv *http.Server
	ln      net.Listener
	url     string
	done    chan struct{}
}

var _ http.Handler = (*Server)(nil)

// New returns a Server that is not listening; use it as an http.Handler.
// URL returns "" for such a server.
func New(opts Options) *Server {
	s := &Server{
		apiKey:      opts.APIKey,
		models:      append([]string(nil), opts.Models...),
		log:         opts.Logger,
		clock:       opts.Clock,
		recordLimit: opts.RecordLimit,
	}
	if len(s.models) == 0 {
		s.models = append([]string(nil), DefaultModels...)
	}
	if s.log == nil {
		s.log = logrus.StandardLogger()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.recordLimit == 0 {
		s.recordLimit = defaultRecordLimit
	}
	return s
}

// Listen starts a Server on addr (for tests "127.0.0.1:0") and returns once
// it accepts connections. Close stops it.
func Listen(addr string, opts Options) (*Server, error) {
	s := New(opts)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: listen: %w", err)
	}
	scheme := "http"
	var protos http.Protocols
	protos.SetHTTP1(true)
	if opts.TLS != nil {
		scheme = "https"
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	s.ln = ln
	s.url = scheme + "://" + ln.Addr().String() + "/v1"
	s.done = make(chan struct{})
	s.httpSrv = &http.Server{
		Handler:           s,
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
	}
	if opts.TLS != nil {
		s.httpSrv.TLSConfig = opts.TLS.Clone()
	}
	go func() {
		defer close(s.done)
		if opts.TLS != nil {
			_ = s.httpSrv.ServeTLS(ln, "", "")
			return
		}
		_ = s.httpSrv.Serve(ln)
	}()
	return s, nil
}

// URL is the OpenAI-style base URL, "http://127.0.0.1:PORT/v1". The
// Anthropic SDK wants the URL without "/v1": strings.TrimSuffix(s.URL(), "/v1").
func (s *Server) URL() string { return s.url }

// Addr is the listening address, "" for a Server made by New.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops a listening Server at once, cutting open streams. It is a
// no-op for a Server made by New.
func (s *Server) Close() error {
	if s.httpSrv == nil {
		return nil
	}
	err := s.httpSrv.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("fakeprovider: close: %w", err)
	}
	return nil
}

// Requests returns copies of the most recent requests received, oldest first.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.recorded))
	for i, r := range s.recorded {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// RequestCount is the number of requests received since the Server started,
// including those no longer kept by Requests.
func (s *Server) RequestCount() int { return int(s.total.Load()) }

// Cancelled is the number of requests the client abandoned (its context was
// cancelled or a write failed) before the fake finished its answer.
func (s *Server) Cancelled() int { return int(s.cancelled.Load()) }

// Reset forgets the recorded requests and zeroes the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	s.recorded = nil
	s.mu.Unlock()
	s.total.Store(0)
	s.cancelled.Store(0)
}

func (s *Server) record(r *http.Request, body []byte) {
	s.total.Add(1)
	if s.recordLimit < 0 {
		return
	}
	rec := Recorded{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
		Proto:  r.Proto,
		Header: r.Header.Clone(),
		Body:   body,
		Time:   s.clock(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recorded) >= s.recordLimit {
		n := copy(s.recorded, s.recorded[len(s.recorded)-s.recordLimit+1:])
		s.recorded = s.recorded[:n]
	}
	s.recorded = append(s.recorded, rec)
}

// api names the wire format a request is answered in.
type api int

const (
	apiOpenAI api = iota
	apiAnthropic
)

// apiFor decides which provider a request speaks: /v1/messages is
// Anthropic's; /v1/models is Anthropic's when the request carries
// x-api-key or anthropic-version; the rest is OpenAI's.
func apiFor(r *http.Request) api {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/messages"):
		return apiAnthropic
	case r.Header.Get("anthropic-version") != "" || r.Header.Get("x-api-key") != "":
		return apiAnthropic
	}
	return apiOpenAI
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.seq.Add(1)
	kind := apiFor(r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	s.record(r, body)
	log := s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "seq": n})
	log.Debug("fakeprovider: request")
	x := &exchange{s: s, w: w, r: r, body: body, seq: n, api: kind, log: log}
	x.setRequestID()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			x.fail(errTooLarge())
			return
		}
		x.cancelled()
		return
	}
	if e := s.authenticate(r, kind); e != nil {
		x.fail(e)
		return
	}
	switch {
	case r.URL.Path == "/v1/chat/completions":
		x.only(http.MethodPost, x.chatCompletions)
	case r.URL.Path == "/v1/embeddings":
		x.only(http.MethodPost, x.embeddings)
	case r.URL.Path == "/v1/responses":
		x.only(http.MethodPost, x.responses)
	case r.URL.Path == "/v1/messages":
		x.only(http.MethodPost, x.messages)
	case r.URL.Path == "/v1/messages/count_tokens":
		x.only(http.MethodPost, x.countTokens)
	case r.URL.Path == "/v1/models":
		x.only(http.MethodGet, x.listModels)
	case strings.HasPrefix(r.URL.Path, "/v1/models/"):
		x.only(http.MethodGet, x.getModel)
	default:
		x.fail(errNotFoundPath(r.Method, r.URL.Path))
	}
}

// authenticate checks the provider key the way each provider does.
func (s *Server) authenticate(r *http.Request, kind api) *apiError {
	if s.apiKey == "" {
		return nil
	}
	if kind == apiAnthropic {
		// The API takes the key as x-api-key or as a bearer token (which is
		// what anthropic-sdk-go's WithAPIKey sends).
		key := r.Header.Get("x-api-key")
		if key == "" {
			key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		switch {
		case key == "":
			return errUnauthenticated("x-api-key header is required")
		case key != s.apiKey:
			return errUnauthenticated("invalid x-api-key")
		}
		return nil
	}
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "":
		return errUnauthenticated("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
	case !ok || key != s.apiKey:
		e := errUnauthenticated("Incorrect API key provided: " + redactKey(key) + ". You can find your API key at https://platform.openai.com/account/api-keys.")
		e.code = "invalid_api_key"
		return e
	}
	return nil
}

// redactKey shows a key the way OpenAI's error message does: a few leading
// and trailing characters.
func redactKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

// exchange is one request being answered.
type exchange struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	body []byte
	seq  int64
	api  api
	log  logrus.FieldLogger

	gone bool // the client went away; counted once in Server.cancelled
}

func (x *exchange) ctx() context.Context { return x.r.Context() }

func (x *exchange) only(method string, h func()) {
	if x.r.Method != method {
		x.fail(errNotFoundPath(x.r.Method, x.r.URL.Path))
		return
	}
	h()
}

// id formats a deterministic identifier from the request sequence number.
func (x *exchange) id(prefix string) string {
	return fmt.Sprintf("%s%024d", prefix, x.seq)
}

func (x *exchange) setRequestID() {
	if x.api == apiAnthropic {
		x.w.Header().Set("request-id", x.id("req_fake"))
		return
	}
	x.w.Header().Set("x-request-id", x.id("req_fake"))
	x.w.Header().Set("openai-version", "2020-10-01")
	x.w.Header().Set("openai-processing-ms", "1")
}

// cancelled notes that the client went away before the answer was done.
func (x *exchange) cancelled() {
	if x.gone {
		return
	}
	x.gone = true
	x.s.cancelled.Add(1)
	x.log.Debug("fakeprovider: client cancelled")
}

// sleep waits d or until the client goes away; false if it went away.
func (x *exchange) sleep(d time.Duration) bool {
	if d <= 0 {
		return x.ctx().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.ctx().Done():
		return false
	}
}
