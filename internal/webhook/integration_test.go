package webhook_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// warnings collects the warnings the API server returns to a client.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

// TestIntegrationCreateTimeRefusal runs the manager with its webhook against a local control plane where
// config/webhook is installed, and creates player sessions as kubectl would.
func TestIntegrationCreateTimeRefusal(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")}})
	opts := controllers.DefaultOptions()
	testenv.StartManager(t, cp, manager.Options{
		Controllers: opts, Clock: clock.RealClock{}, MetricsAddr: "0", ProbeAddr: "0",
		WebhookHost: cp.WebhookHost, WebhookPort: cp.WebhookPort, WebhookCertDir: cp.WebhookCertDir, WebhookClientCAName: cp.WebhookClientCAName,
	})
	ctx := context.Background()

	w := &warnings{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	const ns = "default"
	newGS := func(name string, max int32, policy gamev1.PlayerSessionCreationPolicy) *gamev1.GameSession {
		gs := &gamev1.GameSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-1", MaximumPlayerSessionCount: max, PlayerSessionCreationPolicy: policy,
				Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}},
		}
		g.Expect(c.Create(ctx, gs)).To(Succeed())
		g.Eventually(func() gamev1.GameSessionStatusValue {
			_ = c.Get(ctx, client.ObjectKeyFromObject(gs), gs)
			return gs.Status.Status
		}, 30*time.Second, 50*time.Millisecond).Should(Equal(gamev1.GameSessionActive))
		return gs
	}
	n := 0
	create := func(game string) error {
		n++
		return c.Create(ctx, &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p-%d", n)},
			Spec:       gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: fmt.Sprintf("player-%d", n)},
		})
	}

	newGS("closed", 5, gamev1.PlayerSessionCreationPolicyDenyAll)
	// The webhook is advisory (failurePolicy Ignore): wait until the manager's webhook server answers.
	var err1 error
	g.Eventually(func() error { err1 = create("closed"); return err1 }, 30*time.Second, 100*time.Millisecond).Should(HaveOccurred())
	g.Expect(err1.Error()).To(ContainSubstring("PlayerSessionCreationDenied: Game session closed does not accept player sessions (DENY_ALL)"))
	// The reason arrives as data, a StatusCause kube-apiserver passed through from the webhook's answer.
	reason, message, ok := admission.RefusalOf(err1)
	g.Expect(ok).To(BeTrue(), "a StatusCause carrying the reason")
	g.Expect(reason).To(Equal(gamev1.PlayerSessionCreationDeniedReason))
	g.Expect(message).To(HavePrefix("Game session closed does not accept"))

	t.Run("refusals are counted, dry runs are not", func(t *testing.T) {
		g := NewWithT(t)
		before := refusedCount(t, gamev1.PlayerSessionCreationDeniedReason)
		g.Expect(before).To(BeNumerically(">=", 1))
		dry := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dry"},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "closed", PlayerID: "dry"}}
		g.Expect(c.Create(ctx, dry, client.DryRunAll)).To(MatchError(ContainSubstring("PlayerSessionCreationDenied")))
		g.Expect(refusedCount(t, gamev1.PlayerSessionCreationDeniedReason)).To(Equal(before))
		g.Expect(create("closed")).To(HaveOccurred())
		g.Expect(refusedCount(t, gamev1.PlayerSessionCreationDeniedReason)).To(Equal(before + 1))
	})

	t.Run("full", func(t *testing.T) {
		g := NewWithT(t)
		newGS("small", 2, gamev1.PlayerSessionCreationPolicyAcceptAll)
		g.Expect(create("small")).To(Succeed())
		g.Expect(create("small")).To(Succeed())
		reserved := func() int {
			var list gamev1.PlayerSessionList
			_ = c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"spec.gameSessionName": "small"})
			n := 0
			for _, ps := range list.Items {
				if ps.Status.Status == gamev1.PlayerSessionReserved {
					n++
				}
			}
			return n
		}
		g.Eventually(reserved, 30*time.Second, 50*time.Millisecond).Should(Equal(2))
		err := create("small")
		g.Expect(err).To(HaveOccurred(), "refused at create, not later")
		reason, _, _ := admission.RefusalOf(err)
		g.Expect(reason).To(Equal(gamev1.GameSessionFullReason), err.Error())
		g.Expect(err.Error()).To(ContainSubstring("is full (2 of 2 seats taken)"))
		var list gamev1.PlayerSessionList
		g.Expect(c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"spec.gameSessionName": "small"})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(2), "the refused create left nothing behind")
	})

	t.Run("ended", func(t *testing.T) {
		g := NewWithT(t)
		gs := newGS("ended", 5, gamev1.PlayerSessionCreationPolicyAcceptAll)
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"TERMINATED"}}`))
		g.Expect(c.Status().Patch(ctx, gs, patch)).To(Succeed())
		g.Eventually(func() string {
			err := create("ended")
			if err == nil {
				return ""
			}
			r, _, _ := admission.RefusalOf(err)
			return r
		}, 10*time.Second, 50*time.Millisecond).Should(Equal(gamev1.InvalidGameSessionStatusReason))
	})

	t.Run("missing game session: let through with a warning", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(create("not-yet")).To(Succeed())
		g.Expect(w.all()).To(ContainSubstring("game session not-yet does not exist; the player session is refused (GameSessionNotFound) unless it appears within 1m0s"))
	})

	t.Run("room left: let through", func(t *testing.T) {
		g := NewWithT(t)
		newGS("open", 5, gamev1.PlayerSessionCreationPolicyAcceptAll)
		g.Expect(create("open")).To(Succeed())
	})

	t.Run("only kube-apiserver's client certificate is answered", func(t *testing.T) {
		// Every refusal above came through kube-apiserver, which presents the client certificate of its
		// admission configuration. A caller that reaches the port without it learns nothing (before, curl
		// without a certificate got an AdmissionReview naming a missing game session).
		g := NewWithT(t)
		review := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE",` +
			`"kind":{"group":"game.playersessions.dev","version":"v1alpha1","kind":"PlayerSession"},` +
			`"resource":{"group":"game.playersessions.dev","version":"v1alpha1","resource":"playersessions"},` +
			`"namespace":"default","object":{"apiVersion":"game.playersessions.dev/v1alpha1","kind":"PlayerSession",` +
			`"metadata":{"name":"probe","namespace":"default"},"spec":{"gameSessionName":"closed","playerId":"probe"}}}}`)
		url := fmt.Sprintf("https://%s/validate-game-playersessions-dev-v1alpha1-playersession", net.JoinHostPort(cp.WebhookHost, strconv.Itoa(cp.WebhookPort)))
		post := func(cert *tls.Certificate) error {
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				InsecureSkipVerify:   true, // the serving certificate is not what is tested
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}}}
			resp, err := hc.Post(url, "application/json", bytes.NewReader(review))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("answered %d: %s", resp.StatusCode, body)
		}
		g.Expect(post(&tls.Certificate{})).To(MatchError(ContainSubstring("certificate required")))
		g.Expect(post(selfSignedClientCert(t))).To(MatchError(Or(ContainSubstring("unknown certificate authority"), ContainSubstring("bad certificate"))))
	})
}

// refusedCount reads playersessions_admissions_refused_total{reason} from controller-runtime's registry.
func refusedCount(t *testing.T, reason string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "playersessions_admissions_refused_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// selfSignedClientCert is a client certificate that no CA the webhook trusts signed.
func selfSignedClientCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kube-apiserver-webhook-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
