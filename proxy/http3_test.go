package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
)

// h3Client is an HTTP/3-only client presenting the given TLS config.
func (e *gatewayEnv) h3Client(cfg *tls.Config) *http.Client {
	tr := &http3.Transport{TLSClientConfig: cfg}
	e.t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func (e *gatewayEnv) h3OpenAI(id string) openai.Client {
	src := identity.NewStaticSource(e.svid(id), x509bundle.NewSet(e.ca.Bundle()))
	return openai.NewClient(
		option.WithBaseURL("https://"+e.addr+"/v1/"),
		option.WithHTTPClient(e.h3Client(identity.ClientTLSConfig(src, e.ca.TrustDomain()))),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
}

func TestHTTP3EndToEnd(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.h3OpenAI(identity.DevAppID)

	var resp *http.Response
	got, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini", "over quic"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("HTTP/3 chat: %v", err)
	}
	if resp.ProtoMajor != 3 {
		t.Fatalf("response protocol %s, want HTTP/3", resp.Proto)
	}
	if !strings.Contains(got.Choices[0].Message.Content, "you said over quic") {
		t.Errorf("content = %q", got.Choices[0].Message.Content)
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 || get(recs[0], "principal", "spiffe_id") != identity.DevAppID || get(recs[0], "principal", "kind") != "application" {
		t.Fatalf("HTTP/3 principal differs from HTTP/2's: %v", recs)
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-4o-mini", "[fake:chunks=10]"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || len(strings.Fields(acc.Choices[0].Message.Content)) != 10 {
		t.Fatalf("HTTP/3 stream: err %v, content %q", err, acc.Choices[0].Message.Content)
	}

	agent := env.h3OpenAI(identity.DevAgentID)
	_, err = agent.Chat.Completions.New(context.Background(), chatParams("gpt-4o", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "policy_denied" {
		t.Fatalf("HTTP/3 deny: err = %v", err)
	}
}

func TestAltSvcAdvertisedOnTCP(t *testing.T) {
	env := startGateway(t, envOptions{})
	c := env.httpClient(env.svid(identity.DevAppID))
	resp, err := c.Get("https://" + env.addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	port := env.addr[strings.LastIndex(env.addr, ":"):]
	if got := resp.Header.Get("Alt-Svc"); !strings.HasPrefix(got, `h3="`+port+`"`) {
		t.Errorf("Alt-Svc = %q, want h3 on %s", got, port)
	}
}

func TestHTTP3HandshakeRefusals(t *testing.T) {
	env := startGateway(t, envOptions{})
	td := env.ca.TrustDomain()
	foreign := spiffetest.NewCA(t, "evil.example")
	devLike := spiffetest.NewCA(t, identity.DevTrustDomain)
	noCert := clientTLS(env.svid(identity.DevAppID), env.ca.Bundle(), td)
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	for name, cfg := range map[string]*tls.Config{
		"foreign trust domain":  clientTLS(foreign.SVID(t, "spiffe://evil.example/tenant/acme/app/x"), env.ca.Bundle(), td),
		"untrusted CA":          clientTLS(devLike.SVID(t, identity.DevAppID), env.ca.Bundle(), td),
		"expired":               expiredFromDevCA(t, env),
		"no client certificate": noCert,
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := env.h3Client(cfg).Get("https://" + env.addr + "/v1/models")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("HTTP/3 request succeeded with %d; want the handshake refused", resp.StatusCode)
			}
		})
	}
}
