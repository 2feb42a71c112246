package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type fixedCheckpoint []byte

func (f fixedCheckpoint) LatestCheckpoint() []byte { return f }

func TestServeCheckpoint(t *testing.T) {
	const note = "gw-1\n3\ntCStvPBpSOtq9iaK7hxgEZXZdlrQqyN71Sz1lvToS5s=\n\n— gw-1 rZQWqaJw\n"
	for _, tc := range []struct {
		name     string
		src      CheckpointSource
		status   int
		ctype    string
		wantBody string
	}{
		{"signed", fixedCheckpoint(note), 200, "text/plain; charset=utf-8", note},
		{"none yet", fixedCheckpoint(nil), 503, "application/json", ""},
		{"not configured", nil, 404, "application/json", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{Checkpoints: tc.src}}
			rec := httptest.NewRecorder()
			g.serveCheckpoint(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/checkpoint", nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body: got %q, want %q", body, tc.wantBody)
			}
		})
	}
}
