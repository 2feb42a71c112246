// Package jsonstr appends Go strings as JSON strings byte for byte as
// encoding/json writes them, without reflection or allocation. The audit
// log's record encoder and the gateway's request log line use it on every
// request, where json.Marshal's cost shows.
//
//	buf = jsonstr.Append(buf, s, true)  // as json.Marshal: < > & escaped
//	buf = jsonstr.Append(buf, s, false) // as an Encoder with SetEscapeHTML(false)
//
// Fuzz tests hold it to encoding/json.
package jsonstr
