package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/sirupsen/logrus"
)

// Query is the one document the engine asks a bundle for.
const Query = "data.portcullis.decision"

// Defaults for Options.
const (
	DefaultTimeout   = 50 * time.Millisecond
	DefaultCacheSize = 10000
)

var decisionRef = ast.MustParseRef(Query)

// Options configure an Engine.
type Options struct {
	// BundleDir is a directory holding .rego modules and data.json /
	// data.yaml documents (and optionally a .manifest). "" selects the
	// embedded default bundle.
	BundleDir string
	// Timeout bounds each evaluation; 0 means DefaultTimeout.
	Timeout time.Duration
	// CacheSize is the number of cached decisions; 0 means
	// DefaultCacheSize, negative disables the cache.
	CacheSize int
	// Logger receives reload outcomes; nil discards them.
	Logger logrus.FieldLogger
	// OnReload, if set, is called after every Reload attempt that read the
	// bundle, with the revision before and after (equal when the reload
	// failed) and the error, if any. Callers use it to audit reloads.
	OnReload func(oldRevision, newRevision string, err error)
}

// Engine evaluates the policy bundle for each Input. It is safe for
// concurrent use. Reload swaps in a new bundle atomically; a bundle that fails
// to load never replaces a good one.
type Engine struct {
	opts  Options
	fsys  fs.FS
	log   logrus.FieldLogger
	state atomic.Pointer[state]
	cache *lru.Cache[uint64, *cacheEntry] // nil when disabled
	seed  maphash.Seed

	reloadMu sync.Mutex
	hits     atomic.Uint64
	misses   atomic.Uint64
}

// state is one loaded bundle, prepared for evaluation.
type state struct {
	compiler *ast.Compiler
	store    storage.Store
	// query is Query compiled to capture its value in resultVar, as the
	// rego package's prepared query does; qc compiled it.
	query    ast.Body
	qc       ast.QueryCompiler
	hash     [sha256.Size]byte
	revision string
	seed     uint64 // the bundle's part of every cache key
	// effects: the bundle calls a builtin with effects (http.send, net.*),
	// which needs the timeout as a context deadline.
	effects bool
	// shape: the input fields the bundle's rules can observe; the engine
	// builds only those (shape.go).
	shape fieldMask
	// parts: the input values of principals, users and grants seen, built
	// to shape (parts.go).
	parts *parts
}

// New loads, compiles and prepares the bundle. It fails if the bundle cannot
// be read or parsed, does not compile, or defines no data.portcullis.decision.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	e := &Engine{opts: opts, log: opts.Logger, seed: maphash.MakeSeed()}
	if e.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		e.log = l
	}
	if opts.BundleDir == "" {
		e.fsys = DefaultBundle()
	} else {
		e.fsys = os.DirFS(opts.BundleDir)
	}
	if opts.CacheSize > 0 {
		c, err := lru.New[uint64, *cacheEntry](opts.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		e.cache = c
	}
	st, err := e.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", e.bundleName(), err)
	}
	e.state.Store(st)
	return e, nil
}

func (e *Engine) bundleName() string {
	if e.opts.BundleDir == "" {
		return "(embedded default)"
	}
	return e.opts.BundleDir
}

// load reads, compiles and prepares the bundle.
func (e *Engine) load(ctx context.Context) (*state, error) {
	b, err := loadBundle(e.fsys)
	if err != nil {
		return nil, err
	}
	st, err := prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	st.seed = maphash.Bytes(e.seed, st.hash[:])
	return st, nil
}

func prepare(ctx context.Context, b *bundle) (*state, error) {
	compiler := ast.NewCompiler()
	if compiler.Compile(b.modules); compiler.Failed() {
		return nil, compiler.Errors
	}
	if len(compiler.GetRulesExact(decisionRef)) == 0 {
		return nil, fmt.Errorf("no rule defines %s", Query)
	}
	data, err := ast.InterfaceToValue(b.data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	obj, ok := data.(ast.Object)
	if !ok {
		return nil, errors.New("data is not an object")
	}
	// Lookup tables (tables.go): evaluated once here, then served as data
	// to a compiler that no longer has their rules.
	rest, obj, err := materializeTables(ctx, compiler, b.modules, obj)
	if err != nil {
		return nil, err
	}
	if len(rest) != len(b.modules) {
		compiler = ast.NewCompiler()
		if compiler.Compile(rest); compiler.Failed() {
			return nil, compiler.Errors
		}
	}
	// NewFromASTObject is the in-memory store with
	// OptReturnASTValuesOnRead: evaluation reads ast values directly.
	store := inmem.NewFromASTObject(obj)
	// Preparing through the rego package checks the bundle as it always
	// has; decisions then call OPA's evaluator directly (eval), which
	// spares the prepared query's per-evaluation wrapper.
	if _, err := rego.New(
		rego.Query(Query),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx); err != nil {
		return nil, err
	}
	qc := compiler.QueryCompiler().WithStrict(false)
	query, err := qc.Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(decisionRef), ast.NewTerm(resultVar))))
	if err != nil {
		return nil, err
	}
	return &state{
		compiler: compiler,
		store:    store,
		query:    query,
		qc:       qc,
		hash:     b.hash,
		revision: b.revision,
		effects:  callsNondeterministic(compiler),
		shape:    inputShape(compiler.Modules),
		parts:    newParts(),
	}, nil
}

// resultVar holds the decision in the compiled query.
var resultVar = ast.Var("__portcullis_decision__")

// Revision is the revision of the bundle in use: the .manifest revision if
// the bundle has one, else the first 12 hex digits of the SHA-256 over its
// sorted file names and contents.
func (e *Engine) Revision() string { return e.state.Load().revision }

// CacheStats reports decision cache hits and misses since New.
func (e *Engine) CacheStats() (hits, misses uint64) { return e.hits.Load(), e.misses.Load() }

// Errors Decide returns, always together with a deny. Each names a class of
// failure; the wrapped detail (file positions, Rego errors) is for logs, and
// only the class text appears in the deny's Reasons.
var (
	ErrInput     = errors.New("policy: invalid input")
	ErrTimeout   = errors.New("policy: evaluation timed out or was canceled")
	ErrEval      = errors.New("policy: evaluation failed")
	ErrUndefined = errors.New("policy: decision undefined")
	ErrMalformed = errors.New("policy: malformed decision")
)

// Decide evaluates in against the current bundle. It fails closed: on any
// error (engine error, timeout, canceled context, undefined or malformed
// decision, nil input, even a panic) it returns a deny with an explanation
// in Reasons, and a non-nil error that wraps one of ErrInput, ErrTimeout,
// ErrEval, ErrUndefined or ErrMalformed.
//
// Repeated inputs are answered from the cache (see docs/policy.md); the
// grant's ExpiresAt is not part of the cache key, so callers check expiry
// before calling Decide.
func (e *Engine) Decide(ctx context.Context, in *Input) (d Decision, err error) {
	st := e.state.Load()
	defer func() {
		if r := recover(); r != nil {
			d, err = deny(st, fmt.Errorf("%w: panic: %v", ErrEval, r))
		}
	}()
	if in == nil {
		return deny(st, fmt.Errorf("%w: nil", ErrInput))
	}
	var key uint64
	if e.cache != nil {
		key = e.key(st, in)
		if ent, ok := e.cache.Get(key); ok && ent.matches(st, in) {
			e.hits.Add(1)
			d = ent.decision
			d.CacheHit = true
			return d, nil
		}
		e.misses.Add(1)
	}
	d, err = e.eval(ctx, st, in)
	if err != nil {
		return deny(st, err)
	}
	if e.cache != nil {
		e.cache.Add(key, newCacheEntry(st, in, d))
	}
	return d, nil
}

// eval evaluates the query once, bounded by the engine's timeout.
func (e *Engine) eval(ctx context.Context, st *state, in *Input) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	c := topdown.NewCancel()
	var timer *time.Timer
	if st.effects {
		// Builtins with effects (http.send, net.*) honor the context's
		// deadline, not the cancel below: give them one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.Timeout)
		defer cancel()
	} else {
		// Evaluation alone only needs to be stopped: a timer costs less
		// than a derived context per decision.
		timer = time.AfterFunc(e.opts.Timeout, c.Cancel)
	}
	// Cancel evaluation from a context callback rather than the goroutine
	// rego starts per evaluation.
	stop := context.AfterFunc(ctx, c.Cancel)
	v, n, err := st.evalQuery(ctx, c, in)
	stop()
	expired := timer != nil && !timer.Stop()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Decision{}, fmt.Errorf("%w (limit %v): %w", ErrTimeout, e.opts.Timeout, ctxErr)
		}
		if expired {
			return Decision{}, fmt.Errorf("%w (limit %v): %w", ErrTimeout, e.opts.Timeout, context.DeadlineExceeded)
		}
		return Decision{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	switch {
	case n == 0:
		return Decision{}, fmt.Errorf("%w: %s has no value", ErrUndefined, Query)
	case n > 1:
		return Decision{}, fmt.Errorf("%w: %s has %d results", ErrMalformed, Query, n)
	case v == nil:
		return Decision{}, fmt.Errorf("%w: %s has no value in its result", ErrMalformed, Query)
	}
	d, scoped, err := parseDecision(v)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if scoped {
		if err := scopeToGrant(&d, in.Grant); err != nil {
			return Decision{}, err
		}
	}
	d.Revision = st.revision
	return d, nil
}

// evalQuery evaluates the compiled query on in, as the rego package's
// prepared query would (a read transaction, indexing and early exit,
// strict builtin errors), with the engine's caches: it returns the value
// of the last result and the number of results.
func (st *state) evalQuery(ctx context.Context, c topdown.Cancel, in *Input) (ast.Value, int, error) {
	txn, err := st.store.NewTransaction(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer st.store.Abort(ctx, txn)
	q := topdown.NewQuery(st.query).
		WithQueryCompiler(st.qc).
		WithCompiler(st.compiler).
		WithStore(st.store).
		WithTransaction(txn).
		WithMetrics(noMetrics).
		WithIndexing(true).
		WithEarlyExit(true).
		WithStrictBuiltinErrors(true).
		WithVirtualCache(newVirtualCache()).
		WithBaseCache(noBaseCache{}).
		WithCancel(c).
		WithInput(ast.NewTerm(in.valueOf(st.shape, st.parts)))
	var v ast.Value
	n := 0
	err = q.Iter(ctx, func(qr topdown.QueryResult) error {
		n++
		v = nil
		if t := qr[resultVar]; t != nil {
			v = t.Value
		}
		return nil
	})
	return v, n, err
}

// callsNondeterministic reports whether any rule of compiler calls a
// non-deterministic builtin (http.send, net.lookup_ip_addr, ...): those may
// block on I/O and honor only a context deadline.
func callsNondeterministic(compiler *ast.Compiler) bool {
	found := false
	for _, m := range compiler.Modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if !found && x.IsCall() {
				if b, ok := ast.BuiltinMap[x.Operator().String()]; ok && b.Nondeterministic {
					found = true
				}
			}
			return found
		})
		if found {
			break
		}
	}
	return found
}

// noBaseCache is a topdown.BaseCache that keeps nothing. The default one
// caches each data document read during an evaluation in a tree of maps,
// one level per ref element: for an in-memory store of ast values (see
// prepare) that costs several times what reading the store again does.
type noBaseCache struct{}

func (noBaseCache) Get(ast.Ref) ast.Value  { return nil }
func (noBaseCache) Put(ast.Ref, ast.Value) {}

var _ topdown.BaseCache = noBaseCache{}

// noMetrics spares each evaluation the allocation of a metrics registry.
var noMetrics = metrics.NoOp()

// rawTerm keeps results as ast values: no conversion to Go maps.
func rawTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

// deny is the fail-closed answer for err. The reason names the class of
// failure only; err carries the detail.
func deny(st *state, err error) (Decision, error) {
	reason := "denied: evaluation failed"
	for _, class := range []error{ErrInput, ErrTimeout, ErrUndefined, ErrMalformed} {
		if errors.Is(err, class) {
			reason = "denied: " + strings.TrimPrefix(class.Error(), "policy: ")
			break
		}
	}
	d := Decision{Reasons: []string{reason}}
	if st != nil {
		d.Revision = st.revision
	}
	return d, err
}
