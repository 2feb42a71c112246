package proxy

import (
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// The fast paths are cross-checked against encoding/json, the independent
// implementation they stand in for: whenever a fast path accepts a body, it
// must have read exactly what encoding/json reads.

var scanChatSeeds = []string{
	string(benchChatBody),
	string(benchToolBody),
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","stream":true,"tools":[{"function":{"name":"t"}}],"messages":[{"role":"tool","tool_call_id":"1","content":"x"}]}`,
	`{"model":"m","max_tokens":-3,"messages":[{}]}`,
	`{"model":"m","max_tokens":null,"max_completion_tokens":7,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":null}]}`,
	` {"model" : "m\u00e9" , "messages" : [ {"role":"us\"er","content":[{"type":"text","text":"a"}]} ] , "x":{"ÿ\u0041":[1,-2.5e+3,true,false,null]}} `,
	`{"Model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","model":"n","messages":[]}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}x`,
	`{"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","max_tokens":01,"messages":[]}`,
	`{"model":"m\xff","messages":[{"role":"user","content":"\xff"}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}]}`,
}

func TestScanChatBodyMatchesEncodingJSON(t *testing.T) {
	fast := 0
	for _, body := range scanChatSeeds {
		if checkScanChatBody(t, []byte(body)) {
			fast++
		}
	}
	// The common shapes must take the fast path, or it saves nothing.
	for _, body := range [][]byte{benchChatBody, benchToolBody} {
		var b chatBody
		if !scanChatBody(body, &b) {
			t.Errorf("fast path refused %.60s…", body)
		}
	}
	if fast < 5 {
		t.Errorf("fast path took %d of %d seeds, want at least 5", fast, len(scanChatSeeds))
	}
}

func checkScanChatBody(t *testing.T, body []byte) bool {
	t.Helper()
	var got chatBody
	if !scanChatBody(body, &got) {
		return false
	}
	var want chatBody
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", body, err)
	}
	for i := range want.Messages { // RawMessage copies; compare bytes
		if string(got.Messages[i].Content) != string(want.Messages[i].Content) {
			t.Fatalf("%q: message %d content got %q, want %q", body, i, got.Messages[i].Content, want.Messages[i].Content)
		}
		got.Messages[i].Content, want.Messages[i].Content = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\ngot  %+v\nwant %+v", body, got, want)
	}
	return true
}

func FuzzScanChatBody(f *testing.F) {
	for _, s := range scanChatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkScanChatBody(t, body) })
}

var scanCompletionSeeds = []string{
	`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`,
	`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","function":{"name":"search","arguments":"{}"}}]}}],"usage":null}`,
	`{"choices":[null,{"message":null},{"message":{"tool_calls":[null]}}]}`,
	`{"data":[{"embedding":[0.1,-2e-3]}],"usage":{"prompt_tokens":3,"total_tokens":3}}`,
	`{"choices":[],"usage":{"total_tokens":1.0}}`,
	`{"Usage":{"total_tokens":1}}`,
	`{"usage":{"total_tokens":1},"usage":{"prompt_tokens":2}}`,
	`{"choices":[{"message":{"tool_calls":[{"function":{"name":"f\u00e9","arguments":"\xff"}}]}}]}`,
	`[]`,
	`{"usage":{"total_tokens":99999999999999999999}}`,
}

func TestScanChatCompletionMatchesEncodingJSON(t *testing.T) {
	for _, body := range scanCompletionSeeds {
		checkScanCompletion(t, []byte(body))
	}
	if _, _, ok := scanChatCompletion([]byte(scanCompletionSeeds[1])); !ok {
		t.Errorf("fast path refused a completion with tool calls")
	}
}

func checkScanCompletion(t *testing.T, body []byte) {
	t.Helper()
	gu, gc, ok := scanChatCompletion(body)
	if !ok {
		return
	}
	wu, wc := decodeChatCompletion(body)
	if wu == nil && wc == nil && json.Unmarshal(body, new(any)) != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it", body)
	}
	if !reflect.DeepEqual(gu, wu) {
		t.Fatalf("%q: usage got %+v, want %+v", body, gu, wu)
	}
	if g, w := toolCalls(gc, tapKey), toolCalls(wc, tapKey); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q: tool calls got %+v, want %+v", body, g, w)
	}
}

func FuzzScanChatCompletion(f *testing.F) {
	for _, s := range scanCompletionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScanCompletion(t, body)
		checkCheckedCompletion(t, body) // the one-pass reader, against uniqueKeys and this one
	})
}

func BenchmarkParseChatCompletion(b *testing.B) {
	body := []byte(scanCompletionSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if u, _ := parseChatCompletion(body); u == nil {
			b.Fatal("no usage")
		}
	}
}

// A provider must not slip a tool call past re-authorization by spelling its
// key as encoding/json still reads it.
func TestStreamToolCallKeySpellings(t *testing.T) {
	for _, key := range []string{`tool_calls`, `tool\u005fcalls`, `TOOL_CALLS`, `Tool_Calls`, "tool_callſ"} {
		t.Run(key, func(t *testing.T) {
			stream := `data: {"choices":[{"index":0,"delta":{"` + key + `":[{"index":0,"id":"c","function":{"name":"wire_money","arguments":"{}"}}]}}]}` +
				"\n\ndata: [DONE]\n\n"
			var checked []string
			tp := newTap(io.NopCloser(strings.NewReader(stream)), true, nil)
			tp.authorize = func(name string) error {
				checked = append(checked, name)
				return &toolDeniedError{Name: name, Reasons: []string{"not allowed"}}
			}
			out, _ := io.ReadAll(tp)
			if got, want := strings.Join(checked, ","), "wire_money"; got != want {
				t.Errorf("re-authorized %q, want %q", got, want)
			}
			if strings.Contains(string(out), `"arguments"`) {
				t.Errorf("the denied call reached the client: %s", out)
			}
		})
	}
	for _, plain := range []string{`{"choices":[{"delta":{"content":"snake_case and tool calls"}}]}`, `{"choices":[{"delta":{"content":"a_b"}}]}`} {
		if mayHoldToolCalls([]byte(plain)) {
			t.Errorf("mayHoldToolCalls(%s) = true, want false: plain content needs no decode", plain)
		}
	}
}

func TestEscapedEventTypesAreDecoded(t *testing.T) {
	for _, tc := range []struct {
		data string
		keys [][]byte
	}{
		{`{"type":"content_block_start","index":1,"content_block":{"type":"tool\u005fuse","id":"t","name":"wire_money","input":{}}}`, messagesKeys},
		{`{"type":"response.output_item.added","item":{"type":"function\u005fcall","id":"i","call_id":"c","name":"wire_money"}}`, responsesKeys},
	} {
		if !containsAny([]byte(tc.data), tc.keys) {
			t.Errorf("containsAny(%s) = false, want true: the event must be decoded", tc.data)
		}
	}
}

// TestJscanPlainRunStopsAtFirstSpecialByte: plainRun skips whole blocks
// and then stops exactly at the first byte a string needs to look at,
// whatever follows it in the block.
func TestJscanPlainRunStopsAtFirstSpecialByte(t *testing.T) {
	for _, special := range []byte{'"', '\\', 0x00, 0x1f, 0x80, 0xff} {
		for pos := range 20 {
			b := []byte(strings.Repeat("a", 24))
			b[pos] = special
			if pos+1 < len(b) {
				b[pos+1] = '"' // a second special byte right after must not matter
			}
			s := jscan{b: b}
			s.plainRun()
			if s.i != pos {
				t.Errorf("special %#x at %d: plainRun stopped at %d", special, pos, s.i)
			}
		}
	}
}
