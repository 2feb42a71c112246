package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStoreDefaults(t *testing.T) {
	doc, _ := valid(t)
	for _, tc := range []struct {
		name, add string
		want      Store
	}{
		{"absent", "", Store{Backend: "bolt", Retention: DefaultStoreRetention}},
		{"retention", "store: {retention: 1h}\n", Store{Backend: "bolt", Retention: time.Hour}},
		{"etcd", "store: {backend: etcd, etcd: {endpoints: [http://127.0.0.1:2379]}}\n", Store{Backend: "etcd", Etcd: Etcd{
			Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: DefaultEtcdPrefix, DialTimeout: DefaultEtcdDialTimeout,
			RequestTimeout: DefaultEtcdRequestTimeout, StaleAfter: DefaultEtcdStaleAfter}}},
		{"etcd tuned", "store: {backend: etcd, etcd: {endpoints: [http://127.0.0.1:2379], prefix: /fleet-a/, stale_after: 500ms, request_timeout: 1s}}\n",
			Store{Backend: "etcd", Etcd: Etcd{Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/fleet-a/", DialTimeout: DefaultEtcdDialTimeout,
				RequestTimeout: time.Second, StaleAfter: 500 * time.Millisecond}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(doc + tc.add))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Store
			if tc.want.Retention != 0 && got.Retention != tc.want.Retention {
				t.Errorf("got retention %s, want %s", got.Retention, tc.want.Retention)
			}
			if got.Backend != tc.want.Backend || got.Etcd.Prefix != tc.want.Etcd.Prefix || got.Etcd.StaleAfter != tc.want.Etcd.StaleAfter ||
				got.Etcd.RequestTimeout != tc.want.Etcd.RequestTimeout || got.Etcd.DialTimeout != tc.want.Etcd.DialTimeout ||
				strings.Join(got.Etcd.Endpoints, ",") != strings.Join(tc.want.Etcd.Endpoints, ",") {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStoreErrors(t *testing.T) {
	doc, dir := valid(t)
	for _, tc := range []struct {
		name, add, field, msg string
	}{
		{"backend", "store: {backend: redis}\n", "store.backend", "bolt or etcd"},
		{"retention", "store: {retention: -1s}\n", "store.retention", "negative"},
		{"no endpoints", "store: {backend: etcd}\n", "store.etcd.endpoints", "at least one"},
		{"bad endpoint", "store: {backend: etcd, etcd: {endpoints: [127.0.0.1:2379]}}\n", "store.etcd.endpoints[0]", "http(s)://"},
		{"plain with tls", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], ca_file: DIR/cert.pem}}\n", "store.etcd.endpoints[0]", "https://"},
		{"cert without key", "store: {backend: etcd, etcd: {endpoints: [https://e:2379], cert_file: DIR/cert.pem}}\n", "store.etcd", "together"},
		{"missing ca", "store: {backend: etcd, etcd: {endpoints: [https://e:2379], ca_file: DIR/nope.pem}}\n", "store.etcd.ca_file", "cannot read"},
		{"user without password", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], username: gw}}\n", "store.etcd", "together"},
		{"prefix", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], prefix: portcullis}}\n", "store.etcd.prefix", "start with /"},
		{"stale too short", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], stale_after: 10ms}}\n", "store.etcd.stale_after", "at least"},
		{"stale too long", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], stale_after: 10m}}\n", "store.etcd.stale_after", "at most"},
		{"negative", "store: {backend: etcd, etcd: {endpoints: [http://e:2379], request_timeout: -1s}}\n", "store.etcd", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(doc + strings.ReplaceAll(tc.add, "DIR", dir)))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
				t.Fatalf("got %v, want field %s containing %q", err, tc.field, tc.msg)
			}
		})
	}
}
