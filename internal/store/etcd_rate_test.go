package store

import (
	"context"
	"sort"
	"testing"
	"time"
)

// TestEtcdRateLimitCost measures what a shared rate limit adds to a request
// (docs/deployment.md): one allowed request is one transaction; a request
// refused on the remembered TAT makes none.
func TestEtcdRateLimitCost(t *testing.T) {
	ctx := context.Background()
	_, a, _ := replicas(t)
	const n = 200
	measure := func(key string, r Rate, wantOK bool) []time.Duration {
		var d []time.Duration
		for range n {
			start := time.Now()
			ok, _, err := a.AllowRate(ctx, key, r)
			d = append(d, time.Since(start))
			if err != nil || ok != wantOK {
				t.Fatalf("AllowRate = %v, %v; want %v", ok, err, wantOK)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d
	}
	allowed := measure("spiffe://td/app/a", Rate{PerSecond: 1e6, Burst: 1e6}, true)
	slow := Rate{PerSecond: 1e-3, Burst: 1}
	if ok, _, err := a.AllowRate(ctx, "spiffe://td/app/b", slow); !ok || err != nil {
		t.Fatalf("first call: %v, %v", ok, err)
	}
	refused := measure("spiffe://td/app/b", slow, false)
	t.Logf("AllowRate on etcd, %d sequential calls: allowed median %s p99 %s; refused median %s p99 %s",
		n, allowed[n/2], allowed[n*99/100], refused[n/2], refused[n*99/100])
}
