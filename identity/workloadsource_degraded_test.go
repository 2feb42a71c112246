package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
)

func TestWorkloadSourceReportsDegraded(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	api := spiffetest.NewWorkloadAPI(t)
	api.SetX509SVID(ca.SVID(t, "spiffe://example.org/portcullis"), ca.Bundle())
	logger, hook := test.NewNullLogger()
	src, err := identity.NewWorkloadSource(t.Context(), api.Addr(), 5*time.Second, identity.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Degraded() {
		t.Fatal("degraded while the Workload API is up")
	}

	api.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for !src.Degraded() {
		if time.Now().After(deadline) {
			t.Fatal("source never noticed the Workload API went away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := src.GetX509SVID(); err != nil {
		t.Fatalf("degraded source stopped serving its SVID: %v", err)
	}
	warned := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "degraded") {
			warned++
			if e.Data["svid_expires"] == "unknown" {
				t.Error("degraded warning does not say when the SVID expires")
			}
		}
	}
	if warned != 1 {
		t.Errorf("logged %d degraded warnings, want exactly one per outage", warned)
	}
}
