package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// startArchiver starts a manager that moves ended sessions to the store at url one second after their game
// session ended (no leader election, no timeouts within a test).
func startArchiver(t *testing.T, cp *localcp.ControlPlane, url string) *testenv.Manager {
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true, HistoryStore: url}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	opts.Controllers.HistoryGrace = time.Second
	return testenv.StartManager(t, cp, opts)
}

// game is a game session "arena" alone in namespace ns, with players RESERVED player sessions p0, p1, ...
type game struct {
	c       client.Client
	ns      string
	gs      *gamev1.GameSession
	players int
}

// startGame creates the namespace, the game session and its player sessions, and waits until every player
// session is RESERVED.
func startGame(g Gomega, c client.Client, ns, fleet string, players int) *game {
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: fleet, MaximumPlayerSessionCount: 10, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7777}}}
	g.Expect(c.Create(ctx, gs)).To(Succeed())
	for i := range players {
		g.Expect(c.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", i)},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: fmt.Sprintf("player-%d", i)}})).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		var list gamev1.PlayerSessionList
		g.Expect(c.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(players))
		for _, ps := range list.Items {
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return &game{c: c, ns: ns, gs: gs, players: players}
}

// end makes the game session TERMINATED, as its game server would.
func (gm *game) end(g Gomega) {
	ctx := context.Background()
	g.Expect(gm.c.Get(ctx, client.ObjectKeyFromObject(gm.gs), gm.gs)).To(Succeed())
	before := gm.gs.DeepCopy()
	gm.gs.Status.Status = gamev1.GameSessionTerminated
	g.Expect(gm.c.Status().Patch(ctx, gm.gs, client.MergeFrom(before))).To(Succeed())
}

// remaining counts the player sessions and game sessions of the namespace still in etcd.
func (gm *game) remaining(g Gomega) (int, int) {
	ctx := context.Background()
	var pss gamev1.PlayerSessionList
	g.Expect(gm.c.List(ctx, &pss, client.InNamespace(gm.ns))).To(Succeed())
	var gss gamev1.GameSessionList
	g.Expect(gm.c.List(ctx, &gss, client.InNamespace(gm.ns))).To(Succeed())
	return len(pss.Items), len(gss.Items)
}
