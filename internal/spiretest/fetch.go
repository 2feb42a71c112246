package spiretest

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WaitX509SVID fetches this process's X.509-SVID from the agent, waiting
// up to timeout for a new entry to reach it: until then the agent answers
// PermissionDenied ("no identity issued"). It fails the test on timeout or
// on any other error.
func (s *SPIRE) WaitX509SVID(t testing.TB, timeout time.Duration) *x509svid.SVID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		svid, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(s.WorkloadAddr()))
		if err == nil {
			return svid
		}
		if status.Code(err) != codes.PermissionDenied || ctx.Err() != nil {
			t.Fatalf("spiretest: no X.509-SVID for this process within %s: %v", timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
