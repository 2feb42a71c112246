package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestGrantKeysRotate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "grant-keys.pem")
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	first := run("grant", "keys", "rotate", "--key-file", file)
	second := run("grant", "keys", "rotate", "--key-file", file, "--keep", "1")
	if first == second || !strings.HasPrefix(second, "signing key is now ") {
		t.Fatalf("rotations printed %q then %q", first, second)
	}
	var jwks struct {
		Keys []struct{ Kid string }
	}
	if err := json.Unmarshal([]byte(run("grant", "keys", "jwks", "--key-file", file)), &jwks); err != nil {
		t.Fatal(err)
	}
	// The file was created with one key, rotated twice keeping one previous
	// key each time: current and one previous.
	if len(jwks.Keys) != 2 || "signing key is now "+jwks.Keys[0].Kid+"\n" != second {
		t.Errorf("JWKS keys = %+v after rotating to %q", jwks.Keys, second)
	}
}
