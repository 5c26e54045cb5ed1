// Package gitops tests what GitOps tools read from playersessions' objects: the Argo CD health checks in
// config/argocd (run under gopher-lua, the interpreter Argo CD embeds), the Flux healthCheckExprs in
// config/flux (run with cel-go, after Flux's own generation check) and kstatus (what Flux's wait uses), on
// the fixtures beside the Lua scripts and on live objects written by the manager.
package gitops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

var kinds = []string{"GameSession", "PlayerSession", "GameSessionPlacement"}

// The three tools' words for the same three states.
var argoToStatus = map[string]status.Status{"Healthy": status.CurrentStatus, "Progressing": status.InProgressStatus, "Degraded": status.FailedStatus}

// argoHealth runs a health.lua as Argo CD does: the object as the global obj, the returned table read.
func argoHealth(t testing.TB, script string, obj map[string]any) (string, string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("lua: returned %v, want a table", L.Get(-1))
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

// toLua converts JSON values as gopher-lua's luajson does for Argo CD: maps to tables, arrays to 1-based tables.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case nil:
		return lua.LNil
	}
	panic(fmt.Sprintf("toLua: %T", v))
}

// fluxExprs are the healthCheckExprs of config/flux/fleet.yaml, by kind.
type fluxExprs struct{ inProgress, failed, current string }

func loadFluxExprs(t testing.TB) map[string]fluxExprs {
	t.Helper()
	u := readObject(t, testenv.Path("config", "flux", "fleet.yaml"))
	checks, _, _ := unstructured.NestedSlice(u.Object, "spec", "healthCheckExprs")
	out := map[string]fluxExprs{}
	for _, c := range checks {
		m := c.(map[string]any)
		out[m["kind"].(string)] = fluxExprs{m["inProgress"].(string), m["failed"].(string), m["current"].(string)}
	}
	return out
}

// fluxHealth evaluates the expressions as Flux's CEL status reader does: InProgress while observedGeneration
// differs from generation, then inProgress, failed, current in that order, InProgress when none holds; the
// object's top-level fields are the variables.
func fluxHealth(t testing.TB, e fluxExprs, obj map[string]any) status.Status {
	t.Helper()
	gen, _, _ := unstructured.NestedInt64(obj, "metadata", "generation")
	if og, found, _ := unstructured.NestedInt64(obj, "status", "observedGeneration"); found && og != gen {
		return status.InProgressStatus
	}
	env, err := cel.NewEnv(cel.Variable("apiVersion", cel.DynType), cel.Variable("kind", cel.DynType),
		cel.Variable("metadata", cel.DynType), cel.Variable("spec", cel.DynType), cel.Variable("status", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		expr   string
		result status.Status
	}{{e.inProgress, status.InProgressStatus}, {e.failed, status.FailedStatus}, {e.current, status.CurrentStatus}} {
		ast, iss := env.Compile(x.expr)
		if iss.Err() != nil {
			t.Fatalf("cel %q: %v", x.expr, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := prg.Eval(obj)
		if err != nil {
			t.Fatalf("cel %q: %v", x.expr, err) // Flux fails the health check on an evaluation error
		}
		if out.Value() == true {
			return x.result
		}
	}
	return status.InProgressStatus
}

func kstatus(t testing.TB, obj map[string]any) status.Status {
	t.Helper()
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func readObject(t testing.TB, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil { // integers as int64, as kstatus needs
		t.Fatal(err)
	}
	return u
}

func readScript(t testing.TB, kind string) string {
	t.Helper()
	b, err := os.ReadFile(testenv.Path("config", "argocd", gamev1.GroupVersion.Group, kind, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHealthFixtures runs Argo CD's test layout (health_test.yaml: expected status and message per fixture)
// and checks that Flux's expressions and kstatus agree with Argo CD on every fixture.
func TestHealthFixtures(t *testing.T) {
	exprs := loadFluxExprs(t)
	for _, kind := range kinds {
		dir := testenv.Path("config", "argocd", gamev1.GroupVersion.Group, kind)
		script := readScript(t, kind)
		data, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var cases struct {
			Tests []struct {
				HealthStatus struct{ Status, Message string } `json:"healthStatus"`
				InputPath    string                           `json:"inputPath"`
			} `json:"tests"`
		}
		if err := yaml.UnmarshalStrict(data, &cases); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		if len(cases.Tests) != len(files) || len(files) < 5 {
			t.Errorf("%s: %d tests for %d fixtures", kind, len(cases.Tests), len(files))
		}
		for _, tc := range cases.Tests {
			t.Run(kind+"/"+tc.InputPath, func(t *testing.T) {
				obj := readObject(t, filepath.Join(dir, tc.InputPath)).Object
				st, msg := argoHealth(t, script, obj)
				if st != tc.HealthStatus.Status || msg != tc.HealthStatus.Message {
					t.Errorf("argo: got %s %q, want %s %q", st, msg, tc.HealthStatus.Status, tc.HealthStatus.Message)
				}
				want := argoToStatus[tc.HealthStatus.Status]
				if got := fluxHealth(t, exprs[kind], obj); got != want {
					t.Errorf("flux healthCheckExprs: got %s, want %s", got, want)
				}
				if got := kstatus(t, obj); got != want {
					t.Errorf("kstatus: got %s, want %s", got, want)
				}
			})
		}
	}
}

// TestArgoCDConfigMapHoldsTheScripts: the argocd-cm snippet installs exactly the scripts tested here.
func TestArgoCDConfigMapHoldsTheScripts(t *testing.T) {
	k := readObject(t, testenv.Path("config", "argocd", "kustomization.yaml"))
	gens, _, _ := unstructured.NestedSlice(k.Object, "configMapGenerator")
	files, _, _ := unstructured.NestedStringSlice(gens[0].(map[string]any), "files")
	want := map[string]bool{}
	for _, kind := range kinds {
		want[fmt.Sprintf("resource.customizations.health.%s_%s=%s/%s/health.lua", gamev1.GroupVersion.Group, kind, gamev1.GroupVersion.Group, kind)] = true
	}
	if len(files) != len(want) {
		t.Fatalf("files: %v", files)
	}
	for _, f := range files {
		if !want[f] {
			t.Errorf("unexpected entry %q", f)
		}
	}
}

// TestHealthOfLiveObjects: objects as the API server and the manager leave them, in each state, read the
// same by all three tools.
func TestHealthOfLiveObjects(t *testing.T) {
	cp := testenv.ControlPlane(t, localcp.Options{})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "fleet"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	gs := func(name string, max int32, endpoint bool) *gamev1.GameSession {
		g := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: max}}
		if endpoint {
			g.Spec.IPAddress, g.Spec.Port = "10.0.0.1", 7777
		}
		return g
	}
	ps := func(name, game string) *gamev1.PlayerSession {
		return &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: name}}
	}
	type live struct {
		obj  client.Object
		want string // Argo CD's word
	}
	check := func(g Gomega, l live) {
		u := &unstructured.Unstructured{}
		gvk, err := apiutil.GVKForObject(l.obj, manager.Scheme())
		g.Expect(err).NotTo(HaveOccurred())
		u.SetGroupVersionKind(gvk)
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(l.obj), u)).To(Succeed())
		kind := u.GetKind()
		st, msg := argoHealth(t, readScript(t, kind), u.Object)
		g.Expect(st).To(Equal(l.want), "argo on %s %s: %s", kind, u.GetName(), msg)
		g.Expect(fluxHealth(t, loadFluxExprs(t)[kind], u.Object)).To(Equal(argoToStatus[l.want]), "flux on %s", u.GetName())
		g.Expect(kstatus(t, u.Object)).To(Equal(argoToStatus[l.want]), "kstatus on %s", u.GetName())
	}

	// Before the manager runs: created, not yet observed (status defaults to observedGeneration 0).
	fresh := []live{{gs("fresh", 2, true), "Progressing"}, {ps("fresh-p", "fresh"), "Progressing"}}
	for _, l := range fresh {
		if err := c.Create(ctx, l.obj); err != nil {
			t.Fatal(err)
		}
		check(NewWithT(t), l)
	}

	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	testenv.StartManager(t, cp, opts)
	objs := []live{
		{gs("fresh", 2, true), "Healthy"},
		{ps("fresh-p", "fresh"), "Healthy"}, // RESERVED
		{gs("activating", 2, false), "Progressing"},
		{gs("ended", 2, true), "Healthy"},
		{gs("failed", 2, false), "Degraded"},
		{gs("full", 0, true), "Healthy"},
		{ps("refused", "full"), "Degraded"},
		{ps("waiting", "missing"), "Progressing"},
	}
	// Placements through a queue of a fleet whose game servers activate what they are given: one fulfilled
	// (its game session activated), one waiting for that, one stopped.
	queue := &gamev1.GameSessionQueue{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec: gamev1.GameSessionQueueSpec{Name: "main", Destinations: []gamev1.QueueDestination{{DestinationArn: "fleet-open"}}}}
	placement := func(name string, stopped bool) *gamev1.GameSessionPlacement {
		return &gamev1.GameSessionPlacement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: gamev1.GameSessionPlacementSpec{PlacementID: name, GameSessionQueueName: "main", MaximumPlayerSessionCount: 2, Stopped: stopped}}
	}
	objs = append(objs, live{placement("placed", false), "Healthy"}, live{placement("placing", false), "Progressing"}, live{placement("stopped", true), "Degraded"})
	if err := c.Create(ctx, queue); err != nil {
		t.Fatal(err)
	}
	for _, l := range objs[2:] {
		if err := c.Create(ctx, l.obj); err != nil {
			t.Fatal(err)
		}
	}
	NewWithT(t).Eventually(func() error { // the game server activates the game session of "placed"
		return c.Status().Patch(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "placed-0"}},
			client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE","ipAddress":"10.0.0.2","port":7000}}`)))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// A game server ends one game session and reports an error on another.
	for name, s := range map[string]gamev1.GameSessionStatusValue{"ended": gamev1.GameSessionTerminated, "failed": gamev1.GameSessionError} {
		NewWithT(t).Eventually(func() error {
			return c.Status().Patch(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
				client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"status":{"status":%q}}`, s))))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	}
	for _, l := range objs {
		NewWithT(t).Eventually(func(g Gomega) { check(g, l) }).WithTimeout(20 * time.Second).Should(Succeed())
	}
}

// TestCRDsArePruneSafe: deleting a CRD deletes every object of its kind, so the CRDs tell Argo CD, Flux and
// Helm never to prune or delete them.
func TestCRDsArePruneSafe(t *testing.T) {
	for _, f := range []string{"game.playersessions.dev_gamesessions.yaml", "game.playersessions.dev_playersessions.yaml"} {
		a := readObject(t, testenv.Path("config", "crd", "bases", f)).GetAnnotations()
		for k, v := range map[string]string{
			"argocd.argoproj.io/sync-options":   "Prune=false,Delete=false",
			"kustomize.toolkit.fluxcd.io/prune": "disabled",
			"helm.sh/resource-policy":           "keep",
		} {
			if a[k] != v {
				t.Errorf("%s: annotation %s = %q, want %q", f, k, a[k], v)
			}
		}
	}
}

// TestApplyTwiceAsArgoCD: Argo CD (server-side apply as argocd-controller) applies a game session, the
// operator reconciles it, Argo CD applies it again: no conflict, no change, and no other manager owns a
// spec field the applier set; the operator's own writes carry its field manager.
func TestApplyTwiceAsArgoCD(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fleet"}})).To(Succeed())
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true}
	testenv.StartManager(t, cp, opts)

	apply := func() *unstructured.Unstructured {
		u := readObject(t, testenv.Path("config", "samples", "gamesession.yaml"))
		u.SetNamespace("fleet")
		g.Expect(c.Patch(ctx, u, client.Apply, client.FieldOwner("argocd-controller"))).To(Succeed()) // no force: a conflict fails
		return u
	}
	first := apply()
	g.Eventually(func(g Gomega) {
		gs := &gamev1.GameSession{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(first), gs)).To(Succeed())
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(meta.IsStatusConditionTrue(gs.Status.Conditions, gamev1.GameSessionReadyCondition)).To(BeTrue())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	before := &gamev1.GameSession{}
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(first), before)).To(Succeed())
	second := apply()
	g.Expect(second.GetResourceVersion()).To(Equal(before.ResourceVersion), "the second apply changed the object")

	managers := map[string]bool{}
	for _, mf := range before.ManagedFields {
		managers[mf.Manager+"/"+mf.Subresource] = true
		if mf.Manager != "argocd-controller" && mf.FieldsV1 != nil {
			g.Expect(string(mf.FieldsV1.Raw)).NotTo(ContainSubstring(`"f:spec"`), "%s owns spec fields", mf.Manager)
		}
	}
	g.Expect(managers).To(HaveKey(controllers.FieldManager + "/status"))
	g.Expect(managers).To(HaveKey(controllers.FieldManager + "/")) // the finalizer
}

// TestIgnoreSettingsMatchTheEndpoint: the Argo CD Application ignores the GameLift endpoint's field manager,
// and Flux's ignore rule names spec fields that exist and that UpdateGameSession writes.
func TestIgnoreSettingsMatchTheEndpoint(t *testing.T) {
	app := readObject(t, testenv.Path("config", "argocd", "application.yaml"))
	ignores, _, _ := unstructured.NestedSlice(app.Object, "spec", "ignoreDifferences")
	if len(ignores) != 1 {
		t.Fatalf("ignoreDifferences: %v", ignores)
	}
	managers, _, _ := unstructured.NestedStringSlice(ignores[0].(map[string]any), "managedFieldsManagers")
	if len(managers) != 1 || managers[0] != gl.FieldManager {
		t.Errorf("managedFieldsManagers = %v, want [%s]", managers, gl.FieldManager)
	}
	opts, _, _ := unstructured.NestedStringSlice(app.Object, "spec", "syncPolicy", "syncOptions")
	for _, want := range []string{"ServerSideApply=true", "RespectIgnoreDifferences=true"} {
		if !slices.Contains(opts, want) {
			t.Errorf("syncOptions %v lack %s", opts, want)
		}
	}

	flux := readObject(t, testenv.Path("config", "flux", "fleet.yaml"))
	rules, _, _ := unstructured.NestedSlice(flux.Object, "spec", "ignore")
	if len(rules) != 1 {
		t.Fatalf("ignore: %v", rules)
	}
	paths, _, _ := unstructured.NestedStringSlice(rules[0].(map[string]any), "paths")
	// What UpdateGameSession may change, as JSON pointers into the GameSession's spec.
	want := []string{"/spec/gameProperties", "/spec/maximumPlayerSessionCount", "/spec/name", "/spec/playerSessionCreationPolicy"}
	slices.Sort(paths)
	if !slices.Equal(paths, want) {
		t.Errorf("ignore paths = %v, want %v", paths, want)
	}
	crd := readObject(t, testenv.Path("config", "crd", "bases", "game.playersessions.dev_gamesessions.yaml"))
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	props, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties")
	for _, p := range paths {
		if _, ok := props[strings.TrimPrefix(p, "/spec/")]; !ok {
			t.Errorf("%s is not a GameSession spec field", p)
		}
	}
}

// TestDocsQuoteTheFiles: every snippet of docs/gitops.md marked "<!-- from FILE -->" is quoted verbatim
// from that file.
func TestDocsQuoteTheFiles(t *testing.T) {
	doc, err := os.ReadFile(testenv.Path("docs", "gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	quotes := regexp.MustCompile("(?s)<!-- from (\\S+) -->\n```yaml\n(.*?)\n```").FindAllStringSubmatch(string(doc), -1)
	if len(quotes) < 5 {
		t.Fatalf("found %d quotes", len(quotes))
	}
	for _, q := range quotes {
		file, err := os.ReadFile(testenv.Path(q[1]))
		if err != nil {
			t.Errorf("%s: %v", q[1], err)
			continue
		}
		if !strings.Contains(string(file), q[2]) {
			t.Errorf("docs/gitops.md quotes %s, but the file does not hold:\n%s", q[1], q[2])
		}
	}
}
