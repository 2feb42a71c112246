package fakeprovider

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits on scenario values, so a typo cannot hang a test run.
const (
	maxScenarioChunks = 100000
	maxScenarioSlow   = 60 * time.Second
)

// directiveRE matches one scenario directive, "[fake:name]" or
// "[fake:name=value]".
var directiveRE = regexp.MustCompile(`\[fake:([a-z_]+)(?:=([^\]\[]{0,64}))?\]`)

// scenario is what the directives in the last user message ask for.
type scenario struct {
	errStatus   int           // [fake:error=CODE]: answer with this HTTP error
	cut         bool          // [fake:cut]: drop the connection mid-stream
	streamError bool          // [fake:stream_error]: an in-stream error event, then end
	chunks      int           // [fake:chunks=N]: N content chunks of filler text
	slow        time.Duration // [fake:slow=MS]: pause before each chunk (and before a JSON answer)
	tool        string        // [fake:tool] "" first tool, [fake:tool=NAME], [fake:tool=*] all
	wantTool    bool          // a tool directive is present
	contentType string        // [fake:content_type=TYPE]: label a 2xx answer TYPE ("none": no Content-Type)
	truncate    bool          // [fake:truncate]: send only the first half of a JSON answer
}

// parseScenario reads the directives in text. An unknown directive or a bad
// value is an error, so that a typo in a test fails loudly.
func parseScenario(text string) (scenario, error) {
	var sc scenario
	if !strings.Contains(text, "[fake:") {
		return sc, nil
	}
	for _, m := range directiveRE.FindAllStringSubmatch(text, -1) {
		name, val := m[1], m[2]
		switch name {
		case "error":
			n, err := strconv.Atoi(val)
			if err != nil || n < 400 || n > 599 {
				return sc, fmt.Errorf("fakeprovider: [fake:error=%s]: want an HTTP status 400-599", val)
			}
			sc.errStatus = n
		case "cut":
			sc.cut = true
		case "stream_error":
			sc.streamError = true
		case "chunks":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxScenarioChunks {
				return sc, fmt.Errorf("fakeprovider: [fake:chunks=%s]: want 1-%d", val, maxScenarioChunks)
			}
			sc.chunks = n
		case "slow":
			n, err := strconv.Atoi(val)
			d := time.Duration(n) * time.Millisecond
			if err != nil || n < 0 || d > maxScenarioSlow {
				return sc, fmt.Errorf("fakeprovider: [fake:slow=%s]: want milliseconds 0-%d", val, maxScenarioSlow.Milliseconds())
			}
			sc.slow = d
		case "tool":
			sc.wantTool = true
			sc.tool = val
		case "content_type":
			if val == "" {
				return sc, fmt.Errorf("fakeprovider: [fake:content_type=]: want a media type, or none")
			}
			sc.contentType = val
		case "truncate":
			sc.truncate = true
		default:
			return sc, fmt.Errorf("fakeprovider: unknown scenario directive [fake:%s]", name)
		}
	}
	return sc, nil
}

// stripDirectives removes the directives from text, for echoing it back,
// including any that removing others brings together ("[fake:[fake:cut]cut]").
func stripDirectives(text string) string {
	for directiveRE.MatchString(text) {
		text = directiveRE.ReplaceAllString(text, "")
	}
	return strings.TrimSpace(text)
}

// scenarioError turns a directive parse error into a 400.
func scenarioError(err error) *apiError {
	return &apiError{status: http.StatusBadRequest, message: err.Error()}
}
