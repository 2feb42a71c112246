// Package etcdtest runs a real, single-member etcd server inside a test
// process, on loopback ports, for tests of the shared-state store and of
// gateway replicas that share it.
//
//	srv := etcdtest.Start(t)          // blocks until the member serves
//	st, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: srv.Endpoints()})
//	srv.Cut()                         // etcd unreachable: connections reset, new ones refused
//	srv.Restore(t)                    // reachable again at the same address
//
// The server is go.etcd.io/etcd/server/v3/embed, the same code as the etcd
// binary, with fsync turned off (test data need not survive a crash) and no
// log. Clients reach it through a loopback TCP relay, which is what Cut
// cuts: stopping an embedded member gracefully waits out its request
// timeout (several seconds) for open watch streams, while a cut is instant
// and looks to clients like a crash or a network failure. Everything started
// is stopped by t.Cleanup.
package etcdtest
