package proxy

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/jsonstr"
)

// requestLine is the one info line every model request writes (logRequest).
type requestLine struct {
	requestID, spiffeID, kind, tenant, model, provider string
	allow                                              bool
	status                                             int
	latencyMS                                          float64
	totalTokens                                        int
	hasTokens                                          bool
	err                                                error
}

// fields is the line as logrus fields.
func (l *requestLine) fields() logrus.Fields {
	f := logrus.Fields{
		"request_id": l.requestID,
		"spiffe_id":  l.spiffeID,
		"kind":       l.kind,
		"tenant":     l.tenant,
		"model":      l.model,
		"allow":      l.allow,
		"status":     l.status,
		"latency_ms": l.latencyMS,
	}
	if l.provider != "" {
		f["provider"] = l.provider
	}
	if l.hasTokens {
		f["total_tokens"] = l.totalTokens
	}
	if l.err != nil {
		f[logrus.ErrorKey] = l.err
	}
	return f
}

// writeRequestLine writes the line through log. When log is a plain
// logrus.Logger with the stock JSON formatter (no hooks, no caller, no
// field renaming) writing to a file or discarding, the line is encoded here
// byte for byte as that formatter would (requestlog_test.go compares them)
// and written in one Write, as logrus writes it: the reflection-based
// encoding of a field map was a tenth of the gateway's CPU per request.
// Any other logger gets the fields through logrus.
func writeRequestLine(log logrus.FieldLogger, l *requestLine) {
	lg, ok := log.(*logrus.Logger)
	if !ok {
		log.WithFields(l.fields()).Info("request")
		return
	}
	if !lg.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	jf, ok := lg.Formatter.(*logrus.JSONFormatter)
	if !ok || jf.DataKey != "" || len(jf.FieldMap) != 0 || jf.PrettyPrint || lg.ReportCaller || len(lg.Hooks[logrus.InfoLevel]) != 0 {
		lg.WithFields(l.fields()).Info("request")
		return
	}
	switch lg.Out.(type) {
	case *os.File:
	default:
		if lg.Out != io.Discard {
			lg.WithFields(l.fields()).Info("request")
			return
		}
	}
	bp := linePool.Get().(*[]byte)
	b := l.appendJSON((*bp)[:0], jf, time.Now())
	_, _ = lg.Out.Write(b)
	*bp = b
	linePool.Put(bp)
}

// appendJSON encodes the line as logrus.JSONFormatter does: encoding/json of
// a map, so keys sorted, strings HTML-escaped unless disabled, one newline.
func (l *requestLine) appendJSON(b []byte, jf *logrus.JSONFormatter, now time.Time) []byte {
	html := !jf.DisableHTMLEscape
	str := func(b []byte, k, v string) []byte {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		return appendJSONString(b, v, html)
	}
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, l.allow)
	b = append(b, ',')
	if l.err != nil {
		b = str(b, "error", l.err.Error())
		b = append(b, ',')
	}
	b = str(b, "kind", l.kind)
	b = append(b, `,"latency_ms":`...)
	b = appendJSONFloat(b, l.latencyMS)
	b = append(b, `,"level":"info",`...)
	b = str(b, "model", l.model)
	b = append(b, `,"msg":"request",`...)
	if l.provider != "" {
		b = str(b, "provider", l.provider)
		b = append(b, ',')
	}
	b = str(b, "request_id", l.requestID)
	b = append(b, ',')
	b = str(b, "spiffe_id", l.spiffeID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, ',')
	b = str(b, "tenant", l.tenant)
	if !jf.DisableTimestamp {
		format := jf.TimestampFormat
		if format == "" {
			format = time.RFC3339
		}
		b = append(b, `,"time":`...)
		b = appendJSONString(b, now.Format(format), html)
	}
	if l.hasTokens {
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, int64(l.totalTokens), 10)
	}
	return append(b, '}', '\n')
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSONFloat formats f as encoding/json formats a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as encoding/json does; html escapes < > & as
// json.Marshal does, off as an Encoder with SetEscapeHTML(false) (logrus).
func appendJSONString(b []byte, s string, html bool) []byte { return jsonstr.Append(b, s, html) }

// attemptList is detail.attempts of a completion record. It encodes itself
// as encoding/json encodes []attempt (requestlog_test.go compares them),
// without reflection: every completion record carries it.
type attemptList []attempt

var _ audit.JSONAppender = attemptList(nil)

// MarshalJSON implements json.Marshaler.
func (l attemptList) MarshalJSON() ([]byte, error) { return l.AppendJSON(make([]byte, 0, 96*len(l)+2)) }

// AppendJSON implements audit.JSONAppender: the audit encoder appends the
// list straight into the record, skipping encoding/json's compaction pass.
func (l attemptList) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '[')
	for i, a := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"provider":`...)
		b = appendJSONString(b, a.Provider, true)
		b = append(b, `,"model":`...)
		b = appendJSONString(b, a.Model, true)
		if a.Status != 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(a.Status), 10)
		}
		if a.Error != "" {
			b = append(b, `,"error":`...)
			b = appendJSONString(b, a.Error, true)
		}
		if math.IsInf(a.LatencyMS, 0) || math.IsNaN(a.LatencyMS) {
			return nil, fmt.Errorf("proxy: attempt latency %v", a.LatencyMS)
		}
		b = append(b, `,"latency_ms":`...)
		b = appendJSONFloat(b, a.LatencyMS)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}
