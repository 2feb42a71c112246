package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultFileSourceInterval is how often a [FileSource] looks at its files
// when FileSourceConfig.Interval is zero.
const DefaultFileSourceInterval = 2 * time.Second

// maxPEMFile caps each file a FileSource reads.
const maxPEMFile = 1 << 20

// FileSourceConfig says where a [FileSource] finds its PEM files.
type FileSourceConfig struct {
	// CertFile holds the SVID: the leaf certificate first, then any
	// intermediates. KeyFile holds its PKCS#8 private key.
	CertFile, KeyFile string
	// BundleFile holds one or more CA certificates, all of TrustDomain.
	BundleFile string
	// TrustDomain is the SVID's and the bundle's trust domain. If zero, it is
	// taken from the SVID.
	TrustDomain spiffeid.TrustDomain
	// FederatedBundles maps foreign trust domains to their bundle files.
	FederatedBundles map[spiffeid.TrustDomain]string
	// Interval is how often the files are checked for changes
	// (default DefaultFileSourceInterval).
	Interval time.Duration
	// Logger receives reload errors and successes. Nil discards them.
	Logger logrus.FieldLogger
	// Clock tells the time used to check that the SVID is valid. Nil means
	// time.Now.
	Clock func() time.Time
}

// FileSource serves an SVID and bundles read from PEM files, and re-reads them
// when their contents change, as files written by spiffe-helper or a secrets
// sidecar do. A load that fails (a half-written file, a key that does not match
// the certificate, an SVID the bundle does not verify) is logged and leaves the
// last good state in place.
type FileSource struct {
	cfg    FileSourceConfig
	log    logrus.FieldLogger
	state  atomic.Pointer[fileState]
	mu     sync.Mutex // serializes reloads
	seen   [][]byte   // file contents of the last attempt, under mu
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

type fileState struct {
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

// NewFileSource loads the files and starts watching them. It blocks until a
// first load succeeds, retrying every interval (the files may not exist yet),
// and fails with the last load error when ctx ends first. ctx bounds only that
// wait; the watcher runs until Close.
func NewFileSource(ctx context.Context, cfg FileSourceConfig) (*FileSource, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.BundleFile == "" {
		return nil, errors.New("identity: file source: CertFile, KeyFile and BundleFile are all required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultFileSourceInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	s := &FileSource{cfg: cfg, log: log.WithField("component", "identity.filesource"), done: make(chan struct{})}

	for {
		_, err := s.reload()
		if err == nil {
			break
		}
		s.log.WithError(err).Warn("waiting for SVID files")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("identity: file source: no valid SVID before %w: %w", ctx.Err(), err)
		case <-time.After(cfg.Interval):
		}
	}

	watchCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watch(watchCtx)
	return s, nil
}

// GetX509SVID returns the current SVID.
func (s *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	st := s.state.Load()
	if st == nil {
		return nil, errors.New("identity: file source is closed")
	}
	return st.svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle for td.
func (s *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	st := s.state.Load()
	if st == nil {
		return nil, errors.New("identity: file source is closed")
	}
	b, ok := st.bundles.Get(td)
	if !ok {
		return nil, fmt.Errorf("identity: no X.509 bundle for trust domain %q", td)
	}
	return b, nil
}

// Reload re-reads the files now (for example on SIGHUP), whether or not they
// changed. On error the last good state stays in place.
func (s *FileSource) Reload() error {
	s.mu.Lock()
	s.seen = nil
	s.mu.Unlock()
	_, err := s.reload()
	return err
}

// Close stops watching. Afterwards the source serves nothing.
func (s *FileSource) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.state.Store(nil)
	})
	return nil
}

func (s *FileSource) watch(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var lastErr string // log a persisting failure once, not every tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.reload()
		switch {
		case err != nil:
			if err.Error() != lastErr {
				lastErr = err.Error()
				s.log.WithError(err).Error("reloading SVID files failed; keeping the last good SVID and bundles")
			}
		case changed:
			lastErr = ""
			svid := s.state.Load().svid
			s.log.WithField("spiffe_id", svid.ID.String()).
				WithField("not_after", svid.Certificates[0].NotAfter).
				Info("reloaded SVID files")
		}
	}
}

// paths lists the files in a fixed order: cert, key, bundle, then federated.
func (s *FileSource) paths() []string {
	p := []string{s.cfg.CertFile, s.cfg.KeyFile, s.cfg.BundleFile}
	for _, td := range slices.SortedFunc(maps.Keys(s.cfg.FederatedBundles), compareTD) {
		p = append(p, s.cfg.FederatedBundles[td])
	}
	return p
}

// reload reads every file and, if any content differs from the last attempt,
// parses and validates the lot and swaps it in. It reports whether a new
// state was stored.
func (s *FileSource) reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	contents := make(map[string][]byte)
	var all [][]byte
	for _, p := range s.paths() {
		b, err := readCapped(p)
		if err != nil {
			s.seen = nil // retry next time even if nothing changes
			return false, fmt.Errorf("identity: file source: %w", err)
		}
		contents[p] = b
		all = append(all, b)
	}
	if sameContents(s.seen, all) {
		return false, nil
	}
	s.seen = all

	st, err := s.parse(contents)
	if err != nil {
		s.seen = nil // retry: a time-dependent check may pass later
		return false, fmt.Errorf("identity: file source: %w", err)
	}
	s.state.Store(st)
	return true, nil
}

func (s *FileSource) parse(contents map[string][]byte) (*fileState, error) {
	svid, err := x509svid.Parse(contents[s.cfg.CertFile], contents[s.cfg.KeyFile])
	if err != nil {
		return nil, fmt.Errorf("SVID %s, key %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	td := s.cfg.TrustDomain
	if td.IsZero() {
		td = svid.ID.TrustDomain()
	}
	if !svid.ID.MemberOf(td) {
		return nil, fmt.Errorf("SVID %s: ID %q is not in trust domain %q", s.cfg.CertFile, svid.ID, td)
	}
	own, err := x509bundle.Parse(td, contents[s.cfg.BundleFile])
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.cfg.BundleFile, err)
	}
	set := x509bundle.NewSet(own)
	for ftd, f := range s.cfg.FederatedBundles {
		if ftd == td {
			return nil, fmt.Errorf("federated bundle %s: trust domain %q is our own", f, ftd)
		}
		b, err := x509bundle.Parse(ftd, contents[f])
		if err != nil {
			return nil, fmt.Errorf("federated bundle %s: %w", f, err)
		}
		set.Add(b)
	}
	// An SVID our own bundle does not verify would fail every handshake:
	// refuse it, so that a leaf rotated before its bundle never replaces a
	// working pair.
	if _, _, err := x509svid.Verify(svid.Certificates, set, x509svid.WithTime(s.cfg.Clock())); err != nil {
		return nil, fmt.Errorf("SVID %s does not verify against bundle %s: %w", s.cfg.CertFile, s.cfg.BundleFile, err)
	}
	return &fileState{svid: svid, bundles: set}, nil
}

func compareTD(a, b spiffeid.TrustDomain) int { return strings.Compare(a.Name(), b.Name()) }

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPEMFile)
	}
	return b, nil
}

func sameContents(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
