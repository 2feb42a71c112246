package policy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// copyBundle copies fsys into a fresh temporary directory.
func copyBundle(t testing.TB, fsys fs.FS) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, fsys); err != nil {
		t.Fatal(err)
	}
	// os.CopyFS keeps the embedded files' read-only modes.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
		}
		return err
	})
	return dir
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type reloadEvent struct {
	old, new string
	err      error
}

func TestReloadKeepsLastGood(t *testing.T) {
	dir := copyBundle(t, DefaultBundle())
	var (
		mu     sync.Mutex
		events []reloadEvent
	)
	e := newEngine(t, Options{BundleDir: dir, OnReload: func(o, n string, err error) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, reloadEvent{o, n, err})
	}})
	ctx := context.Background()
	good := e.Revision()
	in := llm("human", "globex", "gpt-4o")
	if d, _ := e.Decide(ctx, in); d.Allow {
		t.Fatal("globex gpt-4o allowed by the default bundle")
	}

	// A broken module: Reload fails, the last good bundle keeps deciding.
	writeFile(t, dir, "broken.rego", "package portcullis\n\ndecision := {\n")
	if err := e.Reload(ctx); err == nil {
		t.Fatal("Reload of a broken bundle returned no error")
	}
	if got := e.Revision(); got != good {
		t.Errorf("revision after failed reload: got %s, want %s", got, good)
	}
	if d, err := e.Decide(ctx, llm("human", "acme", "gpt-4o")); err != nil || !d.Allow {
		t.Errorf("after failed reload: got allow=%v err=%v, want the old bundle's allow", d.Allow, err)
	}

	// Fixed, with globex now allowing gpt-4o: Reload swaps and purges.
	os.Remove(filepath.Join(dir, "broken.rego"))
	writeFile(t, dir, "data.json", `{
		"actions": ["llm.invoke"],
		"limits": {"agent": {"max_tokens": 1024}},
		"models": {"gpt-4o": {"kinds": ["human"]}},
		"tenants": {"globex": {"models": ["gpt-4o"], "agent_models": []}}
	}`)
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Revision(); got == good {
		t.Error("revision unchanged after a successful reload of changed content")
	}
	if d, err := e.Decide(ctx, in); err != nil || !d.Allow || d.Revision != e.Revision() {
		t.Errorf("after reload: got allow=%v revision=%s err=%v, want allow by %s", d.Allow, d.Revision, err, e.Revision())
	}

	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0].err == nil || events[0].old != good || events[0].new != good ||
		events[1].err != nil || events[1].old != good || events[1].new != e.Revision() {
		t.Errorf("got OnReload events %+v, want a failure keeping %s then a success", events, good)
	}
}

func TestReloadEmbeddedIsNoop(t *testing.T) {
	e := newEngine(t, Options{})
	rev := e.Revision()
	if err := e.Reload(context.Background()); err != nil || e.Revision() != rev {
		t.Errorf("got err=%v revision %s, want nil and %s", err, e.Revision(), rev)
	}
}

func TestWatchPicksUpChange(t *testing.T) {
	dir := copyBundle(t, DefaultBundle())
	reloaded := make(chan reloadEvent, 10)
	e := newEngine(t, Options{BundleDir: dir, OnReload: func(o, n string, err error) {
		reloaded <- reloadEvent{o, n, err}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	next := func() reloadEvent {
		t.Helper()
		select {
		case ev := <-reloaded:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not reload within 5s")
			return reloadEvent{}
		}
	}

	// A broken change is tried once, reported, and not retried.
	writeFile(t, dir, "broken.rego", "package portcullis\n\ndecision := {\n")
	if ev := next(); ev.err == nil {
		t.Fatal("broken bundle reloaded without error")
	}
	select {
	case ev := <-reloaded:
		t.Fatalf("unchanged broken bundle retried: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}

	old := e.Revision()
	os.Remove(filepath.Join(dir, "broken.rego"))
	writeFile(t, dir, "extra.rego", "package portcullis.extra\n\nx := 1\n")
	ev := next()
	if ev.err != nil || ev.old != old || ev.new == old || e.Revision() != ev.new {
		t.Errorf("got %+v (now %s), want a successful reload from %s", ev, e.Revision(), old)
	}
}

func TestWatchReturnsOnCancel(t *testing.T) {
	for _, opts := range []Options{{}, {BundleDir: copyBundle(t, DefaultBundle())}} {
		e := newEngine(t, opts)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Watch(ctx, time.Millisecond); close(done) }()
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Watch(%q) did not return after cancel", opts.BundleDir)
		}
	}
}

func TestReloadConcurrentWithDecide(t *testing.T) {
	dir := copyBundle(t, DefaultBundle())
	// A generous timeout: this is about swaps under load, not latency, and
	// -race on a shared machine is slow.
	e := newEngine(t, Options{BundleDir: dir, Timeout: 10 * time.Second})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d, err := e.Decide(ctx, llm("human", "acme", "gpt-4o")); err != nil || !d.Allow {
					t.Errorf("Decide during reload: allow=%v err=%v", d.Allow, err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		writeFile(t, dir, "extra.rego", "package portcullis.extra\n\nx := "+string(rune('0'+i))+"\n")
		if err := e.Reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}
