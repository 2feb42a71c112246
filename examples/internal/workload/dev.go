package workload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// DevHTTPClient is an HTTP client presenting the dev SVID <devDir>/<name>.pem
// (as written by `portcullis serve --dev`) and trusting the dev bundle — what
// curl --cert/--key/--cacert does.
func DevHTTPClient(devDir, name string) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(devDir, name+".pem"), filepath.Join(devDir, name+"-key.pem"))
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(filepath.Join(devDir, "bundle.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("bundle.pem holds no certificate")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13},
		ForceAttemptHTTP2: true,
	}}, nil
}
