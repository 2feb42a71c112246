package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/portcullis-dev/portcullis/identity"
)

// send_email is in the default bundle's tools for humans of acme, not for
// applications (policy/bundle/tools/data.json).
func emailTool() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "send_email",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"to": map[string]any{"type": "string"}}},
	})}
}

// checkDenied asserts the audit trail of a denied tool call: the request's
// allow, a tool.call deny naming the tool, a completion with the failure.
func checkDenied(t *testing.T, env *gatewayEnv, reqID string) {
	t.Helper()
	recs := env.settled(reqID)
	if len(recs) != 3 {
		t.Fatalf("want 3 records, got %v", recs)
	}
	tc := recs[1]
	if tc["action"] != "tool.call" || get(tc, "decision", "allow") != false || get(tc, "detail", "tool", "name") != "send_email" || tc["status"] != float64(403) {
		t.Errorf("tool.call record = %v", tc)
	}
	if reasons, _ := get(tc, "decision", "reasons").([]any); len(reasons) == 0 || !strings.Contains(reasons[len(reasons)-1].(string), "send_email is not allowed for applications") {
		t.Errorf("tool.call reasons = %v", get(tc, "decision", "reasons"))
	}
	if recs[2]["type"] != "completion" || !strings.Contains(recs[2]["error"].(string), "send_email") {
		t.Errorf("completion record = %v", recs[2])
	}
}

func TestDeniedToolCallChat(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.chat(identity.DevAppID)
	for _, model := range []string{"gpt-4o-mini", "claude-sonnet-4-5"} {
		p := chatParams(model, "mail bob [fake:tool]")
		p.Tools = emailTool()
		_, err := c.New(context.Background(), p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "tool_call_denied" || !strings.Contains(apiErr.Message, "send_email") {
			t.Fatalf("%s: err = %v, want 403 tool_call_denied naming the tool", model, err)
		}
		checkDenied(t, env, apiErr.Response.Header.Get("X-Request-Id"))

		var resp *http.Response
		s := c.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if s.Err() == nil || !strings.Contains(s.Err().Error(), "send_email") {
			t.Fatalf("%s stream: err = %v, want the denial", model, s.Err())
		}
		if len(acc.Choices) > 0 && len(acc.Choices[0].Message.ToolCalls) > 0 {
			t.Errorf("%s stream: the denied call reached the client: %+v", model, acc.Choices[0].Message.ToolCalls)
		}
		checkDenied(t, env, requestID(t, resp))
	}
}

func TestDeniedToolCallResponsesAndMessages(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	oc := env.openai(identity.DevAppID)
	p := responsesParams("gpt-4o-mini", "[fake:tool]")
	p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("send_email", map[string]any{"type": "object", "properties": map[string]any{}}, false)}
	_, err := oc.Responses.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "tool_call_denied" {
		t.Fatalf("responses: err = %v", err)
	}
	checkDenied(t, env, apiErr.Response.Header.Get("X-Request-Id"))
	var resp *http.Response
	rs := oc.Responses.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	for rs.Next() {
		if ev := rs.Current(); ev.Type == "response.output_item.added" && ev.Item.Name == "send_email" {
			t.Error("responses stream: the denied call reached the client")
		}
	}
	if rs.Err() == nil {
		t.Fatal("responses stream ended cleanly after a denied call")
	}
	checkDenied(t, env, requestID(t, resp))

	checkDenied(t, env, streamDeniedSendEmail(t, env, "[fake:tool]"))
}

// streamDeniedSendEmail streams a Messages answer offering send_email,
// which policy denies to applications: the call must never reach the
// client and the stream must end with the denial. It returns the request id.
func streamDeniedSendEmail(t *testing.T, env *gatewayEnv, text string) string {
	t.Helper()
	mp := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 100,
		Tools:    []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "send_email", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{}}}}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}}
	var resp *http.Response
	ac := env.anthropic(identity.DevAppID)
	ms := ac.Messages.NewStreaming(context.Background(), mp, aoption.WithResponseInto(&resp))
	for ms.Next() {
		if ev := ms.Current(); ev.Type == "content_block_start" && ev.ContentBlock.Name == "send_email" {
			t.Error("messages stream: the denied call reached the client")
		}
	}
	if ms.Err() == nil || !strings.Contains(ms.Err().Error(), "send_email") {
		t.Fatalf("messages stream: err = %v, want the denial", ms.Err())
	}
	return resp.Header.Get("X-Request-Id")
}

// A request that hands the model the result of a tool the caller may not
// use is refused before anything is forwarded.
func TestToolResultOfDeniedToolRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	p := chatParams("gpt-4o-mini", "mail bob")
	call := openai.ChatCompletionMessageFunctionToolCallParam{ID: "call_1", Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "send_email", Arguments: "{}"}}
	p.Messages = append(p.Messages,
		openai.ChatCompletionMessageParamUnion{OfAssistant: &openai.ChatCompletionAssistantMessageParam{ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{{OfFunction: &call}}}},
		openai.ToolMessage("sent", "call_1"))
	_, err := env.chat(identity.DevAppID).New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "tool_call_denied" || !strings.Contains(apiErr.Message, "result of the tool \"send_email\"") {
		t.Fatalf("err = %v, want 403 naming the tool result", err)
	}
	if n := env.fake.RequestCount(); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 2 || recs[0]["action"] != "tool.call" || get(recs[0], "detail", "source") != "tool_result" || get(recs[1], "decision", "allow") != false {
		t.Fatalf("records = %v", recs)
	}
}
