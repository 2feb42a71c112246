package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// A provider that answers a streamed request with a 2xx stream labelled
// in another case, as another type or not at all still has every tool call
// the model emits re-authorized before the client sees it: the request
// asked for a stream, so the answer is read as one.
func TestStreamedAnswerWithOddContentTypeIsInspected(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	oc := env.openai(identity.DevAppID)
	for _, ct := range []string{"Text/Event-Stream; charset=utf-8", "application/octet-stream", "none", "application/json"} {
		directive := " [fake:tool][fake:content_type=" + ct + "]"
		t.Run("chat "+ct, func(t *testing.T) {
			for _, model := range []string{"gpt-4o-mini", "claude-sonnet-4-5"} {
				p := chatParams(model, "mail bob"+directive)
				p.Tools = emailTool()
				var resp *http.Response
				s := oc.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
				var acc openai.ChatCompletionAccumulator
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if len(acc.Choices) > 0 && len(acc.Choices[0].Message.ToolCalls) > 0 {
					t.Errorf("%s: the denied call reached the client: %+v", model, acc.Choices[0].Message.ToolCalls)
				}
				if s.Err() == nil || !strings.Contains(s.Err().Error(), "send_email") {
					t.Fatalf("%s: err = %v, want the denial", model, s.Err())
				}
				if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
					t.Errorf("%s: Content-Type to the client = %q, want text/event-stream", model, got)
				}
				checkDenied(t, env, requestID(t, resp))
			}
		})
		t.Run("responses "+ct, func(t *testing.T) {
			p := responsesParams("gpt-4o-mini", "mail bob"+directive)
			p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("send_email", map[string]any{"type": "object", "properties": map[string]any{}}, false)}
			var resp *http.Response
			rs := oc.Responses.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
			for rs.Next() {
				if ev := rs.Current(); ev.Type == "response.output_item.added" && ev.Item.Name == "send_email" {
					t.Error("the denied call reached the client")
				}
			}
			if rs.Err() == nil {
				t.Fatal("stream ended cleanly after a denied call")
			}
			checkDenied(t, env, requestID(t, resp))
		})
		t.Run("messages "+ct, func(t *testing.T) {
			checkDenied(t, env, streamDeniedSendEmail(t, env, "mail bob"+directive))
		})
	}
}

// An allowed streamed answer with an odd Content-Type still reaches the
// client whole, as a text/event-stream.
func TestStreamedAnswerWithOddContentTypeIsRelayed(t *testing.T) {
	env := startGateway(t, envOptions{})
	var resp *http.Response
	s := env.chat(identity.DevAppID).NewStreaming(context.Background(),
		chatParams("gpt-4o-mini", "hello there [fake:content_type=none]"), option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) == 0 || !strings.Contains(acc.Choices[0].Message.Content, "hello there") {
		t.Fatalf("answer = %+v", acc.Choices)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
		t.Errorf("Content-Type to the client = %q, want text/event-stream", got)
	}
}

// sseToolCall is a chat completion stream whose one tool call is send_email.
const sseToolCall = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"send_email","arguments":"{}"}}]},"finish_reason":null}]}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

`

// rawUpstream is an OpenAI-format provider that answers every request
// with status, contentType (none when empty) and body.
func rawUpstream(t *testing.T, status int, contentType, body string) func(*url.URL) []proxy.Route {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentType == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL + "/v1")
	return func(*url.URL) []proxy.Route {
		return []proxy.Route{{Model: "gpt-4o-mini", Provider: &proxy.Provider{Name: "raw", Format: proxy.FormatOpenAI, BaseURL: u}}}
	}
}

// A stream sent to a request that did not ask for one is refused whole
// (502), never relayed as a stream the gateway did not read as one.
func TestUnrequestedStreamRefused(t *testing.T) {
	for _, ct := range []string{"text/event-stream", "TEXT/EVENT-STREAM; charset=utf-8"} {
		env := startGateway(t, envOptions{routes: rawUpstream(t, http.StatusOK, ct, sseToolCall)})
		p := chatParams("gpt-4o-mini", "mail bob")
		p.Tools = emailTool()
		got, err := env.chat(identity.DevAppID).New(context.Background(), p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "upstream_error" || !strings.Contains(apiErr.Message, "stream") {
			t.Fatalf("%s: got %+v, err = %v; want 502 upstream_error about the stream", ct, got, err)
		}
		recs := env.settled(apiErr.Response.Header.Get("X-Request-Id"))
		if n := len(recs); n != 2 || recs[1]["type"] != "completion" || recs[1]["status"] != float64(http.StatusBadGateway) || !strings.Contains(recs[1]["error"].(string), "stream") {
			t.Errorf("%s: records = %v, want the decision and a 502 completion naming the stream", ct, recs)
		}
	}
}
