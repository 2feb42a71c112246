package audit

import (
	"context"
	"runtime"
	"testing"
)

// benchEvent is a decision record of about 600 bytes, like the proxy writes.
func benchEvent() *Event {
	return goldenEvents()[1]
}

func benchLog(b *testing.B, noSync bool) *Log {
	b.Helper()
	l, err := Open(b.TempDir(), Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func report(b *testing.B, l *Log) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if s := l.syncs.Load(); s > 0 {
		b.ReportMetric(float64(l.Size())/float64(s), "records/fsync")
	}
}

// BenchmarkAppend measures durable appends (write + fsync before Append
// returns) with one writer and with 64 concurrent writers sharing fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		writers int // per GOMAXPROCS; 0 = one goroutine
		noSync  bool
	}{
		{"writers=1/fsync", 0, false},
		{"writers=64/fsync", 64, false},
		{"writers=64/nosync", 64, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLog(b, bc.noSync)
			ev := benchEvent()
			ctx := context.Background()
			if bc.writers == 0 {
				for b.Loop() {
					if _, err := l.Append(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
				report(b, l)
				return
			}
			b.SetParallelism(max(1, bc.writers/runtimeProcs()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, l)
		})
	}
}

// BenchmarkVerify measures offline verification of a 20,000-record log.
func BenchmarkVerify(b *testing.B) {
	l, err := Open(b.TempDir(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ev := benchEvent()
	const n = 20000
	for range n {
		if _, err := l.Append(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Verify(l.Dir()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
