// Package fakeprovider is an in-process stand-in for the OpenAI and
// Anthropic HTTP APIs, faithful to their wire formats, for tests and for
// "portcullis serve --dev". It is the only provider stand-in in the project.
//
// Start one on a loopback port and point an SDK (or the gateway) at it:
//
//	fp, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: "sk-test"})
//	if err != nil { ... }
//	defer fp.Close()
//	client := openai.NewClient(option.WithBaseURL(fp.URL()), option.WithAPIKey("sk-test"))
//	ant := anthropic.NewClient(option.WithBaseURL(strings.TrimSuffix(fp.URL(), "/v1")), option.WithAPIKey("sk-test"))
//
// A Server made with New is a plain http.Handler. Listen serves HTTP/1.1
// and HTTP/2 with prior knowledge (h2c) on plain TCP, or both by ALPN when
// Options.TLS is set. Requests returns what it received (method, path,
// headers, body), so a test can check what a gateway forwarded; Cancelled
// counts answers the client abandoned part way.
//
// # Endpoints
//
//	POST /v1/chat/completions  OpenAI chat: JSON, or SSE chunks when "stream" is true
//	POST /v1/responses         OpenAI Responses: JSON, or its typed SSE events
//	POST /v1/embeddings        OpenAI embeddings: float or base64 vectors
//	GET  /v1/models[/ID]       OpenAI's list (Anthropic's when x-api-key or anthropic-version is sent)
//	POST /v1/messages          Anthropic Messages: JSON, or its SSE events
//	POST /v1/messages/count_tokens
//	                           Anthropic token counting: {"input_tokens": N}
//
// Authentication: when Options.APIKey is set, OpenAI endpoints want
// "Authorization: Bearer KEY" and Anthropic endpoints "x-api-key: KEY" (or
// the bearer form, which anthropic-sdk-go's WithAPIKey sends); anything
// else is a 401 in that provider's error shape. Anthropic requests must also
// carry "anthropic-version", and Messages requests "max_tokens", as the real
// API demands; count_tokens refuses "max_tokens" and "stream" ("Extra inputs
// are not permitted"), as the real API does. Models: ids beginning "claude"
// are served only by /v1/messages and its count_tokens, ids containing
// "embedding" only by /v1/embeddings, the rest only by the OpenAI chat and
// Responses endpoints; others are 404 model_not_found.
//
// # Answers
//
// Everything is deterministic. The text is "Hello from fake MODEL: you said
// " followed by the first 40 characters of the last user message (scenario
// directives removed), or "Tool result received: ..." when the last message
// is a tool result. Streams send one word per content chunk. Usage: prompt
// tokens are the bytes of all message text and tool definitions divided by
// four (rounded up, at least one); completion tokens are the words of the
// answer, or the bytes of tool name and arguments divided by four. A
// max_tokens (max_completion_tokens, max_output_tokens) smaller than the
// answer cuts it to that many words with finish_reason "length" (Anthropic
// stop_reason "max_tokens", Responses status "incomplete"). Ids carry the
// request's sequence number ("chatcmpl-fake000…0042", "msg_fake…",
// "call_fake…", "toolu_fake…"); "created" comes from Options.Clock.
//
// Token counts: count_tokens answers {"input_tokens": N} with N the prompt
// tokens the Messages answer reports for the same system, messages and
// tools: a fake count, derived from byte lengths, not a tokenizer's.
//
// Tool calls: when the request offers tools, the fake calls one if
// tool_choice forces it ("required" or a named function; Anthropic "any" or
// "tool") or if the last message is the user's and carries [fake:tool].
// Arguments fill every property of the tool's JSON Schema with its first
// enum value or a fixed value of its type ("fake", 1, true, [], {}). A
// streamed call sends its id and name, then the arguments in 8-byte pieces.
//
// # Scenarios
//
// Tests steer the fake with directives in the last user message (the
// gateway strips unknown headers, so headers cannot carry them, and nothing
// in the gateway may treat them specially):
//
//	[fake:error=CODE]   answer HTTP CODE (400-599) in the API's error shape;
//	                    401 invalid_api_key, 429 rate limit, 500 server error,
//	                    529 Anthropic overloaded_error
//	[fake:cut]          stream half the answer, then drop the connection with
//	                    no terminator ([DONE] / message_stop): SDKs report an error
//	[fake:stream_error] stream half the answer, then an in-stream error event
//	                    (OpenAI data: {"error":…}; Anthropic event: error,
//	                    overloaded_error) and end
//	[fake:chunks=N]     answer N words of filler text (N content chunks)
//	[fake:slow=MS]      wait MS milliseconds before each chunk, or before a
//	                    JSON answer
//	[fake:tool]         call the first offered tool; [fake:tool=NAME] that
//	                    tool; [fake:tool=*] every offered tool in parallel
//
// Misbehaviours, for testing what a gateway does with a provider that
// breaks the wire format (opt-in: without them the fake is faithful):
//
//	[fake:content_type=TYPE]  label the 2xx answer (JSON or stream) TYPE,
//	                          or send no Content-Type at all with "none"
//	[fake:truncate]           send only the first half of a JSON answer
//	                          (with a Content-Length to match), status 200
//
// An unknown directive or a bad value is a 400, so that a typo fails the
// test. Directives in an embeddings input work too (error and slow).
//
// Client cancellation is honoured: the fake stops writing when the
// request's context ends and counts it in Cancelled.
package fakeprovider
