package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/portcullis-dev/portcullis/identity"
)

// checkWithheld asserts that an answer was refused as unreadable: 502
// upstream_error saying so, and a completion record with the 502 and why.
func checkWithheld(t *testing.T, env *gatewayEnv, err error) {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "upstream_error" ||
		!strings.Contains(apiErr.Message, "could not inspect") {
		t.Fatalf("err = %v, want 502 upstream_error saying the answer could not be inspected", err)
	}
	checkWithheldRecords(t, env, apiErr.Response.Header.Get("X-Request-Id"))
}

func checkWithheldRecords(t *testing.T, env *gatewayEnv, reqID string) {
	t.Helper()
	recs := env.settled(reqID)
	if n := len(recs); n != 2 || get(recs[0], "decision", "allow") != true || recs[1]["type"] != "completion" ||
		recs[1]["status"] != float64(http.StatusBadGateway) || recs[1]["error"] == nil || recs[1]["tool_calls"] != nil {
		t.Errorf("records = %v, want the decision and a 502 completion with the error", recs)
	}
}

// A non-streamed 2xx answer the gateway cannot parse is withheld (502),
// whatever API it is in: relayed, it could carry a tool call no policy saw.
func TestTruncatedAnswerWithheld(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	oc := env.openai(identity.DevAppID)
	for _, model := range []string{"gpt-4o-mini", "claude-sonnet-4-5"} {
		p := chatParams(model, "mail bob [fake:tool][fake:truncate]")
		p.Tools = emailTool()
		got, err := oc.Chat.Completions.New(context.Background(), p)
		if err == nil {
			t.Fatalf("%s: got an answer with %d choices, want a refusal", model, len(got.Choices))
		}
		checkWithheld(t, env, err)
	}
	rp := responsesParams("gpt-4o-mini", "mail bob [fake:tool][fake:truncate]")
	rp.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("send_email", map[string]any{"type": "object", "properties": map[string]any{}}, false)}
	_, err := oc.Responses.New(context.Background(), rp)
	checkWithheld(t, env, err)

	ac := env.anthropic(identity.DevAppID)
	_, err = ac.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 100,
		Tools:    []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "send_email", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{}}}}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("mail bob [fake:tool][fake:truncate]"))}})
	var aErr *anthropic.Error
	if !errors.As(err, &aErr) || aErr.StatusCode != http.StatusBadGateway || !strings.Contains(aErr.RawJSON(), "could not inspect") {
		t.Fatalf("messages: err = %v, want 502 saying the answer could not be inspected", err)
	}
	checkWithheldRecords(t, env, aErr.Response.Header.Get("X-Request-Id"))
}

// sendEmailCall is a chat completion message calling send_email.
const sendEmailCall = `"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}"}}]}`

// Answers that are not a chat completion the gateway can read — a field of
// an unexpected type (which a lenient SDK skips while still reading the tool
// call), the wrong shape, or no JSON object at all — are withheld.
func TestUnreadableAnswerWithheld(t *testing.T) {
	bodies := map[string]string{
		"usage of another type":     `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"tool_calls",` + sendEmailCall + `}],"usage":"lots"}`,
		"tool call of another type": `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"send_email","arguments":{}}}]}}]}`,
		"choices as an object":      `{"id":"c","object":"chat.completion","choices":{"0":{"index":0,` + sendEmailCall + `}}}`,
		"trailing garbage":          `{"id":"c","object":"chat.completion","choices":[]}]`,
		"null":                      `null`,
		"an array":                  `[]`,
		"empty":                     ``,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			env := startGateway(t, envOptions{routes: rawUpstream(t, http.StatusOK, "application/json", body)})
			p := chatParams("gpt-4o-mini", "mail bob")
			p.Tools = emailTool()
			got, err := env.chat(identity.DevAppID).New(context.Background(), p)
			if err == nil {
				t.Fatalf("got an answer with %d choices, want a refusal", len(got.Choices))
			}
			checkWithheld(t, env, err)
		})
	}
}

// A stream chunk that may hold a tool call but does not decode is not
// relayed: the stream stops there with an error.
func TestUnreadableStreamChunkStops(t *testing.T) {
	chunk := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}"}}]},"finish_reason":null}],"usage":"lots"}` +
		"\n\ndata: [DONE]\n\n"
	env := startGateway(t, envOptions{routes: rawUpstream(t, http.StatusOK, "text/event-stream", chunk)})
	p := chatParams("gpt-4o-mini", "mail bob")
	p.Tools = emailTool()
	var resp *http.Response
	s := env.chat(identity.DevAppID).NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if len(acc.Choices) > 0 && len(acc.Choices[0].Message.ToolCalls) > 0 {
		t.Errorf("an unchecked call reached the client: %+v", acc.Choices[0].Message.ToolCalls)
	}
	if s.Err() == nil || !strings.Contains(s.Err().Error(), "could not read") {
		t.Fatalf("err = %v, want the stream stopped as unreadable", s.Err())
	}
	recs := env.settled(requestID(t, resp))
	if n := len(recs); n != 2 || recs[1]["type"] != "completion" || recs[1]["error"] == nil {
		t.Errorf("records = %v, want the decision and a completion with the error", recs)
	}
}
