package query

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"slices"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	unionauth "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/utils/clock"
)

const (
	// verifiedChainTTL bounds how long a verified front-proxy certificate chain is trusted without being
	// verified again (it is never trusted past the NotAfter of any certificate in it).
	verifiedChainTTL = 5 * time.Minute
	// maxVerifiedChains bounds the cache; kube-apiserver replicas each present one chain.
	maxVerifiedChains = 64
)

// frontProxyAuthenticator authenticates requests proxied by kube-apiserver's aggregator exactly as
// k8s.io/apiserver's requestheader authenticator does (a client certificate chain that verifies against the
// requestheader CA, with an allowed common name, then the X-Remote-* headers), except that it remembers the
// chains it has verified. k8s.io/apiserver verifies the front proxy's chain again on every request, and
// that ECDSA verification was the largest single cost of a query (docs/benchmarks.md); the aggregator keeps
// its connection open, so the same chain arrives on every request.
//
// A cached verification is reused only for the byte-identical chain and the same CA pool (a rotated
// requestheader CA yields a new pool, so everything is verified again), never past verifiedChainTTL or the
// chain's NotAfter. Whatever this authenticator does not accept falls through to the standard authenticators.
type frontProxyAuthenticator struct {
	verifyOptions func() (x509.VerifyOptions, bool)
	allowedNames  headerrequest.StringSliceProvider
	headers       authenticator.Request
	clock         clock.PassiveClock
	// verify is x509.Certificate.Verify; tests count its calls.
	verify func(leaf *x509.Certificate, opts x509.VerifyOptions) error

	mu       sync.Mutex
	verified map[[sha256.Size]byte]verifiedChain
}

type verifiedChain struct {
	roots   *x509.CertPool
	expires time.Time
}

// withFrontProxyCache puts a frontProxyAuthenticator in front of the delegated authenticator built from rh.
func withFrontProxyCache(delegated authenticator.Request, rh *authenticatorfactory.RequestHeaderConfig, clk clock.PassiveClock) authenticator.Request {
	if rh == nil || rh.CAContentProvider == nil {
		return delegated
	}
	fp := newFrontProxyAuthenticator(rh, clk)
	return group.NewAuthenticatedGroupAdder(unionauth.New(fp, delegated))
}

func newFrontProxyAuthenticator(rh *authenticatorfactory.RequestHeaderConfig, clk clock.PassiveClock) *frontProxyAuthenticator {
	return &frontProxyAuthenticator{
		verifyOptions: rh.CAContentProvider.VerifyOptions,
		allowedNames:  rh.AllowedClientNames,
		headers:       headerrequest.NewDynamic(rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders, rh.ExtraHeaderPrefixes),
		clock:         clk,
		verify: func(leaf *x509.Certificate, opts x509.VerifyOptions) error {
			_, err := leaf.Verify(opts)
			return err
		},
		verified: map[[sha256.Size]byte]verifiedChain{},
	}
}

// AuthenticateRequest returns the user named by the request headers when the peer's chain is a verified
// front proxy; otherwise not authenticated, without an error, so the next authenticator decides.
func (a *frontProxyAuthenticator) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	opts, ok := a.verifyOptions()
	if !ok || !a.chainVerified(req.TLS.PeerCertificates, opts) {
		return nil, false, nil
	}
	if names := a.allowedNames.Value(); len(names) > 0 && !slices.Contains(names, req.TLS.PeerCertificates[0].Subject.CommonName) {
		return nil, false, nil
	}
	return a.headers.AuthenticateRequest(req)
}

func (a *frontProxyAuthenticator) chainVerified(chain []*x509.Certificate, opts x509.VerifyOptions) bool {
	now := a.clock.Now()
	h := sha256.New()
	notAfter := now.Add(verifiedChainTTL)
	for _, c := range chain {
		h.Write(c.Raw)
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])

	a.mu.Lock()
	v, ok := a.verified[key]
	a.mu.Unlock()
	if ok && v.roots == opts.Roots && now.Before(v.expires) {
		return true
	}

	if opts.Intermediates == nil && len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	opts.CurrentTime = now
	if a.verify(chain[0], opts) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerifiedChains {
		clear(a.verified)
	}
	a.verified[key] = verifiedChain{roots: opts.Roots, expires: notAfter}
	a.mu.Unlock()
	return true
}
