package history

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/history/historytest"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// TestStoreDownAtTheWrite is the other side of TestCrashBetweenWriteAndDelete: the real store cannot be
// reached when ended player sessions and their game session are due to move, so the first step fails.
// Nothing is deleted: the custom resources stay, the failed writes are counted and retried, and once the
// store is back each record is written once and its custom resource deleted.
func TestStoreDownAtTheWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// The manager's store is a database of its own on the server, which this test can close to it.
	adminURL := historytest.Postgres(t)
	admin, err := pgx.Connect(ctx, adminURL)
	g.Expect(err).NotTo(HaveOccurred())
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `CREATE DATABASE store`)
	g.Expect(err).NotTo(HaveOccurred())
	url := strings.Replace(adminURL, "/postgres?", "/store?", 1)
	storeDown := func(down bool) {
		t.Helper()
		_, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE store ALLOW_CONNECTIONS %t`, !down))
		g.Expect(err).NotTo(HaveOccurred())
		if down { // and the connections the manager holds end
			_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'store'`)
			g.Expect(err).NotTo(HaveOccurred())
		}
	}

	cp := testenv.ControlPlane(t, localcp.Options{})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true, HistoryStore: url}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	opts.Controllers.HistoryGrace = time.Second
	testenv.StartManager(t, cp, opts) // the store is up at start: the migrations run

	const downNS, players = "down", 3
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: downNS}})).To(Succeed())
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: downNS, Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-d", MaximumPlayerSessionCount: 10, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7777}}}
	g.Expect(c.Create(ctx, gs)).To(Succeed())
	for i := range players {
		g.Expect(c.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: downNS, Name: fmt.Sprintf("p%d", i)},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: fmt.Sprintf("player-%d", i)}})).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		var list gamev1.PlayerSessionList
		g.Expect(c.List(ctx, &list, client.InNamespace(downNS))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(players))
		for _, ps := range list.Items {
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())
	remaining := func(g Gomega) (int, int) {
		var pss gamev1.PlayerSessionList
		g.Expect(c.List(ctx, &pss, client.InNamespace(downNS))).To(Succeed())
		var gss gamev1.GameSessionList
		g.Expect(c.List(ctx, &gss, client.InNamespace(downNS))).To(Succeed())
		return len(pss.Items), len(gss.Items)
	}

	// The store goes away, then the game ends: every write fails and nothing leaves etcd.
	storeDown(true)
	failedBefore := archiveErrors(g)
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
	before := gs.DeepCopy()
	gs.Status.Status = gamev1.GameSessionTerminated
	g.Expect(c.Status().Patch(ctx, gs, client.MergeFrom(before))).To(Succeed())
	g.Eventually(func() float64 { return archiveErrors(g) - failedBefore }).WithTimeout(30*time.Second).
		Should(BeNumerically(">=", players+1), "every record's write was tried and failed")
	g.Consistently(func(g Gomega) {
		ps, games := remaining(g)
		g.Expect(ps).To(Equal(players))
		g.Expect(games).To(Equal(1))
	}).WithTimeout(3 * time.Second).Should(Succeed())

	// The store is back: each record is written, once, and its custom resource deleted.
	storeDown(false)
	g.Eventually(func(g Gomega) {
		ps, games := remaining(g)
		g.Expect(ps).To(BeZero())
		g.Expect(games).To(BeZero())
	}).WithTimeout(90 * time.Second).Should(Succeed())
	store, err := pgx.Connect(ctx, url)
	g.Expect(err).NotTo(HaveOccurred())
	defer store.Close(ctx)
	var day string
	g.Expect(store.QueryRow(ctx, `SELECT to_char(day, 'YYYYMMDD') FROM ps_history_days`).Scan(&day)).To(Succeed())
	for kind, want := range map[string]int{"ps": players, "gs": 1} {
		var rows, distinct int
		g.Expect(store.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT name) FROM `+kind+`_history_`+day+` WHERE namespace = $1`, downNS).
			Scan(&rows, &distinct)).To(Succeed())
		g.Expect([]int{rows, distinct}).To(Equal([]int{want, want}), kind)
	}
}

// archiveErrors reads playersessions_history_archive_errors_total from the manager's registry.
func archiveErrors(g Gomega) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == "playersessions_history_archive_errors_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
