// Package store keeps the gateway's shared state about task grants: which
// grants exist and descend from which, which grants and tasks are revoked,
// and how many tokens each grant and task has used.
//
// [Store] is the interface the gateway uses, and [Approvals] the one for
// human approvals. [Bolt] implements both on an embedded bbolt file for a
// single node, durable across restarts; [Etcd] implements them on an etcd
// cluster shared by replicas (transactional revocations pushed to every
// replica's in-memory view by a watch, compare-and-swap budgets, single-use
// approvals). Every method takes a context, and a backend that cannot answer
// — or an etcd view that could not be confirmed fresh within its
// StaleAfter — returns an error wrapping [ErrUnavailable], on which the
// gateway fails closed.
//
//	st, err := store.OpenBolt(filepath.Join(dataDir, "state.db"), store.BoltOptions{})
//	defer st.Close()
//	err = st.PutGrant(ctx, store.GrantRecord{ID: g.ID, Parent: g.Parent, Task: key, Subject: g.Subject, Expiry: exp})
//	revoked, err := st.IsRevoked(ctx, g.ID, key) // in-memory view; no disk read
//	ids, err := st.RevokeGrant(ctx, g.ID, "leaked")  // and every grant delegated from it
//	err = st.Reserve(ctx, []store.Budget{{Key: "grant/" + g.ID, Limit: 5000}}, 300) // *BudgetError if over
//	err = st.Settle(ctx, keys, actual-300)
//
// Task keys are chosen by the caller; the gateway uses "<tenant>/<task>" so
// that tenants cannot revoke each other's tasks.
package store
