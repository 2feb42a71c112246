package proxy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The one-pass reader of a chat answer stands in for two checks run one
// after the other: uniqueKeys, then readChatCompletion. It must return what
// they return, errors included, on every input.

// benchAnswer is the fake provider's non-streamed chat answer, as the
// gateway's benchmark sees it.
const benchAnswer = `{"id":"chatcmpl-fake000000000042","object":"chat.completion","created":1764000000,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from fake gpt-4o-mini: you said Hello. Summarise the customer","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":256,"completion_tokens":11,"total_tokens":267},"system_fingerprint":"fp_fake"}`

var checkedCompletionSeeds = []string{
	benchAnswer,
	`{"choices":[],"choices":[]}`,
	`{"choices":[],"Choices":[]}`,
	`{"choices":[],"chOIces":null}`,
	`{"usage":{"total_tokens":1,"Total_Tokens":2}}`,
	`{"usage":{"total_tokens":1,"x":2,"X":3}}`,
	`{"id":"x","meta":{"a":1,"A":2}}`,
	`{"id":"x","meta":{"a":1,"b":[{"k":1,"\u212a":2}]}}`,
	`{"id":"x","ID":"y"}`,
	`{"id":"x","i\u0064":"y"}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}","name":"g"}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"a\":1,\"a\":2}"}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"id":"a","id":"b"}]}}]}`,
	`{"choices":[{"message":{"content":"x","Content":"y"}}]}`,
	`{"choices":[{"index":0,"index":1}]}`,
	`{"choices":[{"message":{"tool_calls":[{"function":{"name":"f","x":{"y":1,"Y":2}}}]}}]}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"A":18}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17}`,
	`{"x":` + strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth) + `}`,
	`{"x":` + strings.Repeat("[", maxScanDepth-1) + strings.Repeat("]", maxScanDepth-1) + `}`,
	`{"usage":{"a":1,"a":2},"choices":[`,
	`{"choices":[],"usage":{"total_tokens":1}} x`,
	`{"usage":{"total_tokens":"1"},"x":1,"x":2}`,
	`{"Usage":{"total_tokens":1},"x":1,"x":2}`,
}

// checkCheckedCompletion holds readCheckedChatCompletion to uniqueKeys
// followed by readChatCompletion, and the one-pass verdict on the keys to
// uniqueKeys's. It reports whether the one pass was sure of its verdict.
func checkCheckedCompletion(t *testing.T, body []byte) (sure bool) {
	t.Helper()
	keysErr := uniqueKeys(body)
	u, calls, dup, ok := scanCheckedChatCompletion(body)
	switch {
	case ok && dup != nil:
		if keysErr == nil || keysErr.Error() != ambiguousKeysError(dup).Error() {
			t.Fatalf("%q: one pass found key %q ambiguous, uniqueKeys = %v", body, dup, keysErr)
		}
	case ok:
		if keysErr != nil {
			t.Fatalf("%q: one pass found the keys unique, uniqueKeys = %v", body, keysErr)
		}
		wu, wcalls, err := readChatCompletion(body)
		if err != nil {
			t.Fatalf("%q: one pass read it, readChatCompletion = %v", body, err)
		}
		if !reflect.DeepEqual(u, wu) {
			t.Fatalf("%q: usage got %+v, want %+v", body, u, wu)
		}
		if g, w := toolCalls(calls, tapKey), toolCalls(wcalls, tapKey); !reflect.DeepEqual(g, w) {
			t.Fatalf("%q: tool calls got %+v, want %+v", body, g, w)
		}
	}

	// The whole reader, against the two checks in turn.
	gu, gcalls, gerr := readCheckedChatCompletion(body)
	wu, wcalls, werr := readChatCompletion(body)
	if keysErr != nil {
		wu, wcalls, werr = nil, nil, keysErr
	}
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("%q: error got %v, want %v", body, gerr, werr)
	}
	if errors.Is(gerr, errAmbiguousKeys) != errors.Is(werr, errAmbiguousKeys) {
		t.Fatalf("%q: error got %v, want %v (ambiguous keys)", body, gerr, werr)
	}
	if !reflect.DeepEqual(gu, wu) {
		t.Fatalf("%q: usage got %+v, want %+v", body, gu, wu)
	}
	if g, w := toolCalls(gcalls, tapKey), toolCalls(wcalls, tapKey); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q: tool calls got %+v, want %+v", body, g, w)
	}
	return ok
}

func TestCheckedChatCompletionMatchesTwoPasses(t *testing.T) {
	for _, seeds := range [][]string{checkedCompletionSeeds, scanCompletionSeeds} {
		for _, body := range seeds {
			checkCheckedCompletion(t, []byte(body))
		}
	}
	for _, tt := range []struct {
		name, doc string
	}{
		{"plain", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}`},
		{"keys inside strings", `{"a":"{\"a\":1,\"a\":2}"}`},
		{"long s", "{\"tool_calls\":[],\"tool_call\u017f\":[]}"},
		{"kelvin", "{\"k\":1,\"\u212a\":2}"},
		{"trailing", `{"a":1} x`},
	} {
		t.Run(tt.name, func(t *testing.T) { checkCheckedCompletion(t, []byte(tt.doc)) })
	}
}

// The common answers, and duplicates the one pass can see, must not be left
// to the two slower passes, or the one pass saves nothing.
func TestCheckedChatCompletionOnePass(t *testing.T) {
	for _, tt := range []struct {
		doc     string
		wantDup string // "" for unique keys
	}{
		{benchAnswer, ""},
		{scanCompletionSeeds[0], ""},
		{scanCompletionSeeds[1], ""},
		{scanCompletionSeeds[2], ""},
		{scanCompletionSeeds[3], ""},
		{`{"choices":[],"choices":[]}`, "choices"},
		{`{"choices":[],"chOIces":null}`, "chOIces"},
		{`{"usage":{"total_tokens":1,"Total_Tokens":2}}`, "Total_Tokens"},
		{`{"id":"x","meta":{"a":1,"A":2}}`, "A"},
		{`{"id":"x","meta":{"b":[{"k":1,"\u212a":2}]}}`, "\u212a"},
		{`{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}","name":"g"}}]}}]}`, "name"},
		{`{"choices":[{"message":{"tool_calls":[{"id":"a","id":"b"}]}}]}`, "id"},
		{`{"choices":[{"message":{"content":"x","Content":"y"}}]}`, "Content"},
		{`{"usage":{"a":1,"a":2},"choices":[`, "a"},
	} {
		u, _, dup, ok := scanCheckedChatCompletion([]byte(tt.doc))
		if !ok {
			t.Errorf("%.60s: left to two passes", tt.doc)
			continue
		}
		if string(dup) != tt.wantDup {
			t.Errorf("%.60s: duplicate key got %q, want %q", tt.doc, dup, tt.wantDup)
		}
		if tt.doc == benchAnswer && (u == nil || u.TotalTokens != 267) {
			t.Errorf("bench answer: usage got %+v, want 267 tokens in all", u)
		}
	}
}

func FuzzScanCheckedChatCompletion(f *testing.F) {
	for _, seeds := range [][]string{checkedCompletionSeeds, scanCompletionSeeds} {
		for _, s := range seeds {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkCheckedCompletion(t, body) })
}

func BenchmarkReadChatAnswer(b *testing.B) {
	body := []byte(benchAnswer)
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := readCheckedChatCompletion(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("two-passes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := uniqueKeys(body); err != nil {
				b.Fatal(err)
			}
			if _, _, err := readChatCompletion(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
