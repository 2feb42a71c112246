package audit

import (
	"context"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchEvent is a decision record of about 600 bytes, like the proxy writes.
func benchEvent() *Event {
	return goldenEvents()[1]
}

func benchLog(b *testing.B, opts Options) *Log {
	b.Helper()
	l, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func report(b *testing.B, l *Log, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/record")
	if s := l.syncs.Load(); s > 0 {
		b.ReportMetric(float64(l.Size())/float64(s), "records/fsync")
		b.ReportMetric(float64(l.syncT.Load())/float64(s)/1e6, "ms/fsync")
		b.ReportMetric(100*float64(l.syncT.Load())/float64(b.Elapsed()), "%fsync")
	}
}

// asyncWriter marks the benchmark case of one goroutine using AppendAsync
// with up to asyncWindow records in flight.
const (
	asyncWriter = -1 << 20
	asyncWindow = 256
)

// BenchmarkAppend measures durable appends (write + fsync before Append
// returns) with one writer and with 64 concurrent writers sharing fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		writers int // per GOMAXPROCS; 0 = one goroutine; -n: one goroutine appending batches of n
		noSync  bool
		linger  time.Duration
	}{
		{"writers=1/fsync", 0, false, 0},
		{"writers=1/batch=64/fsync", -64, false, 0},
		{"writers=1/async/fsync", asyncWriter, false, 0},
		{"writers=64/fsync", 64, false, 0},
		{"writers=64/fsync/nolinger", 64, false, -1},
		{"writers=64/nosync", 64, true, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLog(b, Options{NoSync: bc.noSync, MaxLinger: bc.linger})
			ev := benchEvent()
			ctx := context.Background()
			cpu0 := cpuTime()
			if n := -bc.writers; n > 0 && bc.writers != asyncWriter {
				evs := make([]*Event, n)
				for i := range evs {
					evs[i] = ev
				}
				for b.Loop() {
					if _, err := l.AppendBatch(ctx, evs); err != nil {
						b.Fatal(err)
					}
				}
				// Each op is a batch: report per record.
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N*n), "cpu-µs/record")
				b.ReportMetric(float64(l.Size())/float64(max(l.syncs.Load(), 1)), "records/fsync")
				return
			}
			if bc.writers == asyncWriter {
				// One goroutine keeps up to asyncWindow records in flight,
				// waiting for the oldest when the window is full.
				window := make([]*Pending, 0, asyncWindow)
				for b.Loop() {
					if len(window) == asyncWindow {
						if _, err := window[0].Wait(ctx); err != nil {
							b.Fatal(err)
						}
						window = append(window[:0], window[1:]...)
					}
					p, err := l.AppendAsync(ev)
					if err != nil {
						b.Fatal(err)
					}
					window = append(window, p)
				}
				for _, p := range window {
					if _, err := p.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
				report(b, l, cpu0)
				return
			}
			if bc.writers == 0 {
				for b.Loop() {
					if _, err := l.Append(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
				report(b, l, cpu0)
				return
			}
			b.SetParallelism(max(1, bc.writers/runtimeProcs()))
			b.ResetTimer()
			cpu0 = cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, l, cpu0)
		})
	}
}

// benchDir is a closed log of benchRecords decision records, built once per
// test binary run and shared by the read benchmarks.
var (
	benchDirOnce sync.Once
	benchDirPath string
	benchDirErr  error
)

const benchRecords = 20000

func benchDir(b *testing.B) string {
	benchDirOnce.Do(func() {
		dir, err := os.MkdirTemp("", "audit-bench-")
		if err != nil {
			benchDirErr = err
			return
		}
		benchDirPath = dir
		l, err := Open(dir, Options{NoSync: true})
		if err != nil {
			benchDirErr = err
			return
		}
		var wg sync.WaitGroup
		ev := benchEvent()
		for range 64 {
			wg.Go(func() {
				for range benchRecords / 64 {
					if _, err := l.Append(context.Background(), ev); err != nil {
						benchDirErr = err
					}
				}
			})
		}
		wg.Wait()
		if err := l.Close(); err != nil && benchDirErr == nil {
			benchDirErr = err
		}
	})
	if benchDirErr != nil {
		b.Fatal(benchDirErr)
	}
	return benchDirPath
}

// cpuTime is the process's user+system CPU time. The benchmarks report CPU
// time per record beside wall-clock rates: on a shared, loaded machine the
// wall clock mostly measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerify measures offline verification of a 20,000-record log
// (records of about 700 bytes, every stored hash compared).
func BenchmarkVerify(b *testing.B) {
	dir := benchDir(b)
	var n uint64
	cpu0 := cpuTime()
	for b.Loop() {
		rep, err := Verify(dir)
		if err != nil {
			b.Fatal(err)
		}
		n += rep.Records
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(n), "cpu-µs/record")
	// CPU seconds per wall second: how many cores Verify kept busy. On a
	// shared machine it says whether the neighbours left any to use.
	b.ReportMetric(float64(cpu)/float64(b.Elapsed()), "cores")
}

// BenchmarkProve measures inclusion-proof generation from a Reader: index
// lookup, record read and stored-hash reads, for records spread over the log.
func BenchmarkProve(b *testing.B) {
	r, err := OpenReader(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	size := r.Size()
	seq := uint64(0)
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := r.Prove(seq, size); err != nil {
			b.Fatal(err)
		}
		seq = (seq + 7919) % size
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDirPath != "" {
		os.RemoveAll(benchDirPath)
	}
	os.Exit(code)
}
