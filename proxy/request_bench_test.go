package proxy

import (
	"strings"
	"testing"
)

// benchChatBody is the ~1 KB body portcullis-load sends (cmd/portcullis-load).
var benchChatBody = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful support assistant for Acme Corp."},{"role":"user","content":"Hello. ` +
	strings.Repeat("Summarise the customer's ticket and propose a reply that is polite, precise and short. ", 10)[:860] +
	`"}],"max_completion_tokens":256}`)

var benchToolBody = []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[` +
	`{"role":"user","content":"What is the weather in Paris and in Rome?"},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":18}"}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},` +
	`{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}]}`)

// benchRequests are the bodies the request benchmarks read.
var benchRequests = []struct {
	name string
	body []byte
}{{"chat_1KB", benchChatBody}, {"tools", benchToolBody}}

func BenchmarkParseChatRequest(b *testing.B) {
	for _, bc := range benchRequests {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseChatRequest(bc.body, testKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPatchBody is the cost a stream pays when the client did not ask
// for usage, or an alias or max_tokens obligation rewrites the body.
func BenchmarkPatchBody(b *testing.B) {
	set := map[string]any{"stream_options": map[string]bool{"include_usage": true}}
	b.SetBytes(int64(len(benchChatBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := patchBody(benchChatBody, set); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestKeyCheck is what refusing ambiguous request bodies costs
// each model request (serveLLM runs uniqueKeys over the whole body).
func BenchmarkRequestKeyCheck(b *testing.B) {
	for _, bc := range benchRequests {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := uniqueKeys(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
