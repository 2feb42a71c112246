package fakeprovider

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// modelsCreated is the fixed creation time reported for every model.
var modelsCreated = time.Date(2024, 7, 18, 0, 0, 0, 0, time.UTC)

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type anthropicModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

func toOpenAIModel(id string) openAIModel {
	return openAIModel{ID: id, Object: "model", Created: modelsCreated.Unix(), OwnedBy: "system"}
}

func toAnthropicModel(id string) anthropicModel {
	return anthropicModel{Type: "model", ID: id, DisplayName: displayName(id), CreatedAt: modelsCreated.Format(time.RFC3339)}
}

// displayName turns "claude-sonnet-4-5" into "Claude Sonnet 4.5".
func displayName(id string) string {
	parts := strings.Split(id, "-")
	var words []string
	var version []string
	for _, p := range parts {
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			version = append(version, p)
			continue
		}
		if p != "" {
			words = append(words, strings.ToUpper(p[:1])+p[1:])
		}
	}
	if len(version) > 0 {
		words = append(words, strings.Join(version, "."))
	}
	return strings.Join(words, " ")
}

// listModels answers GET /v1/models in the shape of the API the request
// speaks; each API lists only its own models.
func (x *exchange) listModels() {
	if x.api == apiAnthropic {
		if e := requireVersion(x.r); e != nil {
			x.fail(e)
			return
		}
		data := []anthropicModel{}
		for _, m := range x.s.models {
			if modelKind(m) == "anthropic" {
				data = append(data, toAnthropicModel(m))
			}
		}
		var first, last *string
		if len(data) > 0 {
			first, last = &data[0].ID, &data[len(data)-1].ID
		}
		x.writeJSON(http.StatusOK, struct {
			Data    []anthropicModel `json:"data"`
			HasMore bool             `json:"has_more"`
			FirstID *string          `json:"first_id"`
			LastID  *string          `json:"last_id"`
		}{data, false, first, last})
		return
	}
	data := []openAIModel{}
	for _, m := range x.s.models {
		if modelKind(m) != "anthropic" {
			data = append(data, toOpenAIModel(m))
		}
	}
	x.writeJSON(http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{"list", data})
}

// getModel answers GET /v1/models/ID.
func (x *exchange) getModel() {
	id := strings.TrimPrefix(x.r.URL.Path, "/v1/models/")
	isAnthropic := modelKind(id) == "anthropic"
	if !slices.Contains(x.s.models, id) || isAnthropic != (x.api == apiAnthropic) {
		if x.api == apiAnthropic {
			x.fail(&apiError{status: http.StatusNotFound, message: "model: " + id})
			return
		}
		x.fail(errModelNotFound(id))
		return
	}
	if x.api == apiAnthropic {
		x.writeJSON(http.StatusOK, toAnthropicModel(id))
		return
	}
	x.writeJSON(http.StatusOK, toOpenAIModel(id))
}
