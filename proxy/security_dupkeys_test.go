package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/identity"
)

// toolCall is a chat completion tool call of name.
func toolCall(name string) string {
	return `{"id":"call_1","type":"function","function":{"name":"` + name + `","arguments":"{}"}}`
}

// Answers that spell their tool calls twice — a repeated key, a key in two
// cases — read differently to different clients (the last or the first
// duplicate, exact or case-insensitive matching), so whichever one the
// gateway checks, a client may act on the other. They are withheld, and
// the official Go SDK never sees send_email, which policy denies to
// applications, while get_weather is allowed.
func TestAmbiguousToolCallKeysWithheld(t *testing.T) {
	head := `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,`
	tail := `}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	bodies := map[string]string{
		"tool_calls twice, denied first": head + `"tool_calls":[` + toolCall("send_email") + `],"tool_calls":[` + toolCall("get_weather") + `]` + tail,
		"tool_calls twice, denied last":  head + `"tool_calls":[` + toolCall("get_weather") + `],"tool_calls":[` + toolCall("send_email") + `]` + tail,
		"tool_calls in two cases":        head + `"tool_calls":[` + toolCall("send_email") + `],"Tool_Calls":[` + toolCall("get_weather") + `]` + tail,
		"escaped twin":                   head + `"tool_calls":[` + toolCall("send_email") + `],"tool\u005fcalls":[` + toolCall("get_weather") + `]` + tail,
		"name twice":                     head + `"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}","name":"get_weather"}}]` + tail,
		"name twice, denied last":        head + `"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}","name":"send_email"}}]` + tail,
		"name in two cases":              head + `"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}","Name":"get_weather"}}]` + tail,
		"choices twice": `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[` + toolCall("send_email") + `]}}],` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			env := startGateway(t, envOptions{routes: rawUpstream(t, http.StatusOK, "application/json", body)})
			p := chatParams("gpt-4o-mini", "mail bob")
			p.Tools = emailTool()
			got, err := env.chat(identity.DevAppID).New(context.Background(), p)
			if err == nil {
				for _, ch := range got.Choices {
					for _, tc := range ch.Message.ToolCalls {
						if tc.Function.Name == "send_email" {
							t.Errorf("the SDK read the denied call send_email")
						}
					}
				}
				t.Fatal("the answer was relayed, want it withheld")
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "upstream_error" || !strings.Contains(apiErr.Message, "repeats a key") {
				t.Fatalf("err = %v, want 502 upstream_error about a repeated key", err)
			}
			recs := env.settled(apiErr.Response.Header.Get("X-Request-Id"))
			if n := len(recs); n != 2 || recs[1]["status"] != float64(http.StatusBadGateway) || !strings.Contains(recs[1]["error"].(string), "duplicate keys") {
				t.Errorf("records = %v, want the decision and a 502 completion naming the duplicate keys", recs)
			}
		})
	}
}

// The same in a stream: the chunk with ambiguous keys is not relayed.
func TestAmbiguousToolCallKeysStopStream(t *testing.T) {
	chunk := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant",` +
		`"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}"}}],` +
		`"Tool_Calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":null}]}` +
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
		t.Errorf("a call reached the client: %s", acc.Choices[0].Message.ToolCalls[0].Function.Name)
	}
	if s.Err() == nil || !strings.Contains(s.Err().Error(), "duplicate keys") {
		t.Fatalf("err = %v, want the stream stopped over duplicate keys", s.Err())
	}
	recs := env.settled(requestID(t, resp))
	if n := len(recs); n != 2 || recs[1]["type"] != "completion" || !strings.Contains(recs[1]["error"].(string), "duplicate keys") {
		t.Errorf("records = %v, want the decision and a completion naming the duplicate keys", recs)
	}
}
