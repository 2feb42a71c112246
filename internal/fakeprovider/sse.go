package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// sse writes a text/event-stream answer, flushing every event at once.
type sse struct {
	x  *exchange
	rc *http.ResponseController
}

// startSSE sends the 200 status and the event-stream headers (with the
// Content-Type a [fake:content_type] directive asks for, if any).
func (x *exchange) startSSE(sc scenario) *sse {
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	sc.labelAnswer(h)
	h.Set("Cache-Control", "no-cache")
	x.w.WriteHeader(http.StatusOK)
	e := &sse{x: x, rc: http.NewResponseController(x.w)}
	_ = e.rc.Flush()
	return e
}

// send writes one event ("event: NAME" when name is set, then "data: JSON")
// and flushes it. It returns false, having counted the cancellation, when
// the client has gone away.
func (e *sse) send(name string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeprovider: encode event: %v", err))
	}
	return e.write(name, b)
}

// write writes one event whose data is b.
func (e *sse) write(name string, b []byte) bool {
	if e.x.ctx().Err() != nil {
		e.x.cancelled()
		return false
	}
	buf := make([]byte, 0, len(b)+len(name)+16)
	if name != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, name...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	if _, err := e.x.w.Write(buf); err != nil {
		e.x.cancelled()
		return false
	}
	if err := e.rc.Flush(); err != nil {
		e.x.cancelled()
		return false
	}
	return true
}

// pause waits before the next event; false when the client went away.
func (e *sse) pause(sc scenario) bool {
	if !e.x.sleep(sc.slow) {
		e.x.cancelled()
		return false
	}
	return true
}

// cut drops the connection without ending the stream: HTTP/1.1 loses the
// closing chunk, HTTP/2 gets RST_STREAM. A client must see an error.
func (e *sse) cut() {
	_ = e.rc.Flush()
	e.x.log.Debug("fakeprovider: cutting stream")
	panic(http.ErrAbortHandler)
}
