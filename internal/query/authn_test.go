package query

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(t testing.TB, parent *testCert, cn string, notAfter time.Time) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key}
}

func caContent(t testing.TB, ca *testCert) dynamiccertificates.CAContentProvider {
	t.Helper()
	p, err := dynamiccertificates.NewStaticCAContent("test", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFrontProxyAuthenticator(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	year := now.AddDate(1, 0, 0)
	ca := issue(t, nil, "front-proxy-ca", year)
	otherCA := issue(t, nil, "other-ca", year)
	proxy := issue(t, ca, "front-proxy-client", year)
	soonExpiring := issue(t, ca, "front-proxy-client", now.Add(time.Minute))
	wrongName := issue(t, ca, "someone-else", year)
	rogue := issue(t, otherCA, "front-proxy-client", year)

	request := func(c *testCert) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://localhost/apis", nil)
		r.Header.Set("X-Remote-User", "alice")
		r.Header.Set("X-Remote-Group", "players")
		if c != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.cert}}
		}
		return r
	}
	type step struct {
		cert        *testCert
		advance     time.Duration
		rotateCA    *testCert // the requestheader CA changes to this before the step
		wantUser    string    // "" = not authenticated
		wantVerify  int       // chain verifications so far
		description string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"verified once, then from the cache", []step{
			{cert: proxy, wantUser: "alice", wantVerify: 1},
			{cert: proxy, wantUser: "alice", wantVerify: 1},
			{cert: proxy, advance: time.Minute, wantUser: "alice", wantVerify: 1},
		}},
		{"verified again after the TTL", []step{
			{cert: proxy, wantUser: "alice", wantVerify: 1},
			{cert: proxy, advance: verifiedChainTTL, wantUser: "alice", wantVerify: 2},
		}},
		{"never trusted past the certificate's NotAfter", []step{
			{cert: soonExpiring, wantUser: "alice", wantVerify: 1},
			{cert: soonExpiring, advance: 2 * time.Minute, wantUser: "", wantVerify: 2},
		}},
		{"a rotated CA verifies again and refuses the old chain", []step{
			{cert: proxy, wantUser: "alice", wantVerify: 1},
			{cert: proxy, rotateCA: otherCA, wantUser: "", wantVerify: 2},
			{cert: rogue, wantUser: "alice", wantVerify: 3},
		}},
		{"a chain from another CA is refused every time", []step{
			{cert: rogue, wantUser: "", wantVerify: 1},
			{cert: rogue, wantUser: "", wantVerify: 2},
		}},
		{"a common name not allowed is refused", []step{
			{cert: wrongName, wantUser: "", wantVerify: 1},
		}},
		{"no client certificate", []step{
			{cert: nil, wantUser: "", wantVerify: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(now)
			a := newFrontProxyAuthenticator(&authenticatorfactory.RequestHeaderConfig{
				UsernameHeaders:     headerrequest.StaticStringSlice{"X-Remote-User"},
				UIDHeaders:          headerrequest.StaticStringSlice{"X-Remote-Uid"},
				GroupHeaders:        headerrequest.StaticStringSlice{"X-Remote-Group"},
				ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
				CAContentProvider:   caContent(t, ca),
				AllowedClientNames:  headerrequest.StaticStringSlice{"front-proxy-client"},
			}, clk)
			verifications := 0
			verify := a.verify
			a.verify = func(leaf *x509.Certificate, opts x509.VerifyOptions) error {
				verifications++
				return verify(leaf, opts)
			}
			for i, s := range tt.steps {
				clk.SetTime(clk.Now().Add(s.advance))
				if s.rotateCA != nil {
					a.verifyOptions = caContent(t, s.rotateCA).VerifyOptions
				}
				resp, ok, err := a.AuthenticateRequest(request(s.cert))
				if err != nil {
					t.Fatalf("step %d: error %v (the next authenticator must decide, so no error)", i, err)
				}
				got := ""
				if ok {
					got = resp.User.GetName()
					if g := resp.User.GetGroups(); len(g) != 1 || g[0] != "players" {
						t.Errorf("step %d: groups %v, want [players]", i, g)
					}
				}
				if got != s.wantUser {
					t.Errorf("step %d: user %q, want %q", i, got, s.wantUser)
				}
				if verifications != s.wantVerify {
					t.Errorf("step %d: %d chain verifications, want %d", i, verifications, s.wantVerify)
				}
			}
		})
	}
}

func BenchmarkFrontProxyAuthenticator(b *testing.B) {
	now := time.Now()
	ca := issue(b, nil, "front-proxy-ca", now.AddDate(1, 0, 0))
	proxy := issue(b, ca, "front-proxy-client", now.AddDate(1, 0, 0))
	p := caContent(b, ca)
	rh := &authenticatorfactory.RequestHeaderConfig{
		UsernameHeaders: headerrequest.StaticStringSlice{"X-Remote-User"}, UIDHeaders: headerrequest.StaticStringSlice{},
		GroupHeaders: headerrequest.StaticStringSlice{"X-Remote-Group"}, ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
		CAContentProvider: p, AllowedClientNames: headerrequest.StaticStringSlice{"front-proxy-client"},
	}
	for _, c := range []struct {
		name   string
		cached bool
	}{{"verified every time", false}, {"cached", true}} {
		b.Run(c.name, func(b *testing.B) {
			a := newFrontProxyAuthenticator(rh, clocktesting.NewFakePassiveClock(now))
			for b.Loop() {
				r, _ := http.NewRequest(http.MethodGet, "https://localhost/apis", nil)
				r.Header.Set("X-Remote-User", "alice")
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{proxy.cert}}
				if !c.cached {
					clear(a.verified)
				}
				if _, ok, _ := a.AuthenticateRequest(r); !ok {
					b.Fatal("not authenticated")
				}
			}
		})
	}
}

// TestAuthenticationReady: the replica is not ready until its query server has loaded the front proxy's
// CA from kube-system/extension-apiserver-authentication (k8s.io/apiserver's own controller, as
// NewServer builds it): before, every request kube-apiserver's aggregator proxies would be anonymous and
// refused. A server built without a front proxy CA has nothing to wait for.
func TestAuthenticationReady(t *testing.T) {
	g := NewWithT(t)
	g.Expect((&Server{}).AuthenticationReady(nil)).To(Succeed())

	clients := kubefake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		Data: map[string]string{"client-ca-file": "not this one"}})
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("request-header", "kube-system", "extension-apiserver-authentication", "requestheader-client-ca-file", clients)
	g.Expect(err).NotTo(HaveOccurred())
	s := &Server{frontProxyCA: ca}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ca.Run(ctx, 1)
	g.Consistently(func() error { return s.AuthenticationReady(nil) }).WithTimeout(300 * time.Millisecond).Should(MatchError(ContainSubstring("not loaded yet")))

	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issue(t, nil, "front-proxy-ca", time.Now().AddDate(1, 0, 0)).cert.Raw})
	_, err = clients.CoreV1().ConfigMaps("kube-system").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		Data: map[string]string{"client-ca-file": "not this one", "requestheader-client-ca-file": string(pemCA)}}, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() error { return s.AuthenticationReady(nil) }).WithTimeout(10 * time.Second).Should(Succeed())
}
