package gitops

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
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
	for _, dir := range []string{"default", "webhook-client-auth"} {
		objs := build(t, testenv.Path("config", dir))
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
				t.Errorf("config/%s: %s %s/%s: %v", dir, u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
		}
	}
}

// TestConfigPrometheusServerDryRun: config/prometheus (the PodMonitor, its scraper identity and the
// alerts) is accepted by a real API server with the Prometheus Operator's CRDs, on top of config/default.
func TestConfigPrometheusServerDryRun(t *testing.T) {
	cp := testenv.ControlPlane(t, localcp.Options{CRDDirectoryPaths: []string{testenv.Path("test", "crds", "prometheus-operator")}})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "playersessions-system"}}); err != nil {
		t.Fatal(err)
	}
	objs := build(t, testenv.Path("config", "prometheus"))
	kinds := map[string]bool{}
	for _, u := range objs {
		kinds[u.GetKind()] = true
		if err := c.Patch(ctx, u, client.Apply, client.DryRunAll, client.FieldOwner("dry-run-test"), client.ForceOwnership); err != nil {
			t.Errorf("config/prometheus: %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	for _, kind := range []string{"PodMonitor", "PrometheusRule", "ServiceAccount", "Secret", "ClusterRoleBinding"} {
		if !kinds[kind] {
			t.Errorf("config/prometheus has no %s", kind)
		}
	}
}

// TestWebhookClientAuthOverlay: config/webhook-client-auth makes the manager's webhook require a client
// certificate signed by the CA it projects into the webhook's certificate folder, and issues kube-apiserver a
// client certificate from that CA (finding 6; the mechanism itself is tested through kube-apiserver in
// internal/webhook).
func TestWebhookClientAuthOverlay(t *testing.T) {
	objs := build(t, testenv.Path("config", "webhook-client-auth"))
	find := func(kind, name string) *unstructured.Unstructured {
		for _, u := range objs {
			if u.GetKind() == kind && u.GetName() == name {
				return u
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	deploy := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find("Deployment", "playersessions-manager").Object, deploy); err != nil {
		t.Fatal(err)
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	flag := func(name string) string {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
		t.Fatalf("the manager has no --%s: %v", name, c.Args)
		return ""
	}
	caName, certDir := flag("webhook-client-ca-name"), flag("webhook-cert-dir")
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == certDir {
			volume = m.Name
		}
	}
	var caSecret string
	for _, v := range deploy.Spec.Template.Spec.Volumes {
		if v.Name != volume || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			for _, item := range src.Secret.Items {
				if item.Path == caName && item.Key == "ca.crt" {
					caSecret = src.Secret.Name
				}
			}
		}
	}
	if caSecret == "" {
		t.Fatalf("%s is not projected into %s", caName, certDir)
	}
	issuer := ""
	for _, u := range objs {
		if u.GetKind() == "Issuer" {
			if name, _, _ := unstructured.NestedString(u.Object, "spec", "ca", "secretName"); name == caSecret {
				issuer = u.GetName()
			}
		}
	}
	clientCert := find("Certificate", "playersessions-apiserver-webhook-client")
	usages, _, _ := unstructured.NestedStringSlice(clientCert.Object, "spec", "usages")
	ref, _, _ := unstructured.NestedString(clientCert.Object, "spec", "issuerRef", "name")
	if issuer == "" || ref != issuer || !slices.Contains(usages, "client auth") {
		t.Errorf("kube-apiserver's client certificate is not a client certificate of the CA the webhook trusts (issuer %q, CA issuer %q, usages %v)", ref, issuer, usages)
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

// TestManagerRBACIsLeastPrivilege: what config/default's RBAC lets the manager's service account do, asked of
// a real API server with `kubectl auth can-i` (finding 4 of docs/security.md). The manager reads Secrets in
// its own namespace only, where GameLift access keys live (and creates the continue-token key there): its
// token, were it to leak from a replica serving game backends, reads no tenant's Secret. Before, `can-i
// list secrets -A` was yes.
func TestManagerRBACIsLeastPrivilege(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed on the PATH: the test asks `kubectl auth can-i`")
	}
	cp := testenv.ControlPlane(t, localcp.Options{})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sa string
	for _, u := range build(t, testenv.Path("config", "default")) {
		switch u.GetKind() {
		case "ServiceAccount":
			sa = "system:serviceaccount:" + u.GetNamespace() + ":" + u.GetName()
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if ns := u.GetNamespace(); ns != "" {
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	if sa == "" {
		t.Fatal("config/default has no ServiceAccount")
	}
	kubeconfig := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := cp.AddUserKubeconfig(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, kubeconfig); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"list", "secrets", "-A"}, false},
		{[]string{"watch", "secrets", "-A"}, false},
		{[]string{"get", "secrets", "-n", "team-a"}, false},
		{[]string{"get", "secrets", "-n", "kube-system"}, false},
		{[]string{"get", "secrets", "-n", "playersessions-system"}, true},
		{[]string{"list", "secrets", "-n", "playersessions-system"}, true},
		{[]string{"watch", "secrets", "-n", "playersessions-system"}, true},
		{[]string{"create", "secrets", "-n", "playersessions-system"}, true}, // the continue-token key, once
		{[]string{"update", "secrets", "-n", "playersessions-system"}, false},
		{[]string{"delete", "secrets", "-n", "playersessions-system"}, false},
		{[]string{"get", "configmaps", "-n", "team-a"}, false},
		{[]string{"create", "pods", "-n", "team-a"}, false},
		{[]string{"create", "serviceaccounts/token", "-n", "team-a"}, false},
		{[]string{"impersonate", "users"}, false},
		{[]string{"create", "rolebindings", "-n", "team-a"}, false},
		{[]string{"create", "playersessions.game.playersessions.dev", "-n", "team-a"}, true},
		{[]string{"patch", "gamesessions.game.playersessions.dev", "--subresource=status", "-n", "team-a"}, true},
		{[]string{"update", "playersessions.game.playersessions.dev", "-n", "team-a"}, false},
		{[]string{"*", "*", "-A"}, false},
	} {
		cmd := exec.Command("kubectl", append(append([]string{"auth", "can-i"}, tc.args...), "--as="+sa)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		out, err := cmd.CombinedOutput()
		answer := strings.TrimSpace(string(out))
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("kubectl auth can-i %v: %v: %s", tc.args, err, out)
		}
		if got := err == nil && strings.HasSuffix(answer, "yes"); got != tc.want || !(strings.HasSuffix(answer, "yes") || strings.HasSuffix(answer, "no")) {
			t.Errorf("kubectl auth can-i %s --as=%s: %q, want yes=%v", strings.Join(tc.args, " "), sa, answer, tc.want)
		}
	}
}
