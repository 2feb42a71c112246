package fakeprovider

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseScenario(t *testing.T) {
	tests := []struct {
		text    string
		want    scenario
		wantErr string
	}{
		{"plain text", scenario{}, ""},
		{"[fake:error=429]", scenario{errStatus: 429}, ""},
		{"a [fake:chunks=50] b [fake:slow=20]", scenario{chunks: 50, slow: 20 * time.Millisecond}, ""},
		{"[fake:cut][fake:stream_error]", scenario{cut: true, streamError: true}, ""},
		{"[fake:tool]", scenario{wantTool: true}, ""},
		{"[fake:tool=get_weather]", scenario{wantTool: true, tool: "get_weather"}, ""},
		{"[fake:tool=*]", scenario{wantTool: true, tool: "*"}, ""},
		{"[fake:content_type=Text/Event-Stream; charset=utf-8][fake:truncate]", scenario{contentType: "Text/Event-Stream; charset=utf-8", truncate: true}, ""},
		{"[fake:content_type=none]", scenario{contentType: "none"}, ""},
		{"[fake:content_type=]", scenario{}, "want a media type"},
		{"[fake:error=200]", scenario{}, "want an HTTP status"},
		{"[fake:error=abc]", scenario{}, "want an HTTP status"},
		{"[fake:chunks=0]", scenario{}, "want 1-100000"},
		{"[fake:chunks=100001]", scenario{}, "want 1-100000"},
		{"[fake:slow=-1]", scenario{}, "want milliseconds"},
		{"[fake:slow=60001]", scenario{}, "want milliseconds"},
		{"[fake:boom]", scenario{}, "unknown scenario directive [fake:boom]"},
		{"[fake:ERROR=500]", scenario{}, ""}, // not a directive: names are lower case
	}
	for _, tt := range tests {
		got, err := parseScenario(tt.text)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "fakeprovider: ") {
				t.Errorf("parseScenario(%q) err = %v, want one containing %q", tt.text, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseScenario(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
		}
	}
}

func TestStripDirectives(t *testing.T) {
	for in, want := range map[string]string{
		"  hello [fake:chunks=3] world [fake:tool] ": "hello  world",
		"a[fake:[fake:cut]cut]b":                     "ab",
	} {
		if got := stripDirectives(in); got != want {
			t.Errorf("stripDirectives(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArgsFor(t *testing.T) {
	tests := []struct {
		schema, want string
	}{
		{``, `{}`},
		{`not json`, `{}`},
		{`{"type":"object"}`, `{}`},
		{`{"properties":{"s":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},"a":{"type":"array"},"o":{"type":"object"},"x":{}}}`,
			`{"a":[],"b":true,"i":1,"n":1,"o":{},"s":"fake","x":"fake"}`},
		{`{"properties":{"u":{"type":"string","enum":["celsius","fahrenheit"]},"t":{"type":["integer","null"]}}}`, `{"t":1,"u":"celsius"}`},
	}
	for _, tt := range tests {
		got := argsFor(json.RawMessage(tt.schema))
		if got != tt.want {
			t.Errorf("argsFor(%s) = %s, want %s", tt.schema, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("argsFor(%s) is not JSON", tt.schema)
		}
	}
}

func TestFragments(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"", 8, []string{""}},
		{"abcdefgh", 8, []string{"abcdefgh"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"aéé", 2, []string{"aé", "é"}}, // never splits a rune
	}
	for _, tt := range tests {
		got := fragments(tt.in, tt.n)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("fragments(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("héllo", 2); got != "hé" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("hi", 40); got != "hi" {
		t.Errorf("clip = %q", got)
	}
}

func TestAnswerToolChoice(t *testing.T) {
	tools := []toolDef{{name: "a"}, {name: "b"}}
	ids := func(i int) string { return string(rune('0' + i)) }
	tests := []struct {
		name      string
		c         convo
		sc        scenario
		wantCalls string
		wantErr   bool
	}{
		{"no tools offered", convo{lastRole: "user"}, scenario{wantTool: true}, "", false},
		{"auto without directive", convo{lastRole: "user", tools: tools, choice: toolChoice{mode: "auto"}}, scenario{}, "", false},
		{"directive", convo{lastRole: "user", tools: tools}, scenario{wantTool: true}, "a", false},
		{"directive all", convo{lastRole: "user", tools: tools}, scenario{wantTool: true, tool: "*"}, "a,b", false},
		{"directive named", convo{lastRole: "user", tools: tools}, scenario{wantTool: true, tool: "b"}, "b", false},
		{"directive unknown tool", convo{lastRole: "user", tools: tools}, scenario{wantTool: true, tool: "z"}, "", true},
		{"directive after tool result", convo{lastRole: "tool", tools: tools}, scenario{wantTool: true}, "", false},
		{"none beats directive", convo{lastRole: "user", tools: tools, choice: toolChoice{mode: "none"}}, scenario{wantTool: true}, "", false},
		{"required", convo{lastRole: "tool", tools: tools, choice: toolChoice{mode: "required"}}, scenario{}, "a", false},
		{"named", convo{lastRole: "user", tools: tools, choice: toolChoice{mode: "named", name: "b"}}, scenario{}, "b", false},
	}
	for _, tt := range tests {
		r, err := answer(tt.c, tt.sc, ids)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		var names []string
		for _, c := range r.calls {
			names = append(names, c.name)
		}
		if got := strings.Join(names, ","); got != tt.wantCalls {
			t.Errorf("%s: calls = %q, want %q", tt.name, got, tt.wantCalls)
		}
		if len(names) > 0 && r.finish != finishTool {
			t.Errorf("%s: finish = %v, want tool", tt.name, r.finish)
		}
	}
}

func TestDisplayName(t *testing.T) {
	for in, want := range map[string]string{"claude-sonnet-4-5": "Claude Sonnet 4.5", "claude-opus-4-1": "Claude Opus 4.1", "claude-x": "Claude X"} {
		if got := displayName(in); got != want {
			t.Errorf("displayName(%q) = %q, want %q", in, got, want)
		}
	}
}
