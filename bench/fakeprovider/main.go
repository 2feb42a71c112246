package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "plain HTTP listener (HTTP/1.1 and h2c)")
	keyFile := fs.String("api-key-file", "", "file holding the API key clients must present")
	tlsListen := fs.String("tls-listen", "", "optional mTLS listener (HTTP/2 and HTTP/1.1 by ALPN)")
	cert := fs.String("cert", "", "server SVID certificate for -tls-listen (PEM)")
	key := fs.String("key", "", "server SVID key for -tls-listen (PEM)")
	bundle := fs.String("bundle", "", "trust bundle for client SVIDs on -tls-listen (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := fakeprovider.Options{RecordLimit: -1}
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		opts.APIKey = strings.TrimSpace(string(b))
	}
	logger := logrus.New()
	logger.Level = logrus.ErrorLevel
	opts.Logger = logger

	plain, err := fakeprovider.Listen(*listen, opts)
	if err != nil {
		return err
	}
	defer plain.Close()
	if *tlsListen != "" {
		if *cert == "" || *key == "" || *bundle == "" {
			return errors.New("-tls-listen needs -cert, -key and -bundle")
		}
		svid, err := x509svid.Load(*cert, *key)
		if err != nil {
			return err
		}
		td := svid.ID.TrustDomain()
		b, err := x509bundle.Load(td, *bundle)
		if err != nil {
			return err
		}
		cfg, err := identity.ServerTLSConfig(identity.NewStaticSource(svid, x509bundle.NewSet(b)), []spiffeid.TrustDomain{td})
		if err != nil {
			return err
		}
		opts.TLS = cfg
		secure, err := fakeprovider.Listen(*tlsListen, opts)
		if err != nil {
			return err
		}
		defer secure.Close()
		fmt.Printf("fakeprovider: mTLS on https://%s\n", secure.Addr())
	}
	fmt.Printf("fakeprovider: serving %s\n", plain.URL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
