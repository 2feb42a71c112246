package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// minRegoCoverage is the line coverage the default bundle's own tests must
// reach.
const minRegoCoverage = 90.0

// TestRego runs the default bundle's *_test.rego files with OPA's tester,
// as `opa test --coverage policy/bundle` would, and fails on any failing
// test or on coverage under minRegoCoverage.
func TestRego(t *testing.T) {
	b, err := loadBundle(DefaultBundle())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.tests) == 0 {
		t.Fatal("default bundle has no *_test.rego files")
	}
	modules := map[string]*ast.Module{}
	for name, m := range b.modules {
		modules[name] = m
	}
	for name, m := range b.tests {
		modules[name] = m
	}
	data, err := ast.InterfaceToValue(b.data)
	if err != nil {
		t.Fatal(err)
	}
	cov := cover.New()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := tester.NewRunner().
		SetStore(inmem.NewFromASTObject(data.(ast.Object))).
		SetCoverageQueryTracer(cov).
		SetCoverageRuns(nil).
		RaiseBuiltinErrors(true).
		SetTimeout(20*time.Second).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for r := range ch {
		switch {
		case r.Error != nil:
			t.Errorf("%s.%s: error: %v", r.Package, r.Name, r.Error)
		case r.Fail:
			t.Errorf("%s.%s: FAIL", r.Package, r.Name)
		case r.Skip:
			t.Logf("%s.%s: skipped", r.Package, r.Name)
		default:
			passed++
		}
	}
	if passed == 0 {
		t.Fatal("no Rego test passed")
	}
	// Coverage over the policy modules only, not the tests themselves.
	report := cov.Report(modules)
	names := make([]string, 0, len(b.modules))
	for name := range b.modules {
		names = append(names, name)
	}
	sort.Strings(names)
	covered, notCovered := 0, 0
	for _, name := range names {
		f := report.Files[name]
		if f == nil {
			t.Errorf("%s: no coverage recorded", name)
			continue
		}
		covered += f.CoveredLines
		notCovered += f.NotCoveredLines
		var gaps []string
		for _, r := range f.NotCovered {
			gaps = append(gaps, fmt.Sprintf("%d-%d", r.Start.Row, r.End.Row))
		}
		t.Logf("  %-18s %5.1f%%  not covered: %s", name, f.Coverage, strings.Join(gaps, " "))
	}
	if covered+notCovered == 0 {
		t.Fatal("no coverage recorded")
	}
	coverage := 100 * float64(covered) / float64(covered+notCovered)
	t.Logf("%d Rego tests passed; coverage %.1f%% (%d lines covered, %d not)", passed, coverage, covered, notCovered)
	if coverage < minRegoCoverage {
		t.Errorf("Rego coverage %.1f%%, want >= %.0f%%", coverage, minRegoCoverage)
	}
}
