package fakeprovider

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// echoRunes is how much of the last user message the answer quotes.
const echoRunes = 40

// filler is the text [fake:chunks=N] cycles through.
var filler = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua")

// toolDef is a tool the request offers.
type toolDef struct {
	name   string
	schema json.RawMessage // JSON Schema of the arguments; may be empty
}

// toolChoice says how the request constrains tool use.
type toolChoice struct {
	mode string // "auto", "none", "required" (Anthropic "any"), "named"
	name string // for "named"
}

// convo is a chat request reduced to what decides the answer; each API's
// parser fills it in.
type convo struct {
	model       string
	lastRole    string // role of the last message: "user", "tool" or "assistant"
	lastText    string // text of the last message (a tool result when lastRole is "tool")
	userText    string // text of the last user message, where directives are read
	promptBytes int    // bytes of all prompt text and tool definitions
	tools       []toolDef
	choice      toolChoice
	maxTokens   int // 0: no limit
}

// toolCall is one call the fake model makes.
type toolCall struct {
	id   string
	name string
	args string // JSON object
}

// finish is why the answer ended.
type finish int

const (
	finishStop finish = iota
	finishLength
	finishTool
)

// reply is the answer the fake model gives, before it is put in an API's
// shape.
type reply struct {
	chunks           []string // content pieces, in order; joined they are the text
	calls            []toolCall
	finish           finish
	promptTokens     int
	completionTokens int
}

func (r reply) text() string { return strings.Join(r.chunks, "") }

// tokens estimates tokens from bytes, four to a token, at least one.
func tokens(bytes int) int { return max(1, (bytes+3)/4) }

// clip returns the first n runes of s.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

// answer decides the reply. callID names the i-th tool call.
func answer(c convo, sc scenario, callID func(i int) string) (reply, error) {
	r := reply{promptTokens: tokens(c.promptBytes)}
	calls, err := chooseTools(c, sc)
	if err != nil {
		return r, err
	}
	if len(calls) > 0 {
		for i, t := range calls {
			args := argsFor(t.schema)
			r.calls = append(r.calls, toolCall{id: callID(i), name: t.name, args: args})
			r.completionTokens += tokens(len(t.name) + len(args))
		}
		r.finish = finishTool
		return r, nil
	}
	var words []string
	switch {
	case sc.chunks > 0:
		for i := range sc.chunks {
			words = append(words, filler[i%len(filler)])
		}
	case c.lastRole == "tool":
		words = strings.Fields("Tool result received: " + clip(c.lastText, echoRunes))
	default:
		words = strings.Fields(fmt.Sprintf("Hello from fake %s: you said %s", c.model, clip(stripDirectives(c.userText), echoRunes)))
	}
	if c.maxTokens > 0 && len(words) > c.maxTokens {
		words = words[:c.maxTokens]
		r.finish = finishLength
	}
	for i, w := range words {
		if i < len(words)-1 {
			w += " "
		}
		r.chunks = append(r.chunks, w)
	}
	r.completionTokens = len(words)
	return r, nil
}

// chooseTools picks the tools the fake model calls: none unless tools are
// offered and either tool_choice forces one or the last message is the
// user's and carries a [fake:tool] directive.
func chooseTools(c convo, sc scenario) ([]toolDef, error) {
	if len(c.tools) == 0 || c.choice.mode == "none" {
		return nil, nil
	}
	find := func(name string) ([]toolDef, error) {
		i := slices.IndexFunc(c.tools, func(t toolDef) bool { return t.name == name })
		if i < 0 {
			return nil, fmt.Errorf("fakeprovider: tool %q is not offered", name)
		}
		return c.tools[i : i+1], nil
	}
	switch {
	case c.choice.mode == "named":
		return find(c.choice.name)
	case sc.wantTool && c.lastRole == "user":
		switch sc.tool {
		case "":
			return c.tools[:1], nil
		case "*":
			return c.tools, nil
		}
		return find(sc.tool)
	case c.choice.mode == "required":
		return c.tools[:1], nil
	}
	return nil, nil
}

// argsFor makes deterministic arguments that satisfy a simple JSON Schema:
// every declared property, with the first enum value or a fixed value of
// its type.
func argsFor(schema json.RawMessage) string {
	var s struct {
		Properties map[string]struct {
			Type any   `json:"type"`
			Enum []any `json:"enum"`
		} `json:"properties"`
	}
	if len(schema) == 0 || json.Unmarshal(schema, &s) != nil {
		return "{}"
	}
	args := make(map[string]any, len(s.Properties))
	for name, p := range s.Properties {
		if len(p.Enum) > 0 {
			args[name] = p.Enum[0]
			continue
		}
		typ, _ := p.Type.(string)
		if list, ok := p.Type.([]any); ok && len(list) > 0 {
			typ, _ = list[0].(string)
		}
		switch typ {
		case "integer", "number":
			args[name] = 1
		case "boolean":
			args[name] = true
		case "array":
			args[name] = []any{}
		case "object":
			args[name] = map[string]any{}
		default:
			args[name] = "fake"
		}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// fragments splits s into pieces of about n bytes, never inside a UTF-8
// sequence, as streamed tool arguments arrive.
func fragments(s string, n int) []string {
	var out []string
	for len(s) > n {
		k := n
		for k < len(s) && !utf8.RuneStart(s[k]) {
			k++
		}
		out = append(out, s[:k])
		s = s[k:]
	}
	return append(out, s)
}
