package fakeprovider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

func TestResponses(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	params := responses.ResponseNewParams{
		Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("good morning")},
	}
	const want = "Hello from fake gpt-4o-mini: you said good morning"

	got, err := c.Responses.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if got.OutputText() != want || got.Status != "completed" || got.Usage.OutputTokens != 8 || got.Usage.InputTokens != 3 {
		t.Errorf("got %q %q usage %d/%d, want %q completed 3/8", got.OutputText(), got.Status, got.Usage.InputTokens, got.Usage.OutputTokens, want)
	}

	stream := c.Responses.NewStreaming(ctx(t), params)
	var text strings.Builder
	var types []string
	var final responses.Response
	for stream.Next() {
		ev := stream.Current()
		if int(ev.SequenceNumber) != len(types) {
			t.Errorf("sequence_number = %d, want %d", ev.SequenceNumber, len(types))
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			final = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != want || final.OutputText() != want || final.Usage.TotalTokens != 11 {
		t.Errorf("streamed %q, final %q (usage %d)", text.String(), final.OutputText(), final.Usage.TotalTokens)
	}
	if types[0] != "response.created" || types[len(types)-1] != "response.completed" {
		t.Errorf("events = %v", types)
	}
}

func TestResponsesToolCall(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	got, err := c.Responses.New(ctx(t), responses.ResponseNewParams{
		Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("[fake:tool]")},
		Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("lookup", map[string]any{
			"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}},
		}, false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Output) != 1 {
		t.Fatalf("%d output items", len(got.Output))
	}
	item := got.Output[0]
	if item.Type != "function_call" || item.Name != "lookup" || item.Arguments.OfString != `{"q":"fake"}` || item.CallID == "" {
		t.Errorf("item = %s %s %s %s", item.Type, item.Name, item.Arguments.OfString, item.CallID)
	}
}

func TestResponsesErrorAndIncomplete(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	_, err := c.Responses.New(ctx(t), responses.ResponseNewParams{
		Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("[fake:error=429]")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("err = %v, want 429", err)
	}
	got, err := c.Responses.New(ctx(t), responses.ResponseNewParams{
		Model:           "gpt-4o",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("[fake:chunks=40]")},
		MaxOutputTokens: openai.Int(16),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "incomplete" || got.IncompleteDetails.Reason != "max_output_tokens" || len(strings.Fields(got.OutputText())) != 16 {
		t.Errorf("got %q %q %d words", got.Status, got.IncompleteDetails.Reason, len(strings.Fields(got.OutputText())))
	}
}
