package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

// approvalOptions turns approvals on over the grants state store: they are
// off when grants are, or when the configuration disables them.
func (g *gateway) approvalOptions(grants *proxy.GrantOptions) *proxy.ApprovalOptions {
	if g.cfg.Approvals.Disable {
		return nil
	}
	st, ok := grantStore(grants)
	if !ok {
		g.log.Warn("approvals are off: they need the grants state store (grants.disable is set); actions that require an approval will be refused")
		return nil
	}
	return &proxy.ApprovalOptions{Store: st, TTL: g.cfg.Approvals.TTL}
}

func grantStore(grants *proxy.GrantOptions) (store.Approvals, bool) {
	if grants == nil {
		return nil, false
	}
	st, ok := grants.Store.(store.Approvals)
	return st, ok
}

// approvalsFlags locate the gateway and the person's own SVID.
type approvalsFlags struct {
	gateway, cert, key, ca string
	timeout                time.Duration
	json                   bool
}

func newApprovalsCmd() *cobra.Command {
	var f approvalsFlags
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny actions parked for a human approval",
		Long: `Approvals talk to a running gateway over mTLS with your own SVID: the
approver is whoever the certificate names, and it must be a human principal
(docs/approvals.md). The defaults are the dev gateway's human SVID files.`,
	}
	dev := filepath.Join(".portcullis", "dev")
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.gateway, "gateway", "https://localhost:8443", "gateway base URL")
	pf.StringVar(&f.cert, "cert", filepath.Join(dev, "human.pem"), "your X.509-SVID (PEM)")
	pf.StringVar(&f.key, "key", filepath.Join(dev, "human-key.pem"), "its private key (PEM)")
	pf.StringVar(&f.ca, "ca", filepath.Join(dev, "bundle.pem"), "trust bundle of the gateway's certificate (PEM)")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
	pf.BoolVar(&f.json, "json", false, "print the gateway's JSON answer")

	var tenant, state string
	list := &cobra.Command{
		Use:   "list [--state pending] [--tenant T]",
		Short: "List your tenant's approvals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if tenant != "" {
				q.Set("tenant", tenant)
			}
			var out struct {
				Data []store.ApprovalRecord `json:"data"`
			}
			raw, err := f.do(cmd.Context(), http.MethodGet, "/v1/approvals?"+q.Encode(), nil, &out)
			if err != nil || f.json {
				return f.print(cmd.OutOrStdout(), raw, err)
			}
			return printApprovals(cmd.OutOrStdout(), out.Data)
		},
	}
	list.Flags().StringVar(&state, "state", "pending", "pending, approved, denied, used, withdrawn, expired, or \"\" for all")
	list.Flags().StringVar(&tenant, "tenant", "", "tenant (default: yours, the only one you may list)")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one approval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.do(cmd.Context(), http.MethodGet, "/v1/approvals/"+url.PathEscape(args[0]), nil, nil)
			return f.print(cmd.OutOrStdout(), raw, err)
		},
	}
	cmd.AddCommand(list, show, decideCmd(&f, "approve"), decideCmd(&f, "deny"))
	return cmd
}

func decideCmd(f *approvalsFlags, verb string) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   verb + " ID --reason TEXT",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a parked action, under your own identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("approvals: --reason is required")
			}
			var rec store.ApprovalRecord
			raw, err := f.do(cmd.Context(), http.MethodPost, "/v1/approvals/"+url.PathEscape(args[0])+"/"+verb, map[string]string{"reason": reason}, &rec)
			if err != nil || f.json {
				return f.print(cmd.OutOrStdout(), raw, err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s: %s requested by %s (reason: %s)\n", rec.ID, rec.State, rec.DecidedBy, rec.Action, rec.Requester, rec.Reason)
			return err
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return c
}

// do sends one request and returns the raw answer; a non-2xx answer is an
// error carrying the gateway's message.
func (f *approvalsFlags) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	client, err := f.client()
	if err != nil {
		return nil, err
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(f.gateway, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return raw, fmt.Errorf("approvals: %s: %s: %s", resp.Status, e.Error.Code, e.Error.Message)
		}
		return raw, fmt.Errorf("approvals: %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("approvals: answer: %w", err)
		}
	}
	return raw, nil
}

func (f *approvalsFlags) print(w io.Writer, raw []byte, err error) error {
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		buf.Reset()
		buf.Write(raw)
	}
	_, werr := fmt.Fprintln(w, strings.TrimSpace(buf.String()))
	return werr
}

// client presents the person's own SVID and trusts the bundle.
func (f *approvalsFlags) client() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("approvals: --cert/--key: %w", err)
	}
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("approvals: --ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("approvals: --ca: %s holds no certificate", f.ca)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13},
		ForceAttemptHTTP2: true,
	}}, nil
}

func printApprovals(w io.Writer, list []store.ApprovalRecord) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no approvals")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tACTION\tWHAT\tREQUESTER\tCHAIN\tEXPIRES")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Action, summarize(a.Summary), a.Requester,
			strings.Join(a.Chain, " > "), a.ExpiresAt.Local().Format(time.TimeOnly))
	}
	return tw.Flush()
}

// summarize is a one-line view of what an approval covers.
func summarize(s map[string]any) string {
	var parts []string
	for _, k := range []string{"model", "tools", "tool", "server", "max_tokens"} {
		if v, ok := s[k]; ok && v != nil && fmt.Sprint(v) != "" && fmt.Sprint(v) != "[]" && fmt.Sprint(v) != "0" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}
