package manager_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/metrics"
	"github.com/playersessions/operator/internal/testenv"
)

// TestCacheHoldsOnlyAccessKeySecrets: the manager reads Secrets only to find GameLift access keys, and its
// cache lists and watches only the labelled ones of the key namespace: no other Secret of the cluster (a
// tenant's, even labelled) enters its memory, as its RBAC allows no other.
func TestCacheHoldsOnlyAccessKeySecrets(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gamelift.CreateAccessKey(ctx, admin, "keys", "key", "default", "AKIDkey", "s")).To(Succeed())
	g.Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "keys", Name: "other"}})).To(Succeed())
	g.Expect(admin.Create(ctx, gamelift.NewAccessKey("default", "planted", "default", "AKIDplanted", "s"))).To(Succeed())
	mgr, _, err := manager.New(ctx, cp.Config, manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		GameLiftAddr: "127.0.0.1:0", GameLiftKeyNamespace: "keys", DisableAgones: true, SkipNameValidation: true})
	g.Expect(err).NotTo(HaveOccurred())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	g.Eventually(func(g Gomega) {
		var list corev1.SecretList
		g.Expect(mgr.GetCache().List(ctx, &list)).To(Succeed())
		var names []string
		for _, s := range list.Items {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		g.Expect(names).To(Equal([]string{"keys/key"}))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestEnsureTokenKeyConcurrentStarts: replicas starting at the same moment all end up with the one key the
// first create stored, so a continue token from one replica pages on another.
func TestEnsureTokenKeyConcurrentStarts(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	ctx := context.Background()
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "playersessions-system"}})).To(Succeed())
	key := types.NamespacedName{Namespace: "playersessions-system", Name: "playersessions-query-token-key"}
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = index.EnsureTokenKey(ctx, c, key)
		}()
	}
	wg.Wait()
	for i := range keys {
		g.Expect(errs[i]).NotTo(HaveOccurred())
		g.Expect(keys[i]).To(HaveLen(32))
		g.Expect(keys[i]).To(Equal(keys[0]), "replica %d got another key", i)
	}
	var s corev1.Secret
	g.Expect(c.Get(ctx, key, &s)).To(Succeed())
	g.Expect(s.Data[index.TokenKeyField]).To(Equal(keys[0]))
	// A later start reads the same key.
	again, err := index.EnsureTokenKey(ctx, c, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(keys[0]))
	// A Secret without a usable key is an error, not a silent new key.
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: "broken"}})).To(Succeed())
	_, err = index.EnsureTokenKey(ctx, c, types.NamespacedName{Namespace: key.Namespace, Name: "broken"})
	g.Expect(err).To(MatchError(ContainSubstring("holds no continue-token key")))
}

// TestIndexesLearnOfRelists: the cache's PlayerSession and GameSession informers list through the lister
// that tells the indexes of relists (internal/relists): the first lists are counted (only that lister
// counts them), and the index, held while its first list is applied, lets go; the index reads its
// informer's store to serve snapshots past its newest write.
func TestIndexesLearnOfRelists(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := testutil.ToFloat64(metrics.Relists.WithLabelValues("PlayerSession"))
	beforeGames := testutil.ToFloat64(metrics.Relists.WithLabelValues("GameSession"))
	mgr, ix, err := manager.New(ctx, cp.Config, manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		GameLiftAddr: "127.0.0.1:0", DisableAgones: true, SkipNameValidation: true})
	g.Expect(err).NotTo(HaveOccurred())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	g.Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	g.Eventually(func(g Gomega) {
		g.Expect(ix.Relisting()).To(BeFalse())
		g.Expect(testutil.ToFloat64(metrics.Relists.WithLabelValues("PlayerSession"))).To(BeNumerically(">", before))
		g.Expect(testutil.ToFloat64(metrics.Relists.WithLabelValues("GameSession"))).To(BeNumerically(">", beforeGames))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// No player session written: the index's newest write is none, yet it holds snapshot 1 (and every one up
	// to its informer's list), since it holds what the informer's store holds: the store is its source.
	g.Expect(ix.RV()).To(BeZero())
	g.Expect(ix.WaitFor(ctx, 1)).To(Succeed())
}
