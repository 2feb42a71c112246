package spire

import (
	"fmt"
	"io"
	"strings"
)

// Action is what Apply did, or in a dry run would do, to one entry.
type Action string

// The actions in a [Result].
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	// Stale is an owned entry that the file no longer names, kept because
	// Options.Prune was off.
	Stale Action = "stale"
)

// Change is one entry that Apply created, updated or deleted, or found stale.
type Change struct {
	Action   Action
	EntryID  string
	SPIFFEID string
	// Line is the entry's line in the file; 0 for deleted and stale entries.
	Line int
	// Fields describes what an update changed, one "field: old -> new" each.
	Fields []string
}

// Result is what Apply did.
type Result struct {
	File        string
	TrustDomain string
	DryRun      bool
	// Changes lists the entries changed (or to be changed, in a dry run) and
	// the stale ones, in the order deletes, updates, creates.
	Changes []Change
	// Unchanged counts the file's entries that already matched.
	Unchanged int
}

// Changed reports whether Apply changed anything (or would, in a dry run).
func (r *Result) Changed() bool {
	for _, c := range r.Changes {
		if c.Action != Stale {
			return true
		}
	}
	return false
}

// Count returns how many changes have action a.
func (r *Result) Count(a Action) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Report writes what Apply did for a person to read: one line per change,
// then a summary line, for example
//
//	create spiffe://example.org/tenant/acme/app/demo-app (entries.yaml:24, entry portcullis-…)
//	update spiffe://example.org/portcullis (entries.yaml:14, entry portcullis-…)
//	         x509_svid_ttl: 1h0m0s -> 1m0s
//	entries.yaml -> spiffe://example.org: 1 created, 1 updated, 0 deleted, 2 unchanged
//
// or, when nothing changed, "entries.yaml -> spiffe://example.org: no changes
// (3 entries up to date)".
func (r *Result) Report(w io.Writer) error {
	var b strings.Builder
	would := ""
	if r.DryRun {
		would = "would "
	}
	for _, c := range r.Changes {
		switch c.Action {
		case Stale:
			fmt.Fprintf(&b, "stale  %s (entry %s): not in %s; --prune deletes it\n", c.SPIFFEID, c.EntryID, r.File)
		case Delete:
			fmt.Fprintf(&b, "%s%s %s (entry %s): not in %s\n", would, c.Action, c.SPIFFEID, c.EntryID, r.File)
		default:
			fmt.Fprintf(&b, "%s%s %s (%s:%d, entry %s)\n", would, c.Action, c.SPIFFEID, r.File, c.Line, c.EntryID)
		}
		for _, f := range c.Fields {
			fmt.Fprintf(&b, "         %s\n", f)
		}
	}
	prefix := fmt.Sprintf("%s -> spiffe://%s: ", r.File, r.TrustDomain)
	if r.DryRun {
		prefix += "dry run, "
	}
	switch {
	case !r.Changed():
		fmt.Fprintf(&b, "%sno changes (%d %s up to date)\n", prefix, r.Unchanged, plural(r.Unchanged, "entry", "entries"))
	case r.DryRun:
		fmt.Fprintf(&b, "%swould create %d, update %d, delete %d; %d unchanged\n", prefix,
			r.Count(Create), r.Count(Update), r.Count(Delete), r.Unchanged)
	default:
		fmt.Fprintf(&b, "%s%d created, %d updated, %d deleted, %d unchanged\n", prefix,
			r.Count(Create), r.Count(Update), r.Count(Delete), r.Unchanged)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
