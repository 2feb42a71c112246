package policy

import (
	"embed"
	"io/fs"
)

//go:embed bundle
var defaultBundle embed.FS

// DefaultBundle is the embedded default bundle: the Rego modules, their
// tests and data.json under policy/bundle. Copy it to start your own.
func DefaultBundle() fs.FS {
	sub, err := fs.Sub(defaultBundle, "bundle")
	if err != nil {
		panic(err) // "bundle" is a valid path; fs.Sub cannot fail on it
	}
	return sub
}
