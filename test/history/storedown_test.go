package history

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

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
	startArchiver(t, cp, url) // the store is up at start: the migrations run
	const downNS, players = "down", 3
	gm := startGame(g, c, downNS, "fleet-d", players)

	// The store goes away, then the game ends: every write fails and nothing leaves etcd.
	storeDown(true)
	failedBefore := archiveErrors(g)
	gm.end(g)
	g.Eventually(func() float64 { return archiveErrors(g) - failedBefore }).WithTimeout(30*time.Second).
		Should(BeNumerically(">=", players+1), "every record's write was tried and failed")
	g.Consistently(func(g Gomega) {
		ps, games := gm.remaining(g)
		g.Expect(ps).To(Equal(players))
		g.Expect(games).To(Equal(1))
	}).WithTimeout(3 * time.Second).Should(Succeed())

	// The store is back: each record is written, once, and its custom resource deleted.
	storeDown(false)
	g.Eventually(func(g Gomega) {
		ps, games := gm.remaining(g)
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
