package workload

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Flags are the command-line options every example shares.
type Flags struct {
	Gateway   string // base URL of the gateway's OpenAI API
	GatewayID string // SPIFFE ID the gateway must present
	Cert, Key string // dev mode: SVID PEM files instead of the Workload API
	CA        string // dev mode: bundle PEM
}

// Register adds the shared flags to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Gateway, "gateway", "https://localhost:8443/v1/", "the gateway's OpenAI base URL")
	fs.StringVar(&f.GatewayID, "gateway-id", "", "SPIFFE ID the gateway must present (default: any ID in its trust domain)")
	fs.StringVar(&f.Cert, "cert", "", "SVID certificate PEM (dev mode); default: the Workload API at $SPIFFE_ENDPOINT_SOCKET")
	fs.StringVar(&f.Key, "key", "", "SVID key PEM (dev mode)")
	fs.StringVar(&f.CA, "ca", "", "trust bundle PEM (dev mode)")
}

// Workload is an SVID and the trust bundle to check the gateway with.
type Workload struct {
	svid   x509svid.Source
	bundle x509bundle.Source
	id     spiffeid.ID
	authz  tlsconfig.Authorizer
	close  func() error
}

// FromFlags loads the workload's identity: PEM files when -cert is given,
// otherwise the SPIFFE Workload API (waiting at most 30 s for an SVID).
func FromFlags(ctx context.Context, f Flags) (*Workload, error) {
	w := &Workload{close: func() error { return nil }}
	if f.Cert != "" {
		svid, err := x509svid.Load(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load SVID: %w", err)
		}
		bundle, err := x509bundle.Load(svid.ID.TrustDomain(), f.CA)
		if err != nil {
			return nil, fmt.Errorf("load bundle: %w", err)
		}
		w.svid, w.bundle, w.id = svid, bundle, svid.ID
	} else {
		if os.Getenv("SPIFFE_ENDPOINT_SOCKET") == "" {
			return nil, errors.New("no identity: set SPIFFE_ENDPOINT_SOCKET (SPIRE agent) or pass -cert, -key and -ca (dev mode)")
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		src, err := workloadapi.NewX509Source(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch SVID from the Workload API (is this workload registered?): %w", err)
		}
		svid, err := src.GetX509SVID()
		if err != nil {
			src.Close()
			return nil, err
		}
		w.svid, w.bundle, w.id, w.close = src, src, svid.ID, src.Close
	}
	w.authz = tlsconfig.AuthorizeMemberOf(w.id.TrustDomain())
	if f.GatewayID != "" {
		gid, err := spiffeid.FromString(f.GatewayID)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("-gateway-id: %w", err)
		}
		w.authz = tlsconfig.AuthorizeID(gid)
	}
	return w, nil
}

// ID is the workload's SPIFFE ID.
func (w *Workload) ID() spiffeid.ID { return w.id }

// Close releases the Workload API connection, if any.
func (w *Workload) Close() error { return w.close() }

// HTTPClient presents the SVID and checks the gateway's.
func (w *Workload) HTTPClient() *http.Client {
	cfg := tlsconfig.MTLSClientConfig(w.svid, w.bundle, w.authz)
	cfg.MinVersion = tls.VersionTLS13
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 60 * time.Second}
}

// OpenAI returns the official OpenAI client pointed at the gateway. apiKey is
// what the SDK sends as "Authorization: Bearer": a task grant, or anything
// when the caller needs none — it never reaches the provider.
func (w *Workload) OpenAI(gateway, apiKey string) openai.Client {
	if apiKey == "" {
		apiKey = "no-grant"
	}
	return openai.NewClient(
		option.WithBaseURL(gateway),
		option.WithHTTPClient(w.HTTPClient()),
		option.WithAPIKey(apiKey),
		option.WithMaxRetries(0),
	)
}

// Explain turns an SDK error into one line for a person.
func Explain(err error) string {
	var e *openai.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("refused by the gateway: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
	}
	return err.Error()
}
