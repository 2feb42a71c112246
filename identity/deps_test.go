package identity

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps identity a leaf: it may import the standard library,
// go-spiffe and logrus (for the injected logger), and nothing of ours, so that
// proxy -> identity stays a one-way arrow.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/spiffe/go-spiffe/v2/", "github.com/sirupsen/logrus"}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
	imports:
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains(strings.Split(path, "/")[0], ".") {
				continue // standard library
			}
			for _, a := range allowed {
				if strings.HasPrefix(path, a) {
					continue imports
				}
			}
			t.Errorf("%s imports %s; identity may import only the standard library, go-spiffe and logrus", name, path)
		}
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
