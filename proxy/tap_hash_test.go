package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// tapKey is the tenant key the tap tests digest tool-call arguments under.
var tapKey = []byte("tap test tenant key 0123456789ab")

// argsDigest is the documented tool-argument digest, computed here apart
// from toolArgsDigest: hex(HMAC-SHA256(key, "portcullis tool arguments
// v1\x00" || SHA-256(args))).
func argsDigest(key []byte, args string) string {
	sum := sha256.Sum256([]byte(args))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("portcullis tool arguments v1\x00"))
	mac.Write(sum[:])
	return hex.EncodeToString(mac.Sum(nil))
}
