package proxy

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/translate/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "translate", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return append(out.Bytes(), '\n')
}

const chatToolChain = `{"model":"claude-sonnet-4-5","max_completion_tokens":300,"temperature":0.2,"stop":["END","STOP"],
 "user":"u-42","parallel_tool_calls":false,"tool_choice":"required","seed":7,"stream":true,"stream_options":{"include_usage":true},
 "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather by city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
 "messages":[
  {"role":"system","content":"be brief"},
  {"role":"developer","content":[{"type":"text","text":"answer in French"}]},
  {"role":"user","content":[{"type":"text","text":"weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":""}}]},
  {"role":"tool","tool_call_id":"call_1","content":"sunny"},
  {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"rainy"}]}
 ]}`

func TestChatToMessagesGolden(t *testing.T) {
	got, err := chatToMessages([]byte(chatToolChain), "claude-sonnet-4-5-20250929", 300)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "chat-tool-chain.messages.json", indent(t, got))
}

func TestChatToMessagesRefusals(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"several choices", `{"n":3,"messages":[{"role":"user","content":"x"}]}`, "n=3"},
		{"json schema", `{"response_format":{"type":"json_schema"},"messages":[{"role":"user","content":"x"}]}`, "json_schema"},
		{"hot temperature", `{"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`, "outside 0..1"},
		{"penalty", `{"presence_penalty":0.5,"messages":[{"role":"user","content":"x"}]}`, "penalties"},
		{"unknown field", `{"prediction":{},"messages":[{"role":"user","content":"x"}]}`, `"prediction"`},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input_audio"},
		{"http image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/a.png"}}]}]}`, "https"},
		{"legacy function role", `{"messages":[{"role":"function","content":"x"}]}`, `"function"`},
		{"bad arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]}`, "not a JSON object"},
		{"only system", `{"messages":[{"role":"system","content":"x"}]}`, "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chatToMessages([]byte(tc.body), "m", 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestMessagesToChatGolden(t *testing.T) {
	in := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[
	 {"type":"thinking","thinking":"hmm"},{"type":"text","text":"Let me check."},
	 {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
	 "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":7}}`
	got, usage, calls, err := messagesToChat([]byte(in), 1764000000)
	if err != nil {
		t.Fatal(err)
	}
	if *usage != (Usage{15, 7, 22}) || len(calls) != 1 || calls[0].name != "get_weather" {
		t.Errorf("usage %+v calls %d", usage, len(calls))
	}
	golden(t, "tool-use.chat.json", indent(t, got))
}

const anthropicStream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}

event: message_stop
data: {"type":"message_stop"}

`

func TestChatFromMessagesStreamGolden(t *testing.T) {
	for _, split := range []int{1, 7, 4096} {
		var fin *tap
		tp := newCodecTap(&chunkedReader{data: []byte(anthropicStream), sizes: repeat(split, len(anthropicStream)), final: io.EOF}, true,
			&chatFromMessages{created: 1764000000, includeUsage: true}, func(x *tap) { fin = x })
		out, err := io.ReadAll(tp)
		if err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		if *fin.usage != (Usage{12, 9, 21}) {
			t.Errorf("usage %+v", fin.usage)
		}
		if c := fin.ToolCalls(tapKey); len(c) != 1 || c[0].Name != "get_weather" || c[0].ArgumentsDigest != argsDigest(tapKey, `{"city":"Paris"}`) {
			t.Errorf("tool calls %+v", c)
		}
		golden(t, "tool-use.chat.sse", out)
	}
}

func TestMessagesCodecPassthrough(t *testing.T) {
	var fin *tap
	tp := newCodecTap(&chunkedReader{data: []byte(anthropicStream), sizes: repeat(5, len(anthropicStream)), final: io.EOF}, true, &messagesCodec{}, func(x *tap) { fin = x })
	out, err := io.ReadAll(tp)
	if err != nil || string(out) != anthropicStream {
		t.Fatalf("relay changed the stream (err %v)", err)
	}
	if *fin.usage != (Usage{12, 9, 21}) || len(fin.calls) != 1 {
		t.Errorf("usage %+v calls %d", fin.usage, len(fin.calls))
	}
	// Cut before message_stop: an Anthropic error event, then the error.
	cut := anthropicStream[:strings.Index(anthropicStream, "event: message_delta")]
	tp = newCodecTap(&chunkedReader{data: []byte(cut), final: io.EOF}, true, &messagesCodec{}, nil)
	out, err = io.ReadAll(tp)
	if err == nil || !strings.HasSuffix(string(out), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream provider failed mid-stream; the response is incomplete\"}}\n\n") {
		t.Fatalf("cut stream: err %v, tail %q", err, out[len(cut):])
	}
}

func TestDeniedToolCallEndsStream(t *testing.T) {
	for name, c := range map[string]sseCodec{"passthrough": &messagesCodec{}, "translated": &chatFromMessages{}} {
		t.Run(name, func(t *testing.T) {
			var fin *tap
			tp := newCodecTap(&chunkedReader{data: []byte(anthropicStream), sizes: repeat(3, len(anthropicStream)), final: io.EOF}, true, c, func(x *tap) { fin = x })
			tp.authorize = func(n string) error { return &toolDeniedError{Name: n, Reasons: []string{"not for you"}} }
			out, err := io.ReadAll(tp)
			if err == nil || fin == nil || fin.err == nil {
				t.Fatal("a denied tool call ended the stream cleanly")
			}
			if strings.Contains(string(out), "toolu_1") || strings.Contains(string(out), "Paris") {
				t.Errorf("the denied call reached the client: %s", out)
			}
			if !strings.Contains(string(out), "Checking") || !strings.Contains(string(out), `get_weather\", which policy does not allow`) {
				t.Errorf("want the text before the call, then the denial: %s", out)
			}
		})
	}
}
