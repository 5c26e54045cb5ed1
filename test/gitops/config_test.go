package gitops

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// build runs kustomize (as a library, what kubectl apply -k, Argo CD and Flux embed) on a folder of config/.
func build(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v (%v)", dir, err, m["kind"])
		}
		out = append(out, u)
	}
	return out
}

// TestKustomizationsBuild: every kustomization under config/ builds and yields objects.
func TestKustomizationsBuild(t *testing.T) {
	var dirs []string
	err := filepath.WalkDir(testenv.Path("config"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("found only %d kustomizations: %v", len(dirs), dirs)
	}
	for _, dir := range dirs {
		if objs := build(t, dir); len(objs) == 0 {
			t.Errorf("%s builds to nothing", dir)
		}
	}
}

// TestConfigDefaultServerDryRun: what `kubectl apply -k config/default` sends is accepted by a real API
// server (server-side apply, dry run), with cert-manager's CRDs installed for its Issuer and Certificates.
func TestConfigDefaultServerDryRun(t *testing.T) {
	cp := testenv.ControlPlane(t, localcp.Options{CRDDirectoryPaths: []string{testenv.Path("test", "crds", "cert-manager")}})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	objs := build(t, testenv.Path("config", "default"))
	// Namespaces for real first: a dry-run namespace does not exist for the objects in it.
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			if err := c.Create(ctx, u.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	for _, u := range objs {
		if err := c.Patch(ctx, u, client.Apply, client.DryRunAll, client.FieldOwner("dry-run-test"), client.ForceOwnership); err != nil {
			t.Errorf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
}

// TestConfigDeploysTheGameLiftEndpointWithTLS: in config/default the manager serves the GameLift endpoint
// over HTTPS, from the Secret that cert-manager's Certificate fills, behind a Service that reaches its port.
func TestConfigDeploysTheGameLiftEndpointWithTLS(t *testing.T) {
	objs := build(t, testenv.Path("config", "default"))
	find := func(kind, name string) *unstructured.Unstructured {
		for _, u := range objs {
			if u.GetKind() == kind && u.GetName() == name {
				return u
			}
		}
		t.Fatalf("config/default has no %s %s", kind, name)
		return nil
	}
	dep := find("Deployment", "playersessions-manager")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	var certDir string
	bind := false
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--gamelift-cert-dir="); ok {
			certDir = v
		}
		bind = bind || strings.HasPrefix(a, "--gamelift-bind-address=:9090")
	}
	if certDir == "" || !bind {
		t.Fatalf("the manager's args do not serve the endpoint over TLS: %v", args)
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	var volume string
	for _, m := range mounts {
		if m.(map[string]any)["mountPath"] == certDir {
			volume = m.(map[string]any)["name"].(string)
		}
	}
	volumes, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	var secret string
	for _, v := range volumes {
		if v.(map[string]any)["name"] == volume {
			secret, _, _ = unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		}
	}
	certSecret, _, _ := unstructured.NestedString(find("Certificate", "playersessions-gamelift").Object, "spec", "secretName")
	if secret == "" || secret != certSecret {
		t.Errorf("%s is mounted from Secret %q, the Certificate fills %q", certDir, secret, certSecret)
	}
	ports, _, _ := unstructured.NestedSlice(c, "ports")
	named := false
	for _, p := range ports {
		named = named || (p.(map[string]any)["name"] == "gamelift" && p.(map[string]any)["containerPort"] == int64(9090))
	}
	svcPorts, _, _ := unstructured.NestedSlice(find("Service", "playersessions-gamelift").Object, "spec", "ports")
	if !named || svcPorts[0].(map[string]any)["targetPort"] != "gamelift" {
		t.Errorf("the Service does not reach the endpoint's port: container ports %v, service ports %v", ports, svcPorts)
	}
}
