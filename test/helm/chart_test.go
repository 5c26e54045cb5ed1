// Package helm tests the Helm chart (charts/playersessions) with the Helm v4 library: lint, values
// validated by values.schema.json, the rendering with the default values equal to the kustomize output of
// config/default (the chart's templates are generated from it by hack/chart), the values that change it,
// and an install of the rendered objects into a real API server with a server-side dry run.
package helm

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

func load(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(testenv.Path("charts", "playersessions"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// render renders the chart into namespace with values over the defaults, as helm install would; the
// objects are keyed by kind/name.
func render(t *testing.T, c *chart.Chart, namespace string, values map[string]any) (map[string]*unstructured.Unstructured, error) {
	t.Helper()
	vals, err := util.ToRenderValuesWithSchemaValidation(c, values, common.ReleaseOptions{Name: "playersessions", Namespace: namespace, IsInstall: true},
		common.DefaultCapabilities, false)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for name, body := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range strings.Split(body, "\n---") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			out[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return out, nil
}

// kustomized is config/default's objects but its Namespace and CRDs (the chart's crds/), by kind/name.
func kustomized(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), testenv.Path("config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, r := range res.Resources() {
		raw, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any // decoded as the chart's rendering is (numbers as float64)
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() != "Namespace" && u.GetKind() != "CustomResourceDefinition" {
			out[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return out
}

func TestLint(t *testing.T) {
	l := lint.RunAll(testenv.Path("charts", "playersessions"), nil, "playersessions-system")
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

// TestDefaultsAreConfigDefault: with the default values in playersessions-system, the chart renders what
// kustomize renders for config/default, object for object, plus a PodDisruptionBudget; its crds/ are
// config/default's CRDs.
func TestDefaultsAreConfigDefault(t *testing.T) {
	c := load(t)
	got, err := render(t, c, "playersessions-system", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := kustomized(t)
	if _, ok := got["PodDisruptionBudget/playersessions-manager"]; !ok {
		t.Error("no PodDisruptionBudget with two replicas")
	}
	delete(got, "PodDisruptionBudget/playersessions-manager")
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Fatalf("the chart renders %v,\nkustomize %v", g, w)
	}
	for key, w := range want {
		if !reflect.DeepEqual(got[key].Object, w.Object) {
			gy, _ := yaml.Marshal(got[key].Object)
			wy, _ := yaml.Marshal(w.Object)
			t.Errorf("%s differs:\nchart:\n%s\nkustomize:\n%s", key, gy, wy)
		}
	}
	var crds []string
	for _, f := range c.Files {
		if strings.HasPrefix(f.Name, "crds/") {
			crds = append(crds, f.Name)
		}
	}
	if len(crds) != 6 {
		t.Errorf("crds/ holds %v, want the 6 CRDs of config/crd", crds)
	}
}

// TestValues: the values change what they say, in another namespace; monitoring adds config/prometheus
// with the alerts' own templates kept literal; one replica has no PodDisruptionBudget; the schema refuses
// bad values.
func TestValues(t *testing.T) {
	c := load(t)
	got, err := render(t, c, "games", map[string]any{
		"replicaCount": 3, "image": map[string]any{"repository": "registry.example/manager", "tag": "v1.2.3"},
		"extraArgs": []any{"--player-session-timeout=30s"}, "monitoring": map[string]any{"enabled": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := got["Deployment/playersessions-manager"]
	if d == nil || d.GetNamespace() != "games" {
		t.Fatalf("no Deployment in the release's namespace: %v", d)
	}
	replicas, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	manager := containers[0].(map[string]any)
	args := manager["args"].([]any)
	if replicas != float64(3) || manager["image"] != "registry.example/manager:v1.2.3" || args[len(args)-1] != "--player-session-timeout=30s" {
		t.Errorf("replicas %v, image %v, args %v", replicas, manager["image"], args)
	}
	if !slices.Contains(args, any("--gamelift-sdk-endpoint-url=wss://playersessions-gamelift.games.svc:9091")) {
		t.Errorf("the SDK endpoint is not in the release's namespace: %v", args)
	}
	rule := got["PrometheusRule/playersessions"]
	if rule == nil || got["PodMonitor/playersessions"] == nil {
		t.Fatal("monitoring.enabled renders no PodMonitor or PrometheusRule")
	}
	if raw, _ := yaml.Marshal(rule.Object); !strings.Contains(string(raw), "{{ $labels.controller }}") {
		t.Error("the alerts' templates were not kept literal")
	}

	one, err := render(t, c, "games", map[string]any{"replicaCount": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := one["PodDisruptionBudget/playersessions-manager"]; ok {
		t.Error("a PodDisruptionBudget with one replica would block every drain")
	}
	for name, bad := range map[string]map[string]any{
		"no replicas":     {"replicaCount": 0},
		"an unknown key":  {"replicas": 2},
		"a flag mistyped": {"extraArgs": []any{"player-session-timeout=30s"}},
	} {
		if _, err := render(t, c, "games", bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestInstallServerDryRun: the chart's CRDs installed, the rendered objects (monitoring on) are accepted
// by a real API server with a server-side dry run, in a namespace of the release's choosing.
func TestInstallServerDryRun(t *testing.T) {
	cp := testenv.ControlPlane(t, localcp.Options{CRDDirectoryPaths: []string{testenv.Path("test", "crds", "cert-manager"),
		testenv.Path("test", "crds", "prometheus-operator")}})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "games"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	objs, err := render(t, load(t), "games", map[string]any{"monitoring": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range slices.Sorted(maps.Keys(objs)) {
		u := objs[key]
		if err := c.Patch(ctx, u, client.Apply, client.DryRunAll, client.FieldOwner("helm-dry-run"), client.ForceOwnership); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
}
