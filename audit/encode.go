package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/jsonstr"
)

// appendEvent appends the JSON of ev to buf, byte for byte what
// json.Marshal(ev) produces (field order, omitempty, HTML-safe string
// escaping, float formatting, sorted map keys), without reflection.
// Values inside Detail and Obligations of types other than the common
// scalars and []string are encoded with encoding/json. FuzzAppendEvent holds
// the two encoders together.
func appendEvent(buf []byte, ev *Event) ([]byte, error) {
	var err error
	buf = append(buf, `{"type":`...)
	buf = appendJSONString(buf, ev.Type)
	if ev.RequestID != "" {
		buf = append(buf, `,"request_id":`...)
		buf = appendJSONString(buf, ev.RequestID)
	}
	if ev.Action != "" {
		buf = append(buf, `,"action":`...)
		buf = appendJSONString(buf, ev.Action)
	}
	if p := ev.Principal; p != nil {
		buf = append(buf, `,"principal":{"spiffe_id":`...)
		buf = appendJSONString(buf, p.SPIFFEID)
		buf = append(buf, `,"trust_domain":`...)
		buf = appendJSONString(buf, p.TrustDomain)
		buf = append(buf, `,"kind":`...)
		buf = appendJSONString(buf, p.Kind)
		buf = append(buf, `,"tenant":`...)
		buf = appendJSONString(buf, p.Tenant)
		buf = append(buf, `,"name":`...)
		buf = appendJSONString(buf, p.Name)
		buf = append(buf, '}')
	}
	if r := ev.Request; r != nil {
		buf = appendRequest(buf, r)
	}
	if d := ev.Decision; d != nil {
		buf = append(buf, `,"decision":{"allow":`...)
		buf = strconv.AppendBool(buf, d.Allow)
		buf = append(buf, `,"reasons":`...)
		buf = appendStrings(buf, d.Reasons)
		buf = append(buf, `,"revision":`...)
		buf = appendJSONString(buf, d.Revision)
		buf = append(buf, `,"cache_hit":`...)
		buf = strconv.AppendBool(buf, d.CacheHit)
		if len(d.Obligations) > 0 {
			buf = append(buf, `,"obligations":`...)
			if buf, err = appendMap(buf, d.Obligations); err != nil {
				return buf, err
			}
		}
		buf = append(buf, '}')
	}
	if ev.Status != 0 {
		buf = append(buf, `,"status":`...)
		buf = strconv.AppendInt(buf, int64(ev.Status), 10)
	}
	if u := ev.Usage; u != nil {
		buf = append(buf, `,"usage":{"prompt_tokens":`...)
		buf = strconv.AppendInt(buf, int64(u.PromptTokens), 10)
		buf = append(buf, `,"completion_tokens":`...)
		buf = strconv.AppendInt(buf, int64(u.CompletionTokens), 10)
		buf = append(buf, `,"total_tokens":`...)
		buf = strconv.AppendInt(buf, int64(u.TotalTokens), 10)
		buf = append(buf, '}')
	}
	if len(ev.ToolCalls) > 0 {
		buf = append(buf, `,"tool_calls":[`...)
		for i := range ev.ToolCalls {
			tc := &ev.ToolCalls[i]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"id":`...)
			buf = appendJSONString(buf, tc.ID)
			buf = append(buf, `,"name":`...)
			buf = appendJSONString(buf, tc.Name)
			buf = append(buf, `,"arguments_digest":`...)
			buf = appendJSONString(buf, tc.ArgumentsDigest)
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	if ev.LatencyMS != 0 {
		buf = append(buf, `,"latency_ms":`...)
		if buf, err = appendJSONFloat(buf, ev.LatencyMS); err != nil {
			return buf, err
		}
	}
	if ev.Error != "" {
		buf = append(buf, `,"error":`...)
		buf = appendJSONString(buf, ev.Error)
	}
	if len(ev.Detail) > 0 {
		buf = append(buf, `,"detail":`...)
		if buf, err = appendMap(buf, ev.Detail); err != nil {
			return buf, err
		}
	}
	return append(buf, '}'), nil
}

func appendRequest(buf []byte, r *Request) []byte {
	buf = append(buf, `,"request":{"api":`...)
	buf = appendJSONString(buf, r.API)
	buf = append(buf, `,"model":`...)
	buf = appendJSONString(buf, r.Model)
	buf = append(buf, `,"provider":`...)
	buf = appendJSONString(buf, r.Provider)
	if r.UpstreamModel != "" {
		buf = append(buf, `,"upstream_model":`...)
		buf = appendJSONString(buf, r.UpstreamModel)
	}
	buf = append(buf, `,"stream":`...)
	buf = strconv.AppendBool(buf, r.Stream)
	if r.MaxTokens != 0 {
		buf = append(buf, `,"max_tokens":`...)
		buf = strconv.AppendInt(buf, int64(r.MaxTokens), 10)
	}
	if p := r.Prompt; p != nil {
		buf = append(buf, `,"prompt":{"bytes":`...)
		buf = strconv.AppendInt(buf, int64(p.Bytes), 10)
		buf = append(buf, `,"messages":`...)
		buf = strconv.AppendInt(buf, int64(p.Messages), 10)
		buf = append(buf, `,"digest":`...)
		buf = appendJSONString(buf, p.Digest)
		buf = append(buf, '}')
	}
	if len(r.Tools) > 0 {
		buf = append(buf, `,"tools":`...)
		buf = appendStrings(buf, r.Tools)
	}
	return append(buf, '}')
}

// appendStrings appends a []string as encoding/json does: null when nil.
func appendStrings(buf []byte, ss []string) []byte {
	if ss == nil {
		return append(buf, "null"...)
	}
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, s)
	}
	return append(buf, ']')
}

// keysPool holds the key slices appendMap sorts.
var keysPool = sync.Pool{New: func() any { s := make([]string, 0, 16); return &s }}

// appendMap appends a non-nil map with its keys sorted, as encoding/json does.
func appendMap(buf []byte, m map[string]any) ([]byte, error) {
	kp := keysPool.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		if buf, err = appendAny(buf, m[k]); err != nil {
			break
		}
	}
	clear(keys)
	*kp = keys[:0]
	keysPool.Put(kp)
	return append(buf, '}'), err
}

// JSONAppender is a Detail value that encodes itself: AppendJSON appends
// exactly the bytes json.Marshal would give the value (compact, HTML
// escaped), without reflection. The proxy's per-request values implement
// it; a test beside each holds it to json.Marshal.
type JSONAppender interface {
	AppendJSON(buf []byte) ([]byte, error)
}

// appendAny appends the common value types directly and hands anything else
// to encoding/json, whose output for a value nested in a map is exactly its
// output for the value alone.
func appendAny(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendJSONString(buf, v), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case uint64:
		return strconv.AppendUint(buf, v, 10), nil
	case float64:
		return appendJSONFloat(buf, v)
	case []string:
		return appendStrings(buf, v), nil
	case JSONAppender:
		return v.AppendJSON(buf)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}

// appendJSONFloat formats a float64 as encoding/json does (ES6 number to
// string: %f, or %e with an unpadded exponent outside [1e-6, 1e21)).
func appendJSONFloat(buf []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return buf, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' {
		if n := len(buf); n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf, nil
}

// appendJSONString appends s as json.Marshal writes it (HTML escaping on).
func appendJSONString(buf []byte, s string) []byte { return jsonstr.Append(buf, s, true) }

// errNewlineInJSON would mean a bug in appendEvent or in a value's
// MarshalJSON surviving encoding/json's compaction.
var errNewlineInJSON = errors.New("audit: marshal event: newline in JSON")
