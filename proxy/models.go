package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy"
)

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// listModels answers GET /v1/models with only the models that policy lets
// this caller invoke. Each model is a separate llm.invoke decision (cached),
// so the list can never promise what a call would then be refused.
func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	pp := policyPrincipal(c.principal)
	gc := g.listGrantContext(r, c) // an agent lists what its grant allows
	list := modelList{Object: "list", Data: []modelObject{}}
	var allowed []string
	for _, m := range g.cfg.Router.Models() {
		rt, _ := g.cfg.Router.Lookup(m)
		d, err := g.cfg.Policy.Decide(r.Context(), &policy.Input{
			Action:    "llm.invoke",
			Principal: pp,
			Grant:     gc.Grant,
			Chain:     gc.Chain,
			User:      gc.User,
			Request:   &policy.Request{API: string(APIChatCompletions), Model: m, Provider: rt.Provider.Name},
		})
		if err != nil || !d.Allow {
			continue
		}
		allowed = append(allowed, m)
		list.Data = append(list.Data, modelObject{ID: m, Object: "model", OwnedBy: rt.Provider.Name})
	}
	ev := &audit.Event{
		Type:      "decision",
		RequestID: c.id,
		Action:    "models.list",
		Principal: auditPrincipal(c.principal),
		Decision:  &audit.Decision{Allow: true, Reasons: []string{"listed models this caller may invoke"}},
		Status:    http.StatusOK,
		Detail:    map[string]any{"models": allowed},
	}
	seq, err := g.cfg.Audit.Append(r.Context(), ev)
	if err != nil {
		g.auditUnavailable(w, c.id, err)
		return
	}
	w.Header().Set("X-Portcullis-Audit-Seq", strconv.FormatUint(seq, 10))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}
