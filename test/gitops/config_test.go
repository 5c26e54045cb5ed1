package gitops

import (
	"context"
	"io/fs"
	"path/filepath"
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
