package query_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
)

var gsGVR = queryv1.SchemeGroupVersion.WithResource("gamesessions")

// TestQueryGameSessions: gamesessions.query.playersessions.dev lists game sessions by fleet, status, seats
// available and properties, pages them with continue tokens bound to their selection, watches a selection
// (a game session leaving it is DELETED, one entering it ADDED), and kubectl reads it as it reads the CRD.
func TestQueryGameSessions(t *testing.T) {
	e := startEnv(t)
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "games"}})).To(Succeed())
	mk := func(name, fleet, mode string, endpoint bool, policy gamev1.PlayerSessionCreationPolicy) {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "games", Name: name},
			Spec: gamev1.GameSessionSpec{FleetID: fleet, MaximumPlayerSessionCount: 4, PlayerSessionCreationPolicy: policy,
				GameProperties: []gamev1.GameProperty{{Key: "mode", Value: mode}}}}
		if endpoint {
			gs.Spec.IPAddress, gs.Spec.Port = "10.0.0.1", 7777
		}
		g.Expect(e.admin.Create(ctx, gs)).To(Succeed())
	}
	mk("a1", "fleet-a", "duel", true, gamev1.PlayerSessionCreationPolicyAcceptAll)
	mk("a2", "fleet-a", "brawl", true, gamev1.PlayerSessionCreationPolicyAcceptAll)
	mk("a3", "fleet-a", "duel", true, gamev1.PlayerSessionCreationPolicyDenyAll)
	mk("b1", "fleet-b", "duel", false, gamev1.PlayerSessionCreationPolicyAcceptAll)
	gs := e.dyn.Resource(gsGVR).Namespace("games")
	names := func(g Gomega, selector string) []string {
		list, err := gs.List(ctx, metav1.ListOptions{FieldSelector: selector})
		g.Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, it := range list.Items {
			out = append(out, it.GetName())
		}
		return out
	}
	g.Eventually(func(g Gomega) {
		g.Expect(names(g, "fleetId=fleet-a,status=ACTIVE")).To(ConsistOf("a1", "a2", "a3"))
		g.Expect(names(g, "status=ACTIVATING")).To(ConsistOf("b1"))
		g.Expect(names(g, "spec.fleetId=fleet-a,hasAvailablePlayerSessions=true")).To(ConsistOf("a1", "a2"))
		g.Expect(names(g, "gameSessionProperties.mode=duel,status.status=ACTIVE")).To(ConsistOf("a1", "a3"))
		g.Expect(names(g, "metadata.name=b1")).To(ConsistOf("b1"))
		g.Expect(names(g, "fleetId=fleet-a,fleetId=fleet-b")).To(BeEmpty())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	_, err := gs.List(ctx, metav1.ListOptions{FieldSelector: "players=3"})
	g.Expect(err).To(MatchError(ContainSubstring("field label not supported")))
	_, err = gs.List(ctx, metav1.ListOptions{FieldSelector: "hasAvailablePlayerSessions=maybe"})
	g.Expect(err).To(MatchError(ContainSubstring("true or false")))

	// Pages of one; a continue token serves only its own selection.
	var paged []string
	opts := metav1.ListOptions{FieldSelector: "fleetId=fleet-a", Limit: 1}
	for {
		page, err := gs.List(ctx, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(page.Items)).To(BeNumerically("<=", 1))
		for _, it := range page.Items {
			paged = append(paged, it.GetName())
		}
		if page.GetContinue() == "" {
			break
		}
		_, err = gs.List(ctx, metav1.ListOptions{FieldSelector: "fleetId=fleet-b", Continue: page.GetContinue()})
		g.Expect(err).To(HaveOccurred(), "a token of another selection")
		opts.Continue = page.GetContinue()
	}
	g.Expect(paged).To(ConsistOf("a1", "a2", "a3"))

	// A watch of the ACTIVE game sessions with seats, from the list's resourceVersion.
	list, err := gs.List(ctx, metav1.ListOptions{FieldSelector: "hasAvailablePlayerSessions=true"})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := gs.Watch(ctx, metav1.ListOptions{FieldSelector: "hasAvailablePlayerSessions=true", ResourceVersion: list.GetResourceVersion()})
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	g.Expect(e.admin.Status().Patch(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "games", Name: "a1"}},
		client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"TERMINATED"}}`)))).To(Succeed())
	mk("a4", "fleet-a", "brawl", true, gamev1.PlayerSessionCreationPolicyAcceptAll)
	var events []string
	g.Eventually(func() []string {
		select {
		case ev := <-w.ResultChan():
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				events = append(events, string(ev.Type)+" "+u.GetName())
			}
		case <-time.After(100 * time.Millisecond):
		}
		return events
	}).WithTimeout(30 * time.Second).Should(ContainElements("DELETED a1", "ADDED a4"))
	g.Expect(events).NotTo(ContainElement(HavePrefix(string(watch.Added) + " a1")))

	// kubectl, as for the CRD.
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is not on the PATH")
	}
	cmd := exec.Command("kubectl", "get", "gamesessions.query.playersessions.dev", "-n", "games", "--field-selector", "hasAvailablePlayerSessions=true", "--chunk-size=1")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.cp.Kubeconfig)
	out, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	g.Expect(string(out)).To(ContainSubstring("FLEET"))
	g.Expect(strings.Count(string(out), "fleet-a")).To(Equal(2), "%s", out) // a2 and a4
}
