package proxy

import (
	"io"
	"net/http"
)

// adapter says how requests of one client-facing API are sent to providers
// of one format, and how their answers come back.
type adapter struct {
	path string // upstream path below the provider's base URL
	// translated is set when the provider speaks another API than the client.
	translated bool
	// body builds the upstream body for a route.
	body func(x *exchange, rt *Route) ([]byte, error)
	// codec reads (and, translated, rewrites) the response stream.
	codec func(x *exchange) sseCodec
}

// adapterFor returns the adapter serving api from a provider of format, or
// nil when that provider cannot serve that API.
func adapterFor(api API, format string) *adapter {
	switch {
	case api == APIChatCompletions && format == FormatOpenAI:
		return &adapter{path: "/chat/completions", body: nativeBody, codec: func(*exchange) sseCodec { return chatCodec{} }}
	case api == APIResponses && format == FormatOpenAI:
		return &adapter{path: "/responses", body: nativeBody, codec: func(*exchange) sseCodec { return &responsesCodec{} }}
	case api == APIEmbeddings && format == FormatOpenAI:
		return &adapter{path: "/embeddings", body: nativeBody, codec: func(*exchange) sseCodec { return chatCodec{} }}
	case api == APIAnthropicMessages && format == FormatAnthropic:
		return &adapter{path: "/messages", body: nativeBody, codec: func(*exchange) sseCodec { return &messagesCodec{} }}
	case api == APICountTokens && format == FormatAnthropic:
		return countTokensAdapter()
	case api == APIChatCompletions && format == FormatAnthropic:
		return &adapter{path: "/messages", translated: true,
			body: func(x *exchange, rt *Route) ([]byte, error) {
				return chatToMessages(x.clientBody, rt.UpstreamModel, x.req.MaxTokens)
			},
			codec: func(x *exchange) sseCodec {
				return &chatFromMessages{created: x.caller.start.Unix(), includeUsage: x.req.IncludeUsage}
			}}
	}
	return nil
}

// maxTokensField is where each API keeps the output cap.
var maxTokensField = map[API]string{
	APIChatCompletions:   "max_completion_tokens",
	APIResponses:         "max_output_tokens",
	APIAnthropicMessages: "max_tokens",
}

// nativeBody is the client's body for a provider of the client's own format,
// changed only where the gateway must: the upstream model name, a max tokens
// obligation, a usage request on a chat stream.
func nativeBody(x *exchange, rt *Route) ([]byte, error) {
	set := map[string]any{}
	if rt.UpstreamModel != x.req.Model {
		set["model"] = rt.UpstreamModel
	}
	if x.capTokens > 0 {
		if f := maxTokensField[x.req.API]; f != "" {
			set[f] = x.capTokens
			if x.req.API == APIChatCompletions {
				set["max_tokens"] = nil
			}
		}
	}
	if x.req.API == APIChatCompletions && x.req.Stream && !x.req.IncludeUsage {
		// Usage is what budgets and audit are made of; ask for it.
		set["stream_options"] = map[string]bool{"include_usage": true}
	}
	if len(set) == 0 {
		return x.clientBody, nil
	}
	return patchBody(x.clientBody, set)
}

// plan is one place the exchange may be sent: the route and its adapter,
// with the body built for it.
type plan struct {
	route   *Route
	adapter *adapter
	body    []byte
}

// plans builds the primary plan and one per usable fallback. A fallback that
// cannot serve the request (another format, a pinned provider) is left out;
// the primary's failure is the client's error.
// servable reports, before the steps that park an approval or reserve a
// budget, whether the request's API can be served by its route at all: a
// request its primary provider's format cannot serve (count_tokens on an
// OpenAI-format model, say) is refused at once, not after a human
// approved it.
func servable(x *exchange) error {
	if adapterFor(x.req.API, x.route.Provider.Format) == nil {
		return noAdapterError(x, x.route)
	}
	return nil
}

func (g *Gateway) plans(x *exchange) ([]*plan, error) {
	var out []*plan
	for i, rt := range x.route.candidates() {
		if pin := x.decision.Obligations.Provider; i > 0 && pin != "" && pin != rt.Provider.Name {
			continue
		}
		a := adapterFor(x.req.API, rt.Provider.Format)
		if a == nil {
			if i == 0 {
				return nil, noAdapterError(x, rt)
			}
			continue
		}
		b, err := a.body(x, rt)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue
		}
		out = append(out, &plan{route: rt, adapter: a, body: b})
	}
	return out, nil
}

// target points an upstream request at a plan: URL, body and the provider's
// credential in its own scheme.
func target(out *http.Request, p *plan) {
	prov := p.route.Provider
	out.URL = upstreamURL(prov.BaseURL, p.adapter.path)
	out.Host = ""
	out.Body = bodyReader(p.body)
	out.ContentLength = int64(len(p.body))
	out.GetBody = func() (_ io.ReadCloser, _ error) { return bodyReader(p.body), nil }
	h := out.Header
	h.Del("Authorization")
	h.Del("X-Api-Key")
	h.Set("Content-Type", "application/json")
	if prov.Format == FormatAnthropic {
		h.Del("Openai-Beta")
		if p.adapter.translated || h.Get("Anthropic-Version") == "" {
			h.Set("Anthropic-Version", prov.anthropicVersion())
		}
		if p.adapter.translated {
			h.Del("Anthropic-Beta")
		}
	} else {
		h.Del("Anthropic-Version")
		h.Del("Anthropic-Beta")
	}
	prov.setAuth(h)
}
