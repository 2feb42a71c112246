package spire

import (
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
)

// managedFields are the entry fields Apply sets. Everything an entries file
// does not say is set to its zero value, so an owned entry changed by hand
// (for example made admin) is put back.
var managedFields = &types.EntryMask{
	SpiffeId:      true,
	ParentId:      true,
	Selectors:     true,
	X509SvidTtl:   true,
	JwtSvidTtl:    true,
	DnsNames:      true,
	FederatesWith: true,
	Hint:          true,
	Admin:         true,
	Downstream:    true,
	StoreSvid:     true,
	ExpiresAt:     true,
}

// toProto returns the SPIRE entry for e, with its owned entry ID.
func toProto(e *Entry) *types.Entry {
	out := &types.Entry{
		Id:          e.EntryID(),
		SpiffeId:    &types.SPIFFEID{TrustDomain: e.SPIFFEID.TrustDomain().Name(), Path: e.SPIFFEID.Path()},
		ParentId:    &types.SPIFFEID{TrustDomain: e.ParentID.TrustDomain().Name(), Path: e.ParentID.Path()},
		X509SvidTtl: int32(e.X509SVIDTTL / time.Second),
		JwtSvidTtl:  int32(e.JWTSVIDTTL / time.Second),
		DnsNames:    slices.Clone(e.DNSNames),
		Hint:        e.Hint,
	}
	for _, s := range e.Selectors {
		out.Selectors = append(out.Selectors, &types.Selector{Type: s.Type, Value: s.Value})
	}
	for _, td := range e.FederatesWith {
		out.FederatesWith = append(out.FederatesWith, td.Name())
	}
	return out
}

// diff describes each managed field where have differs from want, as
// "field: old -> new".
func diff(have, want *types.Entry) []string {
	var out []string
	add := func(field, h, w string) {
		if h != w {
			out = append(out, fmt.Sprintf("%s: %s -> %s", field, h, w))
		}
	}
	add("spiffe_id", idString(have.SpiffeId), idString(want.SpiffeId))
	add("parent_id", idString(have.ParentId), idString(want.ParentId))
	add("selectors", joinOrNone(selectorStrings(have.Selectors)), joinOrNone(selectorStrings(want.Selectors)))
	add("x509_svid_ttl", ttlString(have.X509SvidTtl), ttlString(want.X509SvidTtl))
	add("jwt_svid_ttl", ttlString(have.JwtSvidTtl), ttlString(want.JwtSvidTtl))
	add("dns_names", joinOrNone(have.DnsNames), joinOrNone(want.DnsNames))
	add("federates_with", joinOrNone(sorted(have.FederatesWith)), joinOrNone(sorted(want.FederatesWith)))
	add("hint", fmt.Sprintf("%q", have.Hint), fmt.Sprintf("%q", want.Hint))
	add("admin", fmt.Sprint(have.Admin), fmt.Sprint(want.Admin))
	add("downstream", fmt.Sprint(have.Downstream), fmt.Sprint(want.Downstream))
	add("store_svid", fmt.Sprint(have.StoreSvid), fmt.Sprint(want.StoreSvid))
	add("expires_at", fmt.Sprint(have.ExpiresAt), fmt.Sprint(want.ExpiresAt))
	return out
}

func ttlString(secs int32) string {
	if secs == 0 {
		return "default"
	}
	return (time.Duration(secs) * time.Second).String()
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
