package proxy

import (
	"net/http"

	"github.com/portcullis-dev/portcullis/audit"
)

// CheckpointSource gives the newest signed checkpoint of the audit log (a
// C2SP tlog-checkpoint signed note), or nil before the first one.
// *audit.Log implements it.
type CheckpointSource interface {
	LatestCheckpoint() []byte
}

var _ CheckpointSource = (*audit.Log)(nil)

// serveCheckpoint answers GET /v1/audit/checkpoint with the latest signed
// checkpoint as text/plain, so witnesses, SIEMs and auditors' cron jobs can
// collect checkpoints and later run `portcullis audit verify --checkpoint`.
// Like every route it needs a caller with a valid, mapped SVID.
func (g *Gateway) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	reqID := w.Header().Get("X-Request-Id")
	if g.cfg.Checkpoints == nil {
		writeError(w, apiError{Status: http.StatusNotFound, Code: codeNotFound, RequestID: reqID,
			Message: "this gateway does not sign audit checkpoints (audit.signing_key_file is not set)"})
		return
	}
	msg := g.cfg.Checkpoints.LatestCheckpoint()
	if msg == nil {
		w.Header().Set("Retry-After", "10")
		writeError(w, apiError{Status: http.StatusServiceUnavailable, Code: codeAuditFailed, RequestID: reqID,
			Message: "no audit checkpoint has been signed yet; try again shortly"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(msg)
}
