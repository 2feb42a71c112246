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
	"os"
	"path/filepath"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/examples/internal/workload"
)

const agentID = "spiffe://dev.portcullis.local/tenant/acme/agent/demo-agent"

func main() {
	addr := flag.String("addr", "localhost:8443", "gateway address")
	devDir := flag.String("dev-dir", ".portcullis/dev", "the dev gateway's SVID directory")
	task := flag.String("task", "ticket-4711", "task id")
	flag.Parse()
	if err := run(*addr, *devDir, *task); err != nil {
		log.Fatal(err)
	}
}

func run(addr, devDir, task string) error {
	base := "https://" + addr
	app, err := workload.DevHTTPClient(devDir, "app")
	if err != nil {
		return err
	}
	agent, err := workload.DevHTTPClient(devDir, "agent")
	if err != nil {
		return err
	}
	userToken, err := os.ReadFile(filepath.Join(devDir, "human.jwt"))
	if err != nil {
		return err
	}

	fmt.Println("1. app, acting for alice, mints a grant for task", task)
	var g1 grant
	if err := post(app, base+"/v1/grants", "", strings.TrimSpace(string(userToken)), map[string]any{
		"task": task, "purpose": "support", "ttl_seconds": 600,
		"scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"search"}, "max_tokens": 2000},
	}, &g1); err != nil {
		return err
	}
	fmt.Printf("   grant %s, chain %v, expires %s\n", g1.ID, g1.Chain, g1.ExpiresAt)

	fmt.Println("2. app delegates a narrower grant to the agent")
	var g2 grant
	if err := post(app, base+"/v1/grants/"+g1.ID+"/delegate", g1.Grant, "", map[string]any{
		"to": agentID, "ttl_seconds": 300,
		"scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "max_tokens": 500},
	}, &g2); err != nil {
		return err
	}
	fmt.Printf("   grant %s, chain %v, budget %d tokens\n", g2.ID, g2.Chain, g2.Scopes.MaxTokens)

	fmt.Println("3. agent calls gpt-4o-mini with the OpenAI SDK, its grant as API key")
	sdk := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithHTTPClient(agent),
		option.WithAPIKey(g2.Grant), option.WithMaxRetries(0))
	ctx := context.Background()
	res, err := sdk.Chat.Completions.New(ctx, chat("gpt-4o-mini", "Summarize ticket 4711"))
	if err != nil {
		return err
	}
	fmt.Printf("   %q (%d tokens)\n", res.Choices[0].Message.Content, res.Usage.TotalTokens)

	fmt.Println("4. what the grant does not allow is refused")
	_, err = sdk.Chat.Completions.New(ctx, chat("gpt-4o", "switch models"))
	fmt.Println("   another model:        ", apiError(err))
	stolen := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithHTTPClient(agent),
		option.WithAPIKey(g1.Grant), option.WithMaxRetries(0))
	_, err = stolen.Chat.Completions.New(ctx, chat("gpt-4o-mini", "use the app's grant"))
	fmt.Println("   the app's grant, from the agent's SVID:", apiError(err))

	fmt.Println("5. app completes the task: every grant of it is revoked")
	if err := post(app, base+"/v1/tasks/"+task+"/complete", g1.Grant, "", nil, nil); err != nil {
		return err
	}
	_, err = sdk.Chat.Completions.New(ctx, chat("gpt-4o-mini", "one more"))
	fmt.Println("   agent after completion:", apiError(err))
	fmt.Println("\nEvery step is in the audit log, with the chain and the user.")
	return nil
}

type grant struct {
	Grant  string   `json:"grant"`
	ID     string   `json:"id"`
	Chain  []string `json:"chain"`
	Scopes struct {
		MaxTokens int `json:"max_tokens"`
	} `json:"scopes"`
	ExpiresAt string `json:"expires_at"`
}

func chat(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
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

// post sends a JSON request and decodes a JSON answer; a non-2xx answer is
// an error carrying the gateway's message.
func post(c *http.Client, url, bearer, userToken string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if userToken != "" {
		req.Header.Set("Portcullis-User-Token", userToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
