package spiretest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Environment of a workload driver.
const (
	driverEnv       = "PORTCULLIS_SPIRETEST_DRIVER" // set to anything: be a driver
	driverGatewayID = "PORTCULLIS_SPIRETEST_GATEWAY_ID"
	driverBaseURL   = "PORTCULLIS_SPIRETEST_BASE_URL"
)

// reply is what a driver prints, one JSON line per command.
type reply struct {
	OK        bool   `json:"ok"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
	Content   string `json:"content,omitempty"`
	OwnID     string `json:"own_id,omitempty"`
	OwnSerial string `json:"own_serial,omitempty"`
	GatewayID string `json:"gateway_id,omitempty"`
	GwSerial  string `json:"gateway_serial,omitempty"`
	Token     string `json:"token,omitempty"`
}

// runDriver is a workload that calls the gateway with the official OpenAI Go
// SDK over mTLS, its SVID and bundle coming from the Workload API at
// $SPIFFE_ENDPOINT_SOCKET. It reads commands from stdin:
//
//	call MODEL [USER_TOKEN]  one chat completion on a new connection (a new
//	                         handshake), with the token as Portcullis-User-Token
//	jwt AUDIENCE             fetch a JWT-SVID for AUDIENCE
//	id                       report its current SVID
//	quit                     exit
//
// and answers each with one JSON reply line on stdout.
func runDriver() int {
	gw, err := spiffeid.FromString(os.Getenv(driverGatewayID))
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	src, err := workloadapi.NewX509Source(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver: no SVID from the Workload API:", err)
		return 2
	}
	defer src.Close()
	tr := &http.Transport{
		TLSClientConfig:   tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(gw)),
		DisableKeepAlives: true, // every call handshakes: rotation shows at once
		ForceAttemptHTTP2: true,
	}
	client := openai.NewClient(
		option.WithBaseURL(os.Getenv(driverBaseURL)),
		option.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
	out := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		var r reply
		if svid, err := src.GetX509SVID(); err == nil {
			r.OwnID, r.OwnSerial = svid.ID.String(), svid.Certificates[0].SerialNumber.String()
		}
		switch {
		case len(fields) == 1 && fields[0] == "quit":
			return 0
		case len(fields) == 1 && fields[0] == "id":
			r.OK = r.OwnID != ""
		case len(fields) >= 2 && len(fields) <= 3 && fields[0] == "call":
			var opts []option.RequestOption
			if len(fields) == 3 {
				opts = append(opts, option.WithHeader("Portcullis-User-Token", fields[2]))
			}
			call(&client, fields[1], &r, opts...)
		case len(fields) == 2 && fields[0] == "jwt":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: fields[1]})
			cancel()
			if err != nil {
				r.Error = err.Error()
			} else {
				r.OK, r.Token = true, svid.Marshal()
			}
		default:
			r.Error = fmt.Sprintf("unknown command %q", in.Text())
		}
		if err := out.Encode(r); err != nil {
			return 2
		}
	}
	return 0
}

func call(client *openai.Client, model string, r *reply, opts ...option.RequestOption) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp *http.Response
	got, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello from a SPIRE workload")},
	}, append(opts, option.WithResponseInto(&resp))...)
	if resp != nil {
		r.Status = resp.StatusCode
		if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			leaf := resp.TLS.PeerCertificates[0]
			r.GwSerial = leaf.SerialNumber.String()
			if len(leaf.URIs) == 1 {
				r.GatewayID = leaf.URIs[0].String()
			}
		}
	}
	if err != nil {
		var apiErr *openai.Error
		r.Error = err.Error()
		if errors.As(err, &apiErr) {
			r.Status = apiErr.StatusCode
			r.Error += " " + apiErr.RawJSON()
		}
		return
	}
	r.OK = true
	if len(got.Choices) > 0 {
		r.Content = got.Choices[0].Message.Content
	}
}
