package spire

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
)

// OwnedPrefix starts the SPIRE entry ID of every entry that Apply creates.
// Apply only ever updates or deletes entries whose ID has this prefix, so
// entries made by hand or by other tools on the same server are left alone.
const OwnedPrefix = "portcullis-"

// File is a parsed entries file: the workload entries that should exist in
// one trust domain's SPIRE server.
type File struct {
	// Name is the name the file was parsed under, for messages.
	Name        string
	TrustDomain spiffeid.TrustDomain
	Entries     []Entry
}

// Entry is one workload registration entry.
//
// An entry is identified by its SPIFFE ID and parent ID: a file holds at most
// one entry for each pair, and every other field can change in place.
type Entry struct {
	SPIFFEID spiffeid.ID
	// ParentID is the node the workload runs on: with join-token attestation,
	// the -spiffeID given to `spire-server token generate`.
	ParentID spiffeid.ID
	// Selectors are matched against what the agent's workload attestors
	// report; a workload gets the SVID when it has all of them. Values have
	// their ${NAME} variables expanded.
	Selectors []Selector
	// X509SVIDTTL and JWTSVIDTTL are whole seconds; zero means the server's
	// default.
	X509SVIDTTL   time.Duration
	JWTSVIDTTL    time.Duration
	DNSNames      []string
	FederatesWith []spiffeid.TrustDomain
	// Hint tells a workload that receives several SVIDs which is which.
	Hint string
	// Principal is the Portcullis kind and tenant the gateway should map this
	// SPIFFE ID to, or nil when the file does not say.
	Principal *Principal
	// Line is where the entry starts in the file.
	Line int
}

// Selector is one workload selector such as unix:uid:1000: a type and a
// value, which may itself contain colons.
type Selector struct {
	Type  string
	Value string
}

// String returns the selector as type:value.
func (s Selector) String() string { return s.Type + ":" + s.Value }

// Principal is how Portcullis should see the workload of an entry.
type Principal struct {
	Kind   identity.Kind
	Tenant string
}

// EntryID returns the SPIRE entry ID that Apply gives e: [OwnedPrefix] and a
// digest of the parent and SPIFFE IDs. It is stable, so a second Apply finds
// the entry the first one made, and two concurrent runs cannot both create it.
func (e *Entry) EntryID() string {
	sum := sha256.Sum256([]byte(e.ParentID.String() + "\n" + e.SPIFFEID.String()))
	return OwnedPrefix + hex.EncodeToString(sum[:12])
}

// Owned reports whether the SPIRE entry with the given ID is one that Apply
// manages.
func Owned(entryID string) bool { return strings.HasPrefix(entryID, OwnedPrefix) }

// Templates returns one exact-ID principal template for each entry that names
// its Portcullis kind and tenant, in file order, for the gateway's
// configuration ([identity.NewResolver]).
func (f *File) Templates() []identity.Template {
	var out []identity.Template
	for _, e := range f.Entries {
		if e.Principal == nil {
			continue
		}
		out = append(out, identity.Template{
			Pattern: e.SPIFFEID.String(),
			Kind:    e.Principal.Kind,
			Tenant:  e.Principal.Tenant,
		})
	}
	return out
}
