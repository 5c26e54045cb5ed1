package history

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history/historytest"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// TestCrashBetweenWriteAndDelete stops a manager (as a crash would) after it wrote ended player sessions
// and their game session to the real store but before their custom resources were deleted: the API server
// refuses the deletes (a ValidatingAdmissionPolicy) until the manager is gone. The next manager writes them
// again and deletes them: one copy of each record, nothing left in etcd.
func TestCrashBetweenWriteAndDelete(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	url := historytest.Postgres(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	// Deletes of both kinds are refused while the policy is bound.
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "no-deletes"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Delete},
					Rule:       admissionv1.Rule{APIGroups: []string{gamev1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{"playersessions", "gamesessions"}},
				},
			}}},
			Validations: []admissionv1.Validation{{Expression: "false", Message: "the manager crashes before it deletes"}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "no-deletes"},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "no-deletes", ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}},
	}
	g.Expect(admin.Create(ctx, policy)).To(Succeed())
	g.Expect(admin.Create(ctx, binding)).To(Succeed())
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
	g.Expect(admin.Create(ctx, probe)).To(Succeed())
	g.Eventually(func() error { // the policy is in force
		ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "probe", Name: "probe"}, Spec: gamev1.PlayerSessionSpec{GameSessionName: "none", PlayerID: "p"}}
		if err := admin.Create(ctx, ps); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return admin.Delete(ctx, ps)
	}).WithTimeout(20 * time.Second).Should(MatchError(ContainSubstring("the manager crashes before it deletes")))

	first := startArchiver(t, cp, url)
	const crashNS, players = "crash", 4
	gm := startGame(g, admin, crashNS, "fleet-c", players)
	gm.end(g)

	conn, err := pgx.Connect(ctx, url)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	// copies counts the rows of the namespace in every day table of a kind, and the distinct names among them.
	copies := func(g Gomega, kind string) (rows, distinct int) {
		days, err := conn.Query(ctx, `SELECT to_char(day, 'YYYYMMDD') FROM ps_history_days`)
		g.Expect(err).NotTo(HaveOccurred())
		names, err := pgx.CollectRows(days, pgx.RowTo[string])
		g.Expect(err).NotTo(HaveOccurred())
		for _, d := range names {
			var n, k int
			err := conn.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT name) FROM `+kind+`_history_`+d+` WHERE namespace = $1`, crashNS).Scan(&n, &k)
			g.Expect(err).NotTo(HaveOccurred())
			rows, distinct = rows+n, distinct+k
		}
		return rows, distinct
	}

	// The first manager writes every record, then its deletes are refused: the state a crash between the
	// two steps leaves. Then it stops.
	g.Eventually(func(g Gomega) {
		n, _ := copies(g, "ps")
		g.Expect(n).To(Equal(players))
		n, _ = copies(g, "gs")
		g.Expect(n).To(Equal(1))
	}).WithTimeout(60 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) {
		ps, games := gm.remaining(g)
		g.Expect(ps).To(Equal(players))
		g.Expect(games).To(Equal(1))
	}).WithTimeout(2 * time.Second).Should(Succeed())
	first.Stop()

	// The deletes are allowed again; the next manager finishes the move: written again (the store keeps
	// one copy), then deleted.
	g.Expect(admin.Delete(ctx, binding)).To(Succeed())
	startArchiver(t, cp, url)
	g.Eventually(func(g Gomega) {
		ps, games := gm.remaining(g)
		g.Expect(ps).To(BeZero())
		g.Expect(games).To(BeZero())
	}).WithTimeout(60 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		rows, distinct := copies(g, "ps")
		g.Expect(rows).To(Equal(players))
		g.Expect(distinct).To(Equal(players))
		rows, distinct = copies(g, "gs")
		g.Expect(rows).To(Equal(1))
		g.Expect(distinct).To(Equal(1))
	}).Should(Succeed())
}
