package proxy

import (
	"bytes"
	"fmt"
)

// A chat completion relayed as the provider sent it is read twice over in
// meaning: for its duplicate keys (uniqueKeys) and for its usage and tool
// calls (scanChatCompletion). scanCheckedChatCompletion does both in one
// pass over the bytes. It walks the answer as scanChatCompletion does and
// checks the keys of every object on the way as uniqueKeys does: the
// objects it reads field by field compare their (plain ASCII) keys in
// place, and every value it skips goes through keyCheck with its depth in
// the document, so nesting is bounded exactly where uniqueKeys bounds it.
// Whatever either of the two would leave to a slower path (escaped or
// non-ASCII keys in an object it reads field by field, a field name in
// another case, an object read field by field with more than
// maxLinearKeys keys, bad JSON) ends the pass unsure, and the caller runs
// the two checks one after the other, as before.

// readCheckedChatCompletion is uniqueKeys followed, when the keys are
// unique, by readChatCompletion: the same results and the same errors,
// from one pass over b in the common case.
func readCheckedChatCompletion(b []byte) (*Usage, []*toolCallAcc, error) {
	u, calls, dup, ok := scanCheckedChatCompletion(b)
	switch {
	case ok && dup != nil:
		return nil, nil, ambiguousKeysError(dup)
	case ok:
		return u, calls, nil
	}
	if err := uniqueKeys(b); err != nil {
		return nil, nil, err
	}
	return readChatCompletion(b)
}

func ambiguousKeysError(key []byte) error {
	return fmt.Errorf("%w: %q", errAmbiguousKeys, key)
}

// scanCheckedChatCompletion reads usage and tool calls from a chat
// completion as scanChatCompletion does, and checks its keys as uniqueKeys
// does. ok false means unsure: neither result holds. Otherwise dup is the
// first key uniqueKeys reports as ambiguous (and usage and calls are
// unset), or nil when every object's keys are unique.
func scanCheckedChatCompletion(body []byte) (usage *Usage, calls []*toolCallAcc, dup []byte, ok bool) {
	a := answerScan{newKeyCheck(body)}
	defer a.release()
	s := &a.s
	if !s.expect('{') {
		return nil, nil, nil, false
	}
	var (
		seen uint32
		o    objectKeys
	)
	for key, more := a.member(&o); more; key, more = a.member(&o) {
		f := s.field(key, "choices", "usage")
		switch {
		case f < 0:
			a.skip(1)
		case !s.once(&seen, f), s.null():
		case f == 0:
			calls = a.choices(calls)
		case f == 1:
			usage = a.usage()
		}
	}
	if a.dup != nil {
		return nil, nil, a.dup, true
	}
	if !s.end() {
		return nil, nil, nil, false
	}
	return usage, calls, nil, true
}

// answerScan is a keyCheck that also reads the fields of a chat completion.
// Depths passed to skip are those uniqueKeys gives the skipped value: the
// answer object is at depth 0, its members at 1, and so on down.
type answerScan struct {
	keyCheck
}

// objectKeys tracks one object that answerScan reads field by field.
type objectKeys struct {
	n     int // members read so far
	start int // where the object's keys begin in keyCheck.keys
}

// member is jscan.member that also checks each key against the object's
// earlier keys. A duplicate sets dup and ends the scan.
func (a *answerScan) member(o *objectKeys) ([]byte, bool) {
	s := &a.s
	if o.n == 0 {
		o.start = len(a.keys)
	}
	key, ok := s.member(&o.n)
	if !ok {
		a.keys = a.keys[:o.start]
		return nil, false
	}
	if o.n > maxLinearKeys {
		s.fail() // uniqueKeys would switch to a map; rare enough to leave to it
		return nil, false
	}
	// The key is plain ASCII (member bails otherwise), so it is its own
	// decoded form and bytes.EqualFold compares it as uniqueKeys does.
	for _, prev := range a.keys[o.start:] {
		if bytes.EqualFold(prev, key) {
			a.dup = key
			s.fail()
			return nil, false
		}
	}
	a.keys = append(a.keys, key)
	return key, true
}

// skip passes over a value at depth, checking the keys of the objects in it.
func (a *answerScan) skip(depth int) {
	a.value(depth)
	if a.dup != nil {
		a.s.fail()
	}
}

func (a *answerScan) choices(calls []*toolCallAcc) []*toolCallAcc {
	s := &a.s
	s.expect('[')
	n := 0
	for s.elem(&n) {
		if s.null() {
			continue
		}
		s.expect('{')
		var (
			seen uint32
			o    objectKeys
		)
		for key, ok := a.member(&o); ok; key, ok = a.member(&o) {
			f := s.field(key, "message")
			switch {
			case f < 0:
				a.skip(3)
			case !s.once(&seen, f), s.null():
			default:
				calls = a.message(calls)
			}
		}
	}
	return calls
}

func (a *answerScan) message(calls []*toolCallAcc) []*toolCallAcc {
	s := &a.s
	s.expect('{')
	var (
		seen uint32
		o    objectKeys
	)
	for key, ok := a.member(&o); ok; key, ok = a.member(&o) {
		f := s.field(key, "tool_calls")
		switch {
		case f < 0:
			a.skip(4)
		case !s.once(&seen, f), s.null():
		default:
			s.expect('[')
			n := 0
			for s.elem(&n) {
				calls = append(calls, a.toolCall())
			}
		}
	}
	return calls
}

func (a *answerScan) toolCall() *toolCallAcc {
	s := &a.s
	var id, name string
	var args []byte
	if !s.null() {
		s.expect('{')
		var (
			seen uint32
			o    objectKeys
		)
		for key, ok := a.member(&o); ok; key, ok = a.member(&o) {
			f := s.field(key, "id", "function")
			switch {
			case f < 0:
				a.skip(6)
			case !s.once(&seen, f), s.null():
			case f == 0:
				id = s.str()
			case f == 1:
				name, args = a.function()
			}
		}
	}
	acc := newToolCall(id, name)
	acc.args.Write(args)
	return acc
}

func (a *answerScan) function() (name string, args []byte) {
	s := &a.s
	s.expect('{')
	var (
		seen uint32
		o    objectKeys
	)
	for key, ok := a.member(&o); ok; key, ok = a.member(&o) {
		f := s.field(key, "name", "arguments")
		switch {
		case f < 0:
			a.skip(7)
		case !s.once(&seen, f), s.null():
		case f == 0:
			name = s.str()
		case f == 1:
			args = s.stringBytes()
		}
	}
	return name, args
}

func (a *answerScan) usage() *Usage {
	s := &a.s
	u := &Usage{}
	s.expect('{')
	var (
		seen uint32
		o    objectKeys
	)
	for key, ok := a.member(&o); ok; key, ok = a.member(&o) {
		f := s.field(key, "prompt_tokens", "completion_tokens", "total_tokens")
		switch {
		case f < 0:
			a.skip(2)
		case !s.once(&seen, f), s.null():
		case f == 0:
			u.PromptTokens = s.integer()
		case f == 1:
			u.CompletionTokens = s.integer()
		case f == 2:
			u.TotalTokens = s.integer()
		}
	}
	return u
}
