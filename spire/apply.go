package spire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	bundlev1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/bundle/v1"
	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Options change what Apply does.
type Options struct {
	// Prune deletes the entries Apply owns that the file no longer names.
	// Without it they are kept and reported as stale.
	Prune bool
	// DryRun works out and reports the changes without making them.
	DryRun bool
}

// Apply makes the entries of the SPIRE server behind conn (its admin API, as
// from [Dial]) match f: it creates the entries that are missing, updates
// those whose fields differ and, with opts.Prune, deletes the entries it owns
// (see [OwnedPrefix]) that f no longer names. Entries it does not own are
// never changed. Running it twice in a row changes nothing the second time.
//
// It refuses a file for another trust domain than the server's, and an entry
// that would clash with an entry it does not own. When some changes fail,
// the Result holds those that were made and the error names the others.
func Apply(ctx context.Context, conn grpc.ClientConnInterface, f *File, opts Options) (*Result, error) {
	bundle, err := bundlev1.NewBundleClient(conn).GetBundle(ctx, &bundlev1.GetBundleRequest{
		OutputMask: &types.BundleMask{},
	})
	if err != nil {
		return nil, fmt.Errorf("spire: asking the server for its trust domain: %w", err)
	}
	if bundle.TrustDomain != f.TrustDomain.Name() {
		return nil, fmt.Errorf("spire: %s is for trust domain %q, but the server is %q",
			f.Name, f.TrustDomain.Name(), bundle.TrustDomain)
	}
	client := entryv1.NewEntryClient(conn)
	existing, err := listEntries(ctx, client)
	if err != nil {
		return nil, err
	}
	plan, err := makePlan(f, existing, opts)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		plan.result.Changes = append(append(append(plan.result.Changes,
			plan.deletes...), plan.updates...), plan.creates...)
		return &plan.result, nil
	}
	// Deletes first, then updates, then creates: an entry whose selectors
	// moved to a new SPIFFE ID must not clash with its own old copy.
	res := &plan.result
	var errs []error
	errs = append(errs, doDeletes(ctx, client, plan.deletes, res)...)
	errs = append(errs, doUpdates(ctx, client, plan.updates, plan.want, res)...)
	errs = append(errs, doCreates(ctx, client, plan.creates, plan.want, res)...)
	return res, errors.Join(errs...)
}

func listEntries(ctx context.Context, client entryv1.EntryClient) ([]*types.Entry, error) {
	var out []*types.Entry
	token := ""
	for {
		resp, err := client.ListEntries(ctx, &entryv1.ListEntriesRequest{PageSize: 500, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("spire: listing entries: %w", err)
		}
		out = append(out, resp.Entries...)
		token = resp.NextPageToken
		if token == "" {
			return out, nil
		}
	}
}

type plan struct {
	result                    Result
	creates, updates, deletes []Change
	want                      map[string]*types.Entry // by entry ID
}

func makePlan(f *File, existing []*types.Entry, opts Options) (*plan, error) {
	p := &plan{
		result: Result{File: f.Name, TrustDomain: f.TrustDomain.Name(), DryRun: opts.DryRun},
		want:   make(map[string]*types.Entry, len(f.Entries)),
	}
	byID := make(map[string]*types.Entry, len(existing))
	for _, e := range existing {
		byID[e.Id] = e
	}
	var errs []error
	for i := range f.Entries {
		e := &f.Entries[i]
		want := toProto(e)
		p.want[want.Id] = want
		c := Change{EntryID: want.Id, SPIFFEID: e.SPIFFEID.String(), Line: e.Line}
		have, ok := byID[want.Id]
		if !ok {
			if other := clash(existing, want); other != nil {
				errs = append(errs, fmt.Errorf("spire: %s:%d: %s: SPIRE already has entry %s with the same "+
					"SPIFFE ID, parent and selectors, not made by portcullis; delete it or change this entry",
					f.Name, e.Line, c.SPIFFEID, other.Id))
				continue
			}
			c.Action = Create
			p.creates = append(p.creates, c)
			continue
		}
		if c.Fields = diff(have, want); len(c.Fields) == 0 {
			p.result.Unchanged++
			continue
		}
		c.Action = Update
		p.updates = append(p.updates, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, e := range existing {
		if !Owned(e.Id) || p.want[e.Id] != nil {
			continue
		}
		c := Change{Action: Stale, EntryID: e.Id, SPIFFEID: idString(e.SpiffeId)}
		if opts.Prune {
			c.Action = Delete
			p.deletes = append(p.deletes, c)
		} else {
			p.result.Changes = append(p.result.Changes, c)
		}
	}
	return p, nil
}

// clash returns an entry not owned by Apply that SPIRE would consider the
// same as want (same SPIFFE ID, parent and selectors), or nil.
func clash(existing []*types.Entry, want *types.Entry) *types.Entry {
	for _, e := range existing {
		if !Owned(e.Id) && idString(e.SpiffeId) == idString(want.SpiffeId) &&
			idString(e.ParentId) == idString(want.ParentId) &&
			slices.Equal(selectorStrings(e.Selectors), selectorStrings(want.Selectors)) {
			return e
		}
	}
	return nil
}

func doDeletes(ctx context.Context, client entryv1.EntryClient, changes []Change, res *Result) []error {
	if len(changes) == 0 {
		return nil
	}
	ids := make([]string, len(changes))
	for i, c := range changes {
		ids[i] = c.EntryID
	}
	resp, err := client.BatchDeleteEntry(ctx, &entryv1.BatchDeleteEntryRequest{Ids: ids})
	if err != nil {
		return []error{fmt.Errorf("spire: deleting entries: %w", err)}
	}
	var errs []error
	for i, r := range resp.Results {
		if err := statusErr(r.Status); err != nil {
			errs = append(errs, fmt.Errorf("spire: deleting %s (%s): %w", changes[i].SPIFFEID, changes[i].EntryID, err))
			continue
		}
		res.Changes = append(res.Changes, changes[i])
	}
	return errs
}

func doUpdates(ctx context.Context, client entryv1.EntryClient, changes []Change, want map[string]*types.Entry, res *Result) []error {
	if len(changes) == 0 {
		return nil
	}
	entries := make([]*types.Entry, len(changes))
	for i, c := range changes {
		entries[i] = want[c.EntryID]
	}
	resp, err := client.BatchUpdateEntry(ctx, &entryv1.BatchUpdateEntryRequest{
		Entries:    entries,
		InputMask:  managedFields,
		OutputMask: &types.EntryMask{},
	})
	if err != nil {
		return []error{fmt.Errorf("spire: updating entries: %w", err)}
	}
	var errs []error
	for i, r := range resp.Results {
		if err := statusErr(r.Status); err != nil {
			errs = append(errs, fmt.Errorf("spire: %s:%d: updating %s: %w", res.File, changes[i].Line, changes[i].SPIFFEID, err))
			continue
		}
		res.Changes = append(res.Changes, changes[i])
	}
	return errs
}

func doCreates(ctx context.Context, client entryv1.EntryClient, changes []Change, want map[string]*types.Entry, res *Result) []error {
	if len(changes) == 0 {
		return nil
	}
	entries := make([]*types.Entry, len(changes))
	for i, c := range changes {
		entries[i] = want[c.EntryID]
	}
	resp, err := client.BatchCreateEntry(ctx, &entryv1.BatchCreateEntryRequest{
		Entries:    entries,
		OutputMask: &types.EntryMask{},
	})
	if err != nil {
		return []error{fmt.Errorf("spire: creating entries: %w", err)}
	}
	var errs []error
	for i, r := range resp.Results {
		if err := statusErr(r.Status); err != nil {
			if codes.Code(r.Status.GetCode()) == codes.AlreadyExists && r.Entry != nil {
				err = fmt.Errorf("%w (clashes with entry %s)", err, r.Entry.Id)
			}
			errs = append(errs, fmt.Errorf("spire: %s:%d: creating %s: %w", res.File, changes[i].Line, changes[i].SPIFFEID, err))
			continue
		}
		res.Changes = append(res.Changes, changes[i])
	}
	return errs
}

// StatusError is a per-entry failure reported by SPIRE's batch APIs.
type StatusError struct {
	Code    codes.Code
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("SPIRE said %s: %s", e.Code, e.Message) }

func statusErr(s *types.Status) error {
	if s == nil {
		return &StatusError{Code: codes.Unknown, Message: "no status in the response"}
	}
	if codes.Code(s.Code) == codes.OK {
		return nil
	}
	return &StatusError{Code: codes.Code(s.Code), Message: s.Message}
}

func idString(id *types.SPIFFEID) string {
	if id == nil {
		return ""
	}
	return "spiffe://" + id.TrustDomain + id.Path
}

// selectorStrings returns the selectors as sorted type:value strings.
func selectorStrings(sels []*types.Selector) []string {
	out := make([]string, len(sels))
	for i, s := range sels {
		out[i] = s.Type + ":" + s.Value
	}
	slices.Sort(out)
	return out
}

func joinOrNone(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	return "[" + strings.Join(ss, " ") + "]"
}
