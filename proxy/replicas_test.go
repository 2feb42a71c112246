package proxy_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/etcdtest"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// Two gateway replicas sharing state on one etcd, as docs/deployment.md
// runs them: one trust domain (one CA), one grant signing keyring, one
// provider, one etcd prefix; each replica with its own audit log and its
// own etcd client and revocation view.

// replicaStaleAfter bounds how long a revocation takes to reach a replica
// (the production default).
const replicaStaleAfter = 2 * time.Second

type fleet struct {
	t    *testing.T
	etcd *etcdtest.Server
	ca   *identity.DevCA
	fake *fakeprovider.Server
	keys *identity.GrantKeyring
	jwt  *identity.DevJWTIssuer
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: providerKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	k, err := identity.GenerateGrantKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := identity.NewGrantKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := identity.NewDevJWTIssuer(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fleet{t: t, etcd: etcdtest.Start(t), ca: ca, fake: fake, keys: keys, jwt: jwt}
}

// replica starts one gateway on loopback with its own etcd-backed store;
// configure, if any, adjusts its configuration.
func (f *fleet) replica(name string, configure ...func(*proxy.Config, *store.Etcd)) (*gatewayEnv, *store.Etcd) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	logger := logrus.New()
	logger.Out = testWriter{t}
	st, err := store.OpenEtcd(ctx, store.EtcdOptions{
		Endpoints: f.etcd.Endpoints(), Prefix: "/portcullis-test/",
		RequestTimeout: time.Second, StaleAfter: replicaStaleAfter,
		Logger: logger.WithField("replica", name),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, _ := url.Parse(f.fake.URL())
	prov := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: u}
	prov.SetKey(providerKey)
	router, err := proxy.NewRouter([]proxy.Route{{Model: "gpt-4o-mini", Provider: prov}})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Options{Timeout: testPolicyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	auditDir := filepath.Join(t.TempDir(), name, "audit")
	alog, err := audit.Open(auditDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	resolver, err := identity.NewResolver(identity.DevTemplates())
	if err != nil {
		t.Fatal(err)
	}
	grants := &proxy.GrantOptions{
		Keys: f.keys, Store: st, Audience: testAudience, MaxTTL: 15 * time.Minute, DefaultTTL: 5 * time.Minute, MaxDepth: 2,
		Users: &identity.UserVerifier{Audience: testAudience, JWTBundles: jwtbundle.NewSet(f.jwt.Bundle()), Resolver: resolver},
	}
	cfg := proxy.Config{
		Resolver: resolver, Policy: engine, Audit: alog, Router: router, Logger: logger,
		DigestKey: []byte("test digest key 0123456789"),
		Grants:    grants, Approvals: &proxy.ApprovalOptions{Store: st},
	}
	for _, c := range configure {
		c(&cfg, st)
	}
	gw, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := f.ca.GatewaySource(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{f.ca.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.NewServer(gw, tlsCfg, proxy.ServerOptions{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &gatewayEnv{t: t, ca: f.ca, fake: f.fake, auditDir: auditDir, log: alog, engine: engine,
		addr: ln.Addr().String(), srv: srv, grants: &grantEnv{options: grants, keys: f.keys, jwt: f.jwt}}, st
}

func TestReplicasRevocationReachesOtherReplica(t *testing.T) {
	f := newFleet(t)
	a, _ := f.replica("a")
	b, _ := f.replica("b")
	grant, id := a.mint("", mintBody("t-revoke", "support", []string{"gpt-4o-mini"}, nil, 5000))
	if err := b.chatWith(identity.DevAppID, grant, "gpt-4o-mini"); err != nil {
		t.Fatalf("grant minted on A, used on B: %v", err)
	}
	if status, m := a.call(identity.DevAppID, "DELETE", "/v1/grants/"+id, "", "", nil); status != http.StatusOK {
		t.Fatalf("revoke on A: %d %v", status, m)
	}
	revoked := time.Now()
	for {
		err := b.chatWith(identity.DevAppID, grant, "gpt-4o-mini")
		if err != nil {
			wantAPIError(t, err, http.StatusUnauthorized, "grant_revoked", id)
			break
		}
		if time.Since(revoked) > replicaStaleAfter {
			t.Fatalf("B still accepts the grant %s after A revoked it (bound %s)", time.Since(revoked), replicaStaleAfter)
		}
	}
	t.Logf("revoked on A, refused on B %s later (bound %s)", time.Since(revoked).Round(time.Microsecond), replicaStaleAfter)
	// Each replica audited its own side.
	if n := countAction(a.records(), "grant.revoke"); n != 1 {
		t.Errorf("A's log has %d grant.revoke records, want 1", n)
	}
	if n := countAction(b.records(), "grant.revoke"); n != 0 {
		t.Errorf("B's log has %d grant.revoke records, want 0", n)
	}
}

func countAction(recs []map[string]any, action string) int {
	n := 0
	for _, r := range recs {
		if r["action"] == action {
			n++
		}
	}
	return n
}

func TestReplicasApprovalUsableOnceAcrossReplicas(t *testing.T) {
	f := newFleet(t)
	a, _ := f.replica("a")
	b, _ := f.replica("b")
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := a.park(identity.DevAppID, "", p)
	b.approve(identity.DevHumanID, ap) // approved through B
	// The app retries through both replicas at once: one call goes through.
	var wg sync.WaitGroup
	results := make([]attempt, 6)
	for i := range results {
		env := a
		if i%2 == 1 {
			env = b
		}
		wg.Go(func() { results[i] = env.tryChat(identity.DevAppID, "", ap, p) })
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
		case r.err.StatusCode == http.StatusForbidden || r.err.StatusCode == http.StatusConflict:
		default:
			t.Errorf("retry: %d %s %s", r.err.StatusCode, r.err.Code, r.err.Message)
		}
	}
	if ok != 1 {
		t.Errorf("%d retries with the approval succeeded, want exactly 1", ok)
	}
	if n := len(f.fake.Requests()); n != 1 {
		t.Errorf("the provider saw %d calls, want 1", n)
	}
}

func TestReplicasBudgetNotDoubleSpent(t *testing.T) {
	f := newFleet(t)
	a, st := f.replica("a")
	b, _ := f.replica("b")
	// Each call reserves at least its 20 max tokens and uses ~8: twelve of
	// them need more than the budget even one after another, so some are
	// refused however the calls happen to overlap on a loaded machine.
	const budget = 60
	grant, id := a.mint("", mintBody("t-budget", "support", []string{"gpt-4o-mini"}, nil, budget))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		spent int64
		ok    int
	)
	const calls = 12
	for i := range calls {
		env := a
		if i%2 == 1 {
			env = b
		}
		wg.Go(func() {
			p := chatParams("gpt-4o-mini", "hi")
			p.MaxTokens = openai.Int(20)
			got, err := env.chat(identity.DevAppID, option.WithAPIKey(grant)).New(context.Background(), p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if apiErr, isAPI := err.(*openai.Error); !isAPI || apiErr.StatusCode != http.StatusTooManyRequests {
					t.Errorf("call: %v %s", err, apiErr.Message)
				}
				return
			}
			ok++
			spent += got.Usage.TotalTokens
		})
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // settlement runs as each body closes
	ctx := context.Background()
	for _, k := range []string{"grant/" + id, "task/acme/t-budget"} {
		used, err := st.Usage(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if used != spent || used > budget {
			t.Errorf("%s: store says %d tokens used; the %d calls that went through used %d; budget %d", k, used, ok, spent, budget)
		}
	}
	if ok == 0 || ok == calls {
		t.Errorf("%d of %d calls went through; want some, and some refused by the %d-token budget", ok, calls, budget)
	}
	t.Logf("%d of %d concurrent calls through two replicas went through, %d tokens of %d", ok, calls, spent, budget)
}

func TestReplicasEtcdUnavailableFailsClosed(t *testing.T) {
	f := newFleet(t)
	a, _ := f.replica("a")
	b, stB := f.replica("b")
	grant, _ := a.mint("", mintBody("t-down", "support", []string{"gpt-4o-mini"}, nil, 5000))
	if err := b.chatWith(identity.DevAppID, grant, "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	f.etcd.Cut()
	cut := time.Now()
	// Every grant-bearing call is refused from the cut on: at first because
	// the budget cannot be charged, and once the revocation view is older
	// than StaleAfter, at the revocation check itself.
	for {
		err := b.chatWith(identity.DevAppID, grant, "gpt-4o-mini")
		if err == nil {
			if time.Since(cut) > replicaStaleAfter {
				t.Fatalf("B still serves a grant %s after losing etcd", time.Since(cut))
			}
			continue
		}
		wantAPIError(t, err, http.StatusServiceUnavailable, "state_unavailable", "")
		if strings.Contains(err.Message, "revoked") {
			break
		}
		if time.Since(cut) > 2*replicaStaleAfter {
			t.Fatalf("B's revocation check still passes %s after losing etcd", time.Since(cut))
		}
	}
	t.Logf("etcd cut: B's revocation check fails closed %s later (StaleAfter %s)", time.Since(cut).Round(time.Millisecond), replicaStaleAfter)
	if _, err := stB.Health(time.Now()); err == nil {
		t.Error("the store reports healthy with etcd cut")
	}
	// Calls that need no revocation check are not affected.
	if _, err := b.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Errorf("call without a grant while etcd is cut: %v", err)
	}
	f.etcd.Restore(t)
	deadline := time.Now().Add(10 * time.Second)
	for b.chatWith(identity.DevAppID, grant, "gpt-4o-mini") != nil {
		if time.Now().After(deadline) {
			t.Fatal("B did not recover 10s after etcd came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
