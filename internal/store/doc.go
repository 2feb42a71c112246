// Package store keeps the gateway's shared state: which grants exist and
// descend from which, which grants and tasks are revoked, how many tokens
// each grant and task has used, human approvals, rate-limit counters, and
// the set of grant verification keys.
//
// [Store] is the interface the gateway uses, [Approvals] the one for human
// approvals, [RateLimiter] the one for per-principal rate limits (GCRA) and
// [GrantKeySet] the one for grant keys. [Bolt] implements all four for a
// single node (an embedded bbolt file, durable across restarts; rate limits
// and keys in memory); [Etcd] implements them on an etcd cluster shared by
// replicas (transactional revocations and published keys pushed to every
// replica's in-memory view by a watch, compare-and-swap budgets and rate
// limits, single-use approvals). Records expire: see [DefaultRetention]
// for what goes when, and the conformance suite (conformance_test.go) for
// the behaviour both backends share. Every method takes a context, and a backend that cannot answer
// — or an etcd view that could not be confirmed fresh within its
// StaleAfter — returns an error wrapping [ErrUnavailable], on which the
// gateway fails closed.
//
//	st, err := store.OpenBolt(filepath.Join(dataDir, "state.db"), store.BoltOptions{})
//	defer st.Close()
//	err = st.PutGrant(ctx, store.GrantRecord{ID: g.ID, Parent: g.Parent, Task: key, Subject: g.Subject, Expiry: exp})
//	revoked, err := st.IsRevoked(ctx, g.ID, key) // in-memory view; no disk read
//	ids, err := st.RevokeGrant(ctx, g.ID, "leaked")  // and every grant delegated from it
//	err = st.Reserve(ctx, []store.Budget{
//		{Key: store.GrantBudget(g.ID), Limit: 5000, Expires: exp}, // kept until exp + Retention
//		{Key: store.TaskBudget(key)},                              // kept while a grant of the task can be used
//	}, 300) // *BudgetError if over
//	err = st.Settle(ctx, keys, actual-300)
//	ok, wait, err := st.AllowRate(ctx, spiffeID, store.Rate{PerSecond: 5, Burst: 10})
//
// Task keys are chosen by the caller; the gateway uses "<tenant>/<task>" so
// that tenants cannot revoke each other's tasks.
package store
