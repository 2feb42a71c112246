package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/portcullis-dev/portcullis/examples/internal/workload"
)

const agentID = "spiffe://dev.portcullis.local/tenant/acme/agent/demo-agent"

func main() {
	addr := flag.String("addr", "localhost:8443", "gateway address")
	devDir := flag.String("dev-dir", ".portcullis/dev", "the dev gateway's SVID directory")
	task := flag.String("task", fmt.Sprintf("refund-%d", time.Now().Unix()%100000), "task id")
	wait := flag.Duration("wait", 5*time.Minute, "how long the agent waits for a human")
	flag.Parse()
	if err := run(*addr, *devDir, *task, *wait); err != nil {
		log.Fatal(err)
	}
}

func run(addr, devDir, task string, wait time.Duration) error {
	base := "https://" + addr
	app, err := workload.DevHTTPClient(devDir, "app")
	if err != nil {
		return err
	}
	agent, err := workload.DevHTTPClient(devDir, "agent")
	if err != nil {
		return err
	}

	fmt.Println("1. app mints a grant for task", task, "and delegates it to the agent")
	var g1, g2 grant
	if err := call(app, http.MethodPost, base+"/v1/grants", "", map[string]any{
		"task": task, "purpose": "support", "ttl_seconds": 900,
		"scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"issue_refund"}, "max_tokens": 4000},
	}, &g1); err != nil {
		return err
	}
	if err := call(app, http.MethodPost, base+"/v1/grants/"+g1.ID+"/delegate", g1.Grant, map[string]any{
		"to": agentID, "ttl_seconds": 900,
		"scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"issue_refund"}, "max_tokens": 2000},
	}, &g2); err != nil {
		return err
	}
	fmt.Printf("   agent grant %s, chain %v\n", g2.ID, g2.Chain)

	fmt.Println("2. agent asks the model to refund order 42, offering the issue_refund tool")
	sdk := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithHTTPClient(agent),
		option.WithAPIKey(g2.Grant), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Refund order 42 in full.")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "issue_refund",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"order": map[string]any{"type": "string"}}},
		})},
	}
	ctx := context.Background()
	_, err = sdk.Chat.Completions.New(ctx, params)
	var parked *openai.Error
	if !errors.As(err, &parked) || parked.Code != "approval_required" {
		return fmt.Errorf("expected the call to be parked, got: %v", err)
	}
	id := parked.Response.Header.Get("Portcullis-Approval-Id")
	fmt.Printf("   %d %s: parked as %s\n", parked.StatusCode, parked.Code, id)

	fmt.Println("3. waiting for a human; in another terminal run:")
	fmt.Printf("\n   go run ./cmd/portcullis approvals list\n")
	fmt.Printf("   go run ./cmd/portcullis approvals approve %s --reason \"order 42 checked\"\n\n", id)
	state, by, err := awaitDecision(agent, base+"/v1/approvals/"+id, wait)
	if err != nil {
		return err
	}
	fmt.Printf("   %s by %s\n", state, by)
	if state != "approved" {
		return fmt.Errorf("approval %s is %s: the agent stops here", id, state)
	}

	fmt.Println("4. agent retries the identical call with Portcullis-Approval:", id)
	res, err := sdk.Chat.Completions.New(ctx, params, option.WithHeader("Portcullis-Approval", id))
	if err != nil {
		return err
	}
	for _, tc := range res.Choices[0].Message.ToolCalls {
		fmt.Printf("   the model calls %s(%s)\n", tc.Function.Name, tc.Function.Arguments)
	}
	if res.Choices[0].Message.Content != "" {
		fmt.Printf("   %q\n", res.Choices[0].Message.Content)
	}
	_, err = sdk.Chat.Completions.New(ctx, params, option.WithHeader("Portcullis-Approval", id))
	fmt.Println("   the same retry again:", apiError(err))
	fmt.Printf("\nThe audit log links every step: grep -ah %s .portcullis/audit/segments/*.log\n", id)
	return nil
}

// awaitDecision polls the approval as its requester until it is decided.
func awaitDecision(c *http.Client, url string, wait time.Duration) (state, by string, err error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var a struct {
			State     string `json:"state"`
			DecidedBy string `json:"decided_by"`
		}
		if err := call(c, http.MethodGet, url, "", nil, &a); err != nil {
			return "", "", err
		}
		if a.State != "pending" {
			return a.State, a.DecidedBy, nil
		}
		time.Sleep(time.Second)
	}
	return "", "", fmt.Errorf("no decision within %v", wait)
}

type grant struct {
	Grant string   `json:"grant"`
	ID    string   `json:"id"`
	Chain []string `json:"chain"`
}

func apiError(err error) string {
	var e *openai.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %s: %s", e.StatusCode, e.Code, e.Message)
	}
	if err == nil {
		return "allowed (unexpected)"
	}
	return err.Error()
}

// call sends a JSON request and decodes a JSON answer; a non-2xx answer is
// an error carrying the gateway's message.
func call(c *http.Client, method, url, bearer string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
