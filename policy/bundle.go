package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// Size caps for a bundle read from disk.
const (
	maxFileSize   = 16 << 20
	maxBundleSize = 64 << 20
	maxFiles      = 10000
)

// bundle is a bundle read from a file system: its policy modules, test
// modules, merged data and identity.
type bundle struct {
	modules map[string]*ast.Module // non-test .rego files, by path
	tests   map[string]*ast.Module // *_test.rego files, by path
	data    map[string]any         // merged data documents
	hash    [sha256.Size]byte      // over sorted file names and contents
	// revision is the .manifest revision when there is one, else the first
	// 12 hex digits of hash.
	revision string
}

// bundleFile reports whether name is a file that belongs to a bundle.
func bundleFile(name string) bool {
	base := path.Base(name)
	switch {
	case strings.HasSuffix(base, ".rego"):
		return true
	case base == "data.json", base == "data.yaml", base == "data.yml", base == ".manifest":
		return true
	}
	return false
}

// readBundleFiles returns the bundle's files by path, sorted by walk order
// (lexical). Hidden directories (".git", Kubernetes' "..data") are skipped.
func readBundleFiles(fsys fs.FS) (names []string, files map[string][]byte, err error) {
	files = map[string][]byte{}
	total := 0
	err = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !bundleFile(name) {
			return nil
		}
		if len(names) >= maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		bs, err := readCapped(fsys, name)
		if err != nil {
			return err
		}
		total += len(bs)
		if total > maxBundleSize {
			return fmt.Errorf("bundle larger than %d bytes", maxBundleSize)
		}
		names = append(names, name)
		files[name] = bs
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	return names, files, nil
}

func readCapped(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bs, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(bs) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileSize)
	}
	return bs, nil
}

// contentHash is SHA-256 over each file's name and contents, each
// length-prefixed, in sorted name order.
func contentHash(names []string, files map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		io.WriteString(h, name)
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// hashBundle reads fsys and returns only its content hash; Watch uses it to
// notice changes without compiling.
func hashBundle(fsys fs.FS) ([sha256.Size]byte, error) {
	names, files, err := readBundleFiles(fsys)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return contentHash(names, files), nil
}

// loadBundle reads and parses a bundle: .rego modules (Rego v1 syntax),
// data.json / data.yaml documents mounted at their directory's path, and an
// optional .manifest with a "revision".
func loadBundle(fsys fs.FS) (*bundle, error) {
	names, files, err := readBundleFiles(fsys)
	if err != nil {
		return nil, err
	}
	b := &bundle{
		modules: map[string]*ast.Module{},
		tests:   map[string]*ast.Module{},
		data:    map[string]any{},
		hash:    contentHash(names, files),
	}
	var manifestRev string
	for _, name := range names {
		bs := files[name]
		switch base := path.Base(name); {
		case strings.HasSuffix(base, ".rego"):
			m, err := ast.ParseModuleWithOpts(name, string(bs), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return nil, err
			}
			if strings.HasSuffix(base, "_test.rego") {
				b.tests[name] = m
			} else {
				b.modules[name] = m
			}
		case base == ".manifest":
			if name != ".manifest" {
				continue // only the root manifest counts
			}
			var man struct {
				Revision string `json:"revision"`
			}
			if err := util.UnmarshalJSON(bs, &man); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			manifestRev = man.Revision
		default: // data.json, data.yaml, data.yml
			var doc any
			if strings.HasSuffix(base, ".json") {
				err = util.UnmarshalJSON(bs, &doc)
			} else {
				err = util.Unmarshal(bs, &doc)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if err := mountData(b.data, dataPath(name), doc); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if len(b.modules) == 0 {
		return nil, errors.New("no policy modules (.rego files)")
	}
	b.revision = manifestRev
	if b.revision == "" {
		b.revision = hex.EncodeToString(b.hash[:6])
	}
	return b, nil
}

// dataPath is the data path a data file at name is mounted at: its directory.
func dataPath(name string) []string {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	return strings.Split(dir, "/")
}

// mountData merges doc into root at p. Objects merge key by key; any other
// overlap is a conflict.
func mountData(root map[string]any, p []string, doc any) error {
	for i, seg := range p {
		next, ok := root[seg]
		if !ok {
			next = map[string]any{}
			root[seg] = next
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("data path %s is not an object", strings.Join(p[:i+1], "."))
		}
		root = m
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		if len(p) == 0 {
			return errors.New("root data document is not an object")
		}
		return errors.New("data document is not an object")
	}
	return mergeObjects(root, obj, p)
}

func mergeObjects(dst, src map[string]any, at []string) error {
	for k, v := range src {
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("data conflict at %s", strings.Join(append(append([]string{}, at...), k), "."))
		}
		if err := mergeObjects(om, nm, append(at, k)); err != nil {
			return err
		}
	}
	return nil
}
