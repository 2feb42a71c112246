package fakeprovider_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

const stream50 = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"[fake:chunks=50]"}]}`

// TestConcurrentStreams runs parallel streams and checks each is whole and
// has its own id.
func TestConcurrentStreams(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	const n = 16
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(stream50))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body := string(b)
			if got := strings.Count(body, "data: "); got != 54 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Errorf("%d events, want 54 ending in [DONE]", got)
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(body, `data: {"id":"`), `"`)
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %s used twice", id)
		}
		seen[id] = true
	}
	if s.RequestCount() != n {
		t.Errorf("RequestCount = %d, want %d", s.RequestCount(), n)
	}
}

// BenchmarkStream50 measures one 50-chunk stream with usage over loopback.
func BenchmarkStream50(b *testing.B) {
	s := start(b, fakeprovider.Options{RecordLimit: -1})
	client := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(stream50))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
