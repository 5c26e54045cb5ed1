package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/query"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/testenv"
)

var psGVR = queryv1.SchemeGroupVersion.WithResource("playersessions")

// env is a local control plane with the aggregation layer wired, and the manager (controllers and query
// API server) running against it.
type env struct {
	cp    *localcp.ControlPlane
	admin client.Client
	dyn   dynamic.Interface
}

func startEnv(t *testing.T) *env {
	t.Helper()
	port := testenv.FreePort(t)
	cp := testenv.ControlPlane(t, localcp.Options{QueryPort: port})
	opts := manager.Options{
		Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		QueryPort: port, QueryBindAddress: net.ParseIP("127.0.0.1"), QueryCertDir: cp.ServingCertDir, QueryKubeconfig: cp.Kubeconfig,
		QuerySnapshotWindow: time.Minute,
	}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	testenv.StartManager(t, cp, opts)
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cp: cp, admin: admin, dyn: dynamic.NewForConfigOrDie(cp.Config)}

	// Ready means: the APIService is Available, discovery lists the resource, and a list succeeds.
	ctx := context.Background()
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		var apiService unstructured.Unstructured
		apiService.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"})
		g.Expect(admin.Get(ctx, client.ObjectKey{Name: localcp.QueryAPIService}, &apiService)).To(Succeed())
		conds, _, _ := unstructured.NestedSlice(apiService.Object, "status", "conditions")
		g.Expect(fmt.Sprint(conds)).To(ContainSubstring("status:True type:Available"))
		_, err := e.dyn.Resource(psGVR).List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	return e
}

func (e *env) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "arena"},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-q", MaximumPlayerSessionCount: 10, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}
		if err := e.admin.Create(ctx, gs); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"alice", "bob", "carol"} {
			ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: p + "-arena", Labels: map[string]string{"player": p}},
				Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: p}}
			if err := e.admin.Create(ctx, ps); err != nil {
				t.Fatal(err)
			}
		}
	}
	NewWithT(t).Eventually(func(g Gomega) {
		list, err := e.dyn.Resource(psGVR).List(ctx, metav1.ListOptions{FieldSelector: "status=RESERVED"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(list.Items).To(HaveLen(6))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

func itemNames(list *unstructured.UnstructuredList) []string {
	var out []string
	for _, it := range list.Items {
		out = append(out, it.GetNamespace()+"/"+it.GetName())
	}
	return out
}

func TestQueryAPI(t *testing.T) {
	e := startEnv(t)
	e.seed(t)
	ctx := context.Background()
	ps := e.dyn.Resource(psGVR)

	t.Run("discovery", func(t *testing.T) {
		dc := discovery.NewDiscoveryClientForConfigOrDie(e.cp.Config)
		res, err := dc.ServerResourcesForGroupVersion(queryv1.SchemeGroupVersion.String())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "playersessions" })
		if i < 0 {
			t.Fatalf("playersessions not discovered: %+v", res.APIResources)
		}
		r := res.APIResources[i]
		slices.Sort(r.Verbs)
		if !r.Namespaced || !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("resource %+v", r)
		}
	})

	t.Run("get", func(t *testing.T) {
		obj, err := ps.Namespace("team-a").Get(ctx, "alice-arena", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		player, _, _ := unstructured.NestedString(obj.Object, "spec", "playerId")
		id, _, _ := unstructured.NestedString(obj.Object, "status", "playerSessionId")
		if player != "alice" || !strings.HasPrefix(id, "psess-") {
			t.Errorf("got %v", obj.Object)
		}
		if _, err := ps.Namespace("team-a").Get(ctx, "nobody", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("missing: got %v", err)
		}
	})

	aliceA, err := ps.Namespace("team-a").Get(ctx, "alice-arena", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alicePSID, _, _ := unstructured.NestedString(aliceA.Object, "status", "playerSessionId")
	gsidA, _, _ := unstructured.NestedString(aliceA.Object, "status", "gameSessionId")

	t.Run("selectors", func(t *testing.T) {
		for _, tt := range []struct {
			ns, fields, labels string
			want               []string
		}{
			{"", "playerId=alice", "", []string{"team-a/alice-arena", "team-b/alice-arena"}},
			{"team-b", "playerId=alice", "", []string{"team-b/alice-arena"}},
			{"", "spec.playerId=alice", "", []string{"team-a/alice-arena", "team-b/alice-arena"}},
			{"", "playerSessionId=" + alicePSID, "", []string{"team-a/alice-arena"}},
			{"", "gameSessionId=" + gsidA, "", []string{"team-a/alice-arena", "team-a/bob-arena", "team-a/carol-arena"}},
			{"team-b", "gameSessionName=arena", "", []string{"team-b/alice-arena", "team-b/bob-arena", "team-b/carol-arena"}},
			{"", "status=RESERVED,playerId=bob", "", []string{"team-a/bob-arena", "team-b/bob-arena"}},
			{"", "gameSessionId=" + gsidA + ",status=RESERVED,playerId=carol", "", []string{"team-a/carol-arena"}},
			{"", "status=ACTIVE", "", nil},
			{"", "metadata.name=bob-arena", "", []string{"team-a/bob-arena", "team-b/bob-arena"}},
			{"", "metadata.namespace=team-b,playerId=carol", "", []string{"team-b/carol-arena"}},
			{"team-a", "", "player in (alice,bob)", []string{"team-a/alice-arena", "team-a/bob-arena"}},
			{"", "playerId=alice", "player=bob", nil},
		} {
			list, err := ps.Namespace(tt.ns).List(ctx, metav1.ListOptions{FieldSelector: tt.fields, LabelSelector: tt.labels})
			if err != nil {
				t.Fatalf("%s %q %q: %v", tt.ns, tt.fields, tt.labels, err)
			}
			if got := itemNames(list); !slices.Equal(got, tt.want) {
				t.Errorf("%s %q %q: got %v, want %v", tt.ns, tt.fields, tt.labels, got, tt.want)
			}
		}
		_, err := ps.List(ctx, metav1.ListOptions{FieldSelector: "spec.fleet=x"})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "supported: metadata.name, metadata.namespace, playerSessionId, gameSessionId, gameSessionName, playerId, status") {
			t.Errorf("unknown field: got %v", err)
		}
		if _, err := ps.List(ctx, metav1.ListOptions{FieldSelector: "playerId!=alice"}); !apierrors.IsBadRequest(err) {
			t.Errorf("inequality: got %v", err)
		}
	})

	t.Run("paging across a changing set", func(t *testing.T) {
		first, err := ps.List(ctx, metav1.ListOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		got := itemNames(first)
		// Change the set between pages: delete one not yet returned, add one.
		if err := e.admin.Delete(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "bob-arena"}}); err != nil {
			t.Fatal(err)
		}
		if err := e.admin.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "zed-arena"},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: "zed"}}); err != nil {
			t.Fatal(err)
		}
		NewWithT(t).Eventually(func() error {
			_, err := ps.Namespace("team-a").Get(ctx, "zed-arena", metav1.GetOptions{})
			return err
		}).WithTimeout(10 * time.Second).Should(Succeed())
		cont := first.GetContinue()
		for cont != "" {
			page, err := ps.List(ctx, metav1.ListOptions{Limit: 2, Continue: cont})
			if err != nil {
				t.Fatal(err)
			}
			if page.GetResourceVersion() != first.GetResourceVersion() {
				t.Errorf("page at resourceVersion %s, want the snapshot %s", page.GetResourceVersion(), first.GetResourceVersion())
			}
			got = append(got, itemNames(page)...)
			cont = page.GetContinue()
		}
		want := []string{"team-a/alice-arena", "team-a/bob-arena", "team-a/carol-arena", "team-b/alice-arena", "team-b/bob-arena", "team-b/carol-arena"}
		if !slices.Equal(got, want) {
			t.Errorf("pages = %v, want the snapshot %v", got, want)
		}

		// Token errors.
		if _, err := ps.List(ctx, metav1.ListOptions{Limit: 2, Continue: "garbage"}); !apierrors.IsBadRequest(err) {
			t.Errorf("malformed token: %v", err)
		}
		if _, err := ps.List(ctx, metav1.ListOptions{Limit: 2, Continue: first.GetContinue(), FieldSelector: "playerId=alice"}); !apierrors.IsBadRequest(err) {
			t.Errorf("token with other selectors: %v", err)
		}
	})

	t.Run("watch", func(t *testing.T) {
		w, err := ps.Namespace("team-a").Watch(ctx, metav1.ListOptions{FieldSelector: "playerId=dave"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := e.admin.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "dave-arena"},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: "dave"}}); err != nil {
			t.Fatal(err)
		}
		seen := map[watch.EventType]bool{}
		deadline := time.After(20 * time.Second)
		for !seen[watch.Added] || !seen[watch.Modified] {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("watch closed")
				}
				if o, ok := ev.Object.(*unstructured.Unstructured); !ok || o.GetName() != "dave-arena" {
					t.Fatalf("unexpected event %v %v", ev.Type, ev.Object)
				}
				seen[ev.Type] = true // ADDED, then MODIFIED when it becomes RESERVED
			case <-deadline:
				t.Fatalf("events seen: %v", seen)
			}
		}
	})

	t.Run("informer with watch-list", func(t *testing.T) {
		// client-go's reflector asks for the initial state as a watch (sendInitialEvents=true,
		// resourceVersionMatch=NotOlderThan) and waits for the initial-events-end bookmark. Without it, it
		// would hang until the watch times out and then fall back to a list: the recorded requests show it
		// did neither.
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, true)
		var mu sync.Mutex
		var requests []string
		cfg := rest.CopyConfig(e.cp.Config)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if strings.Contains(req.URL.Path, "/query.playersessions.dev/") {
					mu.Lock()
					requests = append(requests, req.URL.RawQuery)
					mu.Unlock()
				}
				return rt.RoundTrip(req)
			})
		})
		factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dynamic.NewForConfigOrDie(cfg), 0, "team-a",
			func(o *metav1.ListOptions) { o.FieldSelector = "gameSessionName=arena" })
		inf := factory.ForResource(psGVR)
		stop := make(chan struct{})
		defer close(stop)
		factory.Start(stop)
		syncCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if !toolscache.WaitForCacheSync(syncCtx.Done(), inf.Informer().HasSynced) {
			t.Fatal("the informer did not sync")
		}
		initial, _ := inf.Lister().List(labels.Everything())
		var got []string
		for _, o := range initial {
			got = append(got, o.(*unstructured.Unstructured).GetName())
		}
		slices.Sort(got)
		if want := []string{"alice-arena", "bob-arena", "carol-arena", "dave-arena", "zed-arena"}; !slices.Equal(got, want) {
			t.Errorf("initial state %v, want %v", got, want)
		}
		mu.Lock()
		first := slices.Clone(requests)
		mu.Unlock()
		if len(first) == 0 || !strings.Contains(first[0], "sendInitialEvents=true") || !strings.Contains(first[0], "resourceVersionMatch=NotOlderThan") || !strings.Contains(first[0], "watch=true") {
			t.Fatalf("requests %v: want a watch-list first", first)
		}
		for _, q := range first {
			if !strings.Contains(q, "watch=true") {
				t.Errorf("request %q is not a watch: the reflector fell back to a list", q)
			}
		}

		// Then the changes stream in.
		if err := e.admin.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "erin-arena"},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: "erin"}}); err != nil {
			t.Fatal(err)
		}
		NewWithT(t).Eventually(func(g Gomega) {
			o, err := inf.Lister().ByNamespace("team-a").Get("erin-arena")
			g.Expect(err).NotTo(HaveOccurred())
			status, _, _ := unstructured.NestedString(o.(*unstructured.Unstructured).Object, "status", "status")
			g.Expect(status).To(Equal("RESERVED"))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	t.Run("table", func(t *testing.T) {
		rc, err := rest.RESTClientFor(restConfigFor(e.cp.Config))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rc.Get().AbsPath("/apis/query.playersessions.dev/v1alpha1/namespaces/team-a/playersessions").
			Param("fieldSelector", "playerId=alice").SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var table metav1.Table
		if err := json.Unmarshal(raw, &table); err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, c := range table.ColumnDefinitions {
			cols = append(cols, c.Name)
		}
		if !slices.Equal(cols[:5], []string{"Name", "Status", "Player", "GameSession", "Age"}) || len(table.Rows) != 1 || table.Rows[0].Cells[1] != "RESERVED" {
			t.Errorf("table %v rows %+v", cols, table.Rows)
		}
	})

	t.Run("authorization", func(t *testing.T) {
		user, err := e.cp.AddUser(envtest.User{Name: "restricted", Groups: []string{"players"}})
		if err != nil {
			t.Fatal(err)
		}
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "query-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{queryv1.GroupName}, Resources: []string{"playersessions"}, Verbs: []string{"get", "list", "watch"}}}}
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "query-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "query-reader"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "restricted"}}}
		for _, o := range []client.Object{role, binding} {
			if err := e.admin.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		restricted := dynamic.NewForConfigOrDie(user).Resource(psGVR)
		NewWithT(t).Eventually(func() error {
			_, err := restricted.Namespace("team-a").List(ctx, metav1.ListOptions{FieldSelector: "playerId=alice"})
			return err
		}).WithTimeout(20 * time.Second).Should(Succeed())
		if _, err := restricted.Namespace("team-b").List(ctx, metav1.ListOptions{FieldSelector: "playerId=alice"}); !apierrors.IsForbidden(err) {
			t.Errorf("other namespace: got %v, want 403", err)
		}
		if _, err := restricted.List(ctx, metav1.ListOptions{FieldSelector: "playerId=alice"}); !apierrors.IsForbidden(err) {
			t.Errorf("all namespaces: got %v, want 403", err)
		}
		if _, err := restricted.Namespace("team-b").Get(ctx, "alice-arena", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("get in other namespace: got %v, want 403", err)
		}
		anon := rest.AnonymousClientConfig(e.cp.Config)
		if _, err := dynamic.NewForConfigOrDie(anon).Resource(psGVR).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
			t.Errorf("anonymous: got %v", err)
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		if _, err := exec.LookPath("kubectl"); err != nil {
			t.Fatal("kubectl is not on the PATH")
		}
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command("kubectl", args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+e.cp.Kubeconfig)
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl %v: %v: %s", args, err, stderr.String())
			}
			return out.String()
		}
		out := run("get", "playersessions.query.playersessions.dev", "-A", "--field-selector", "playerId=alice", "-o", "name")
		if got := strings.Fields(out); len(got) != 2 || !strings.HasPrefix(got[0], "playersession.query.playersessions.dev/alice-arena") {
			t.Errorf("-o name: %q", out)
		}
		out = run("get", "playersessions.query.playersessions.dev", "-n", "team-a", "--chunk-size=1", "--field-selector", "gameSessionName=arena")
		if !strings.Contains(out, "STATUS") || strings.Count(out, "RESERVED") < 3 {
			t.Errorf("--chunk-size=1:\n%s", out)
		}
		out = run("get", "playersessions.query.playersessions.dev", "-n", "team-a", "alice-arena", "-o", "wide")
		if !strings.Contains(out, "PLAYERSESSIONID") || !strings.Contains(out, alicePSID) {
			t.Errorf("-o wide:\n%s", out)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func restConfigFor(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &queryv1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = query.Codecs.WithoutConversion()
	return c
}
