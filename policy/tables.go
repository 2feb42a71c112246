package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// TablesPackage is the package whose rules are lookup tables: rules that
// read data but never input, which the engine evaluates once when it loads
// the bundle and then serves as data. Evaluating a decision then reads a
// table entry instead of re-deriving it from data on every request.
// `opa eval` and `opa test` evaluate the same rules on every query, with the
// same values.
const TablesPackage = "data.portcullis.tables"

var tablesRef = ast.MustParseRef(TablesPackage)

// isTableModule reports whether m's package is TablesPackage or below it.
func isTableModule(m *ast.Module) bool {
	return m.Package.Path.HasPrefix(tablesRef)
}

// materializeTables evaluates the bundle's table rules (compiled in
// compiler, reading data from dataObj) and returns the modules without them
// and the data with their values at data.portcullis.tables. With no table
// module it returns modules and dataObj unchanged.
//
// A table rule must not read input, directly or through the rules it uses,
// call a non-deterministic builtin (its value would be frozen at load) or be
// a function; and its evaluation must succeed. Otherwise the bundle is
// refused: the error names the rule.
func materializeTables(ctx context.Context, compiler *ast.Compiler, modules map[string]*ast.Module, dataObj ast.Object) (map[string]*ast.Module, ast.Object, error) {
	rest := make(map[string]*ast.Module, len(modules))
	var roots []*ast.Rule
	for name, m := range modules {
		if !isTableModule(m) {
			rest[name] = m
			continue
		}
		// Rules of the compiled copy: the graph is built over those.
		roots = append(roots, compiler.Modules[name].Rules...)
	}
	if len(roots) == 0 {
		return modules, dataObj, nil
	}
	if err := checkTableRules(compiler, roots); err != nil {
		return nil, nil, err
	}
	if _, err := dataObj.Find(tablesRef[1:]); err == nil {
		return nil, nil, fmt.Errorf("%s: defined both by rules and by the bundle's data", TablesPackage)
	}
	rs, err := rego.New(
		rego.Query(TablesPackage),
		rego.Compiler(compiler),
		rego.Store(inmem.NewFromASTObject(dataObj)),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(rawTerm),
	).Eval(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", TablesPackage, err)
	}
	tables := ast.Value(ast.NewObject())
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		v, ok := rs[0].Expressions[0].Value.(ast.Value)
		if !ok {
			return nil, nil, fmt.Errorf("%s: unexpected result type %T", TablesPackage, rs[0].Expressions[0].Value)
		}
		tables = v
	}
	// data.portcullis.tables = tables, in a copy of the data object.
	tail := tablesRef[1:] // portcullis, tables
	for i := len(tail) - 1; i >= 0; i-- {
		tables = ast.NewObject(ast.Item(tail[i], ast.NewTerm(tables)))
	}
	merged, ok := dataObj.Merge(tables.(ast.Object))
	if !ok {
		return nil, nil, fmt.Errorf("%s: conflicts with the bundle's data", TablesPackage)
	}
	return rest, merged, nil
}

// checkTableRules walks roots and every rule they depend on, and fails on
// the first that reads input, calls a non-deterministic builtin, or (among
// roots) is a function.
func checkTableRules(compiler *ast.Compiler, roots []*ast.Rule) error {
	for _, r := range roots {
		if len(r.Head.Args) > 0 {
			return fmt.Errorf("%s: %s is a function; tables hold values only", r.Location, r.Head.Ref())
		}
	}
	seen := map[*ast.Rule]bool{}
	stack := append([]*ast.Rule(nil), roots...)
	for len(stack) > 0 {
		r := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[r] {
			continue
		}
		seen[r] = true
		if err := checkTableRule(r); err != nil {
			return fmt.Errorf("%s: %s: %w", r.Location, r.Head.Ref(), err)
		}
		for dep := range compiler.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok && !seen[d] {
				stack = append(stack, d)
			}
		}
	}
	return nil
}

var (
	errTableInput  = errors.New("a table rule (or a rule it uses) reads input")
	errTableNondet = errors.New("a table rule (or a rule it uses) calls a non-deterministic builtin")
	errTableWith   = errors.New("a table rule (or a rule it uses) uses `with`")
)

// checkTableRule checks one rule's own head and body.
func checkTableRule(r *ast.Rule) error {
	var err error
	ast.WalkVars(r, func(v ast.Var) bool {
		if err == nil && v.Equal(ast.InputRootDocument.Value) {
			err = errTableInput
		}
		return err != nil
	})
	if err != nil {
		return err
	}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if err != nil {
			return true
		}
		if len(e.With) > 0 {
			err = errTableWith
			return true
		}
		if e.IsCall() {
			if b, ok := ast.BuiltinMap[e.Operator().String()]; ok && b.Nondeterministic {
				err = fmt.Errorf("%w: %s", errTableNondet, b.Name)
			}
		}
		return err != nil
	})
	return err
}
