// Package security tests the trust boundary between the operator and game servers through the real API
// server: the shipped game-server role (config/rbac/gameserver_role.yaml) lets a game server run the
// commands of docs/game-servers.md, and the admission policies (config/policy) refuse every status write that is the
// operator's alone, so the capacity invariant does not depend on game servers behaving.
package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

const ns = "games"

type env struct {
	cp         *localcp.ControlPlane
	tenant     client.Client // a user of the group tenants, who may write Secrets in the namespace
	admin      client.Client
	kubeconfig string // the game server's
}

// kubectl runs kubectl as the game server; it returns the combined output and whether it succeeded.
func (e *env) kubectl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func setup(t *testing.T) *env {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed on the PATH: the test runs the commands of docs/game-servers.md")
	}
	cp := testenv.ControlPlane(t, localcp.Options{})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// The shipped role, bound in the namespace to the game servers' group.
	data, err := os.ReadFile(testenv.Path("config", "rbac", "gameserver_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(data, role); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "game-servers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "game-servers"}},
	}); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "game-server.kubeconfig")
	if err := cp.AddUserKubeconfig(envtest.User{Name: "game-server-1", Groups: []string{"game-servers"}}, kc); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "patch"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "tenants"}}}); err != nil {
		t.Fatal(err)
	}
	e := &env{cp: cp, admin: admin, kubeconfig: kc}
	e.tenant = e.as(t, "tenant-1", "tenants")
	// The API server loads admission policies asynchronously, seconds after they are created: wait until
	// config/policy is enforced (a dry-run write only a policy refuses), as a cluster's user would.
	NewWithT(t).Eventually(func() string {
		err := e.tenant.Create(ctx, key("probe", ""), client.DryRunAll)
		return fmt.Sprint(err)
	}).WithTimeout(30 * time.Second).Should(ContainSubstring("ValidatingAdmissionPolicy"))
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	testenv.StartManager(t, cp, opts)
	return e
}

// as is a client of a user of group.
func (e *env) as(t *testing.T, name, group string) client.Client {
	t.Helper()
	cfg, err := e.cp.AddUser(envtest.User{Name: name, Groups: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// key is an access-key Secret of the namespace ns naming tenant (no tenant label when empty).
func key(name, tenant string) *corev1.Secret {
	s := gl.NewAccessKey(ns, name, tenant, "AKID"+strings.ToUpper(name), "x")
	if tenant == "" {
		delete(s.Labels, gl.TenantLabel)
	}
	return s
}

func (e *env) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		o.SetNamespace(ns)
		if err := e.admin.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) ps(g Gomega, name string) *gamev1.PlayerSession {
	ps := &gamev1.PlayerSession{}
	g.Expect(e.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ps)).To(Succeed())
	return ps
}

func (e *env) gs(g Gomega, name string) *gamev1.GameSession {
	gs := &gamev1.GameSession{}
	g.Expect(e.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs)).To(Succeed())
	return gs
}

func TestGameServerTrustBoundary(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	e.create(t,
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: "arena-1"}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-arena", MaximumPlayerSessionCount: 2, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}},
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: "lobby"}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-arena", MaximumPlayerSessionCount: 2}},
		&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Name: "alice-arena-1"}, Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena-1", PlayerID: "alice"}},
		&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Name: "bob-arena-1"}, Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena-1", PlayerID: "bob"}},
		&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Name: "carol-nowhere"}, Spec: gamev1.PlayerSessionSpec{GameSessionName: "nowhere", PlayerID: "carol"}},
	)
	g.Eventually(func(g Gomega) {
		g.Expect(e.ps(g, "alice-arena-1").Status.Status).To(Equal(gamev1.PlayerSessionReserved))
		g.Expect(e.ps(g, "bob-arena-1").Status.Status).To(Equal(gamev1.PlayerSessionReserved))
		g.Expect(e.gs(g, "lobby").Status.Status).To(Equal(gamev1.GameSessionActivating))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// What docs/game-servers.md shows, word for word, as the game server: it claims its game session with a
	// status write (arena-1 was created with an endpoint, so it is ACTIVE already), and once the operator has
	// marked its player sessions with the claim, it accepts and removes players.
	claim := `kubectl patch gsess arena-1 --subresource=status --type=merge -p '{"status":{"status":"ACTIVE"}}'`
	g.Eventually(func() string { // the claim policy may need a moment to learn the new CRD's schema
		out, ok := e.kubectl(t, shellWords(t, strings.TrimPrefix(claim, "kubectl "))...)
		if ok {
			return ""
		}
		return out
	}).WithTimeout(60 * time.Second).WithPolling(2 * time.Second).Should(BeEmpty())
	g.Expect(e.gs(g, "arena-1").Status.GameServer).To(Equal("game-server-1"))
	g.Eventually(func(g Gomega) {
		g.Expect(e.ps(g, "alice-arena-1").Status.GameServer).To(Equal("game-server-1"))
		g.Expect(e.ps(g, "bob-arena-1").Status.GameServer).To(Equal("game-server-1"))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	for _, cmd := range []string{
		`kubectl patch playersession alice-arena-1 --subresource=status --type=merge -p '{"status":{"status":"ACTIVE"}}'`,
		`kubectl patch playersession alice-arena-1 --subresource=status --type=merge -p '{"status":{"status":"COMPLETED"}}'`,
		`kubectl patch gsess lobby --subresource=status --type=merge -p '{"status":{"status":"ACTIVE","ipAddress":"10.0.0.7","port":7777}}'`,
		`kubectl patch gsess lobby --subresource=status --type=merge -p '{"status":{"status":"TERMINATED"}}'`,
	} {
		out, ok := e.kubectl(t, shellWords(t, strings.TrimPrefix(cmd, "kubectl "))...)
		if !ok {
			t.Errorf("%s: %s", cmd, out)
		}
	}
	g.Expect(e.ps(g, "alice-arena-1").Status.Status).To(Equal(gamev1.PlayerSessionCompleted))
	g.Expect(e.gs(g, "lobby").Status.Status).To(Equal(gamev1.GameSessionTerminated))
	// Alice's seat is released within the release window (1 s); the ledger checked after the refusals
	// below must not depend on how fast they ran (on a fast machine they took less than the window).
	g.Eventually(func(g Gomega) {
		g.Expect(e.gs(g, "arena-1").Status.Seats).To(ConsistOf(HaveField("Name", "bob-arena-1")))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	doc, err := os.ReadFile(testenv.Path("docs", "game-servers.md"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(doc)).To(ContainSubstring(`kubectl patch playersession NAME --subresource=status --type=merge -p '{"status":{"status":"ACTIVE"}}'`))
	g.Expect(string(doc)).To(ContainSubstring(`-p '{"status":{"status":"ACTIVE","ipAddress":"10.0.0.7","port":7777}}'`))
	g.Expect(string(doc)).To(ContainSubstring(claim))

	// Everything that is the operator's alone is refused, by the API server.
	// Each is refused by the admission policy (Forbidden), or already by the CRD's own rules (is invalid).
	for _, tc := range []struct{ name, kind, object, patch, want string }{
		{"a seat for a player session of a missing game session", "playersession", "carol-nowhere", `{"status":{"status":"RESERVED"}}`, "Forbidden"},
		{"a forged id", "playersession", "carol-nowhere", `{"status":{"playerSessionId":"psess-forged"}}`, "Forbidden"},
		{"a timeout", "playersession", "bob-arena-1", `{"status":{"status":"TIMEDOUT"}}`, "Forbidden"},
		{"back to RESERVED", "playersession", "alice-arena-1", `{"status":{"status":"RESERVED"}}`, "is invalid"},
		{"moving the player's endpoint", "playersession", "bob-arena-1", `{"status":{"port":9999}}`, "Forbidden"},
		{"a refusal", "playersession", "bob-arena-1", `{"status":{"conditions":[{"type":"Admitted","status":"False","reason":"GameSessionFull","message":"x","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`, "Forbidden"},
		{"names in the ledger", "gsess", "arena-1", `{"status":{"seats":[{"name":"bob-arena-1"},{"name":"mallory"}]}}`, "Forbidden"},
		{"an emptied ledger", "gsess", "arena-1", `{"status":{"seats":null}}`, "Forbidden"},
		{"the count", "gsess", "arena-1", `{"status":{"currentPlayerSessionCount":0}}`, "Forbidden"},
		{"ERROR", "gsess", "arena-1", `{"status":{"status":"ERROR"}}`, "Forbidden"},
		{"the game session id", "gsess", "arena-1", `{"status":{"gameSessionId":"arn:aws:gamelift:local::gamesession/fleet-arena/forged"}}`, "is invalid"},
	} {
		out, ok := e.kubectl(t, "patch", tc.kind, tc.object, "--subresource=status", "--type=merge", "-p", tc.patch)
		if ok || !strings.Contains(out, tc.want) {
			t.Errorf("%s: want %q, got ok=%v: %s", tc.name, tc.want, ok, out)
		}
	}
	// And nothing of it took: the ledger holds bob alone, carol has no seat.
	arena := e.gs(g, "arena-1")
	g.Expect(arena.Status.Seats).To(ConsistOf(HaveField("Name", "bob-arena-1")))
	g.Expect(e.ps(g, "carol-nowhere").Status.Status).To(BeEmpty())
	g.Expect(e.ps(g, "bob-arena-1").Status.Status).To(Equal(gamev1.PlayerSessionReserved))

	// Writing the main resource or other namespaces is not granted at all.
	out, ok := e.kubectl(t, "delete", "gsess", "arena-1")
	g.Expect(ok).To(BeFalse(), out)
	out, ok = e.kubectl(t, "get", "psess", "-n", "default")
	g.Expect(ok).To(BeFalse(), out)
}

// shellWords splits a command line the way the docs' shell would (single quotes only).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %s", s)
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

// TestAccessKeySecrets: the API server refuses an access-key Secret that does not name, in its tenant label,
// a namespace for its calls to act in (config/policy/access_keys.yaml), which the endpoint would refuse at
// every call; other Secrets are not concerned.
func TestAccessKeySecrets(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	for _, tenant := range []string{"", "Team_A", "team.a"} {
		err := e.admin.Create(ctx, key("refused", tenant))
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "tenant %q: %v", tenant, err)
		g.Expect(err.Error()).To(ContainSubstring("must name the namespace its calls act in"))
	}
	g.Expect(e.admin.Create(ctx, key("issued", "team-a"))).To(Succeed())
	plain := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}}
	g.Expect(e.tenant.Create(ctx, plain)).To(Succeed(), "other Secrets are not concerned")
	unlabelled := key("issued", "")
	unlabelled.Labels = map[string]string{gl.AccessKeyLabel: "true"}
	err := e.admin.Patch(ctx, unlabelled, client.MergeFrom(key("issued", "team-a")))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "dropping the tenant: %v", err)
}

// TestSessionQuota: config/samples/quota.yaml, the documented ResourceQuota on sessions, is enforced by
// kube-apiserver at create time: a tenant cannot create player sessions beyond it (here with its counts
// lowered to 2; the quota's status is set as kube-controller-manager would, which envtest does not run).
func TestSessionQuota(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	b, err := os.ReadFile(testenv.Path("config", "samples", "quota.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	quota := &corev1.ResourceQuota{}
	g.Expect(yaml.Unmarshal(b, quota)).To(Succeed())
	g.Expect(quota.Spec.Hard).To(HaveKey(corev1.ResourceName("count/playersessions.game.playersessions.dev")))
	for name := range quota.Spec.Hard {
		quota.Spec.Hard[name] = resource.MustParse("2")
	}
	quota.Namespace = ns
	g.Expect(e.admin.Create(ctx, quota)).To(Succeed())
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{}}
	for name := range quota.Spec.Hard {
		quota.Status.Used[name] = resource.MustParse("0")
	}
	g.Expect(e.admin.Status().Update(ctx, quota)).To(Succeed())

	create := func(name string) error {
		return e.admin.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "nowhere", PlayerID: name}})
	}
	g.Eventually(func() error { return create("p1") }).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(create("p2")).To(Succeed())
	err = create("p3")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("exceeded quota"))
}

// TestMetricsNeedAuthorization: with --metrics-secure (the default) the manager serves /metrics over HTTPS
// only to a client with a token (checked with a TokenReview) that may GET /metrics (a SubjectAccessReview;
// config/rbac's playersessions-metrics-reader grants it). Before, anyone who reached the port read them.
func TestMetricsNeedAuthorization(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: addr, MetricsSecure: true, ProbeAddr: "0", DisableAgones: true}
	testenv.StartManager(t, e.cp, opts)

	b, err := os.ReadFile(testenv.Path("config", "rbac", "metrics_reader_role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	reader := &rbacv1.ClusterRole{}
	g.Expect(yaml.Unmarshal(b, reader)).To(Succeed())
	g.Expect(e.admin.Create(ctx, reader)).To(Succeed())
	cs := kubernetes.NewForConfigOrDie(e.cp.Config)
	token := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		g.Expect(e.admin.Create(ctx, sa)).To(Succeed())
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}
	prometheus, nobody := token("prometheus"), token("nobody")
	g.Expect(e.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}}})).To(Succeed())

	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // its certificate is self-signed
	scrape := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	g.Eventually(func() int { code, _ := scrape(prometheus); return code }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
	_, body := scrape(prometheus)
	g.Expect(body).To(ContainSubstring("playersessions_player_sessions"))
	code, _ := scrape("")
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	code, _ = scrape(nobody)
	g.Expect(code).To(Equal(http.StatusForbidden))
}

// TestGameServerCannotTouchAnothersGame: two game servers share a namespace and a role (as an Agones fleet's
// do). Each claims its game session with its first status write; the other can then neither redirect nor
// end it, nor accept or remove its players. Before the claim, a second game-server identity rewrote another
// game's endpoint, which the operator copied to every player of that game.
func TestGameServerCannotTouchAnothersGame(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	kc2 := filepath.Join(t.TempDir(), "game-server-2.kubeconfig")
	g.Expect(e.cp.AddUserKubeconfig(envtest.User{Name: "game-server-2", Groups: []string{"game-servers"}}, kc2)).To(Succeed())
	as2 := func(args ...string) (string, bool) {
		cmd := exec.Command("kubectl", append([]string{"-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kc2)
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
	e.create(t,
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: "match-1"}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-arena", MaximumPlayerSessionCount: 2}},
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: "match-2"}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-arena", MaximumPlayerSessionCount: 2}},
	)
	g.Eventually(func(g Gomega) {
		g.Expect(e.gs(g, "match-1").Status.Status).To(Equal(gamev1.GameSessionActivating))
		g.Expect(e.gs(g, "match-2").Status.Status).To(Equal(gamev1.GameSessionActivating))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	activate := `{"status":{"status":"ACTIVE","ipAddress":"10.0.0.1","port":7777}}`
	g.Eventually(func() string { // the claim policy may need a moment to learn the new CRD's schema
		out, ok := e.kubectl(t, "patch", "gsess", "match-1", "--subresource=status", "--type=merge", "-p", activate)
		if ok {
			return ""
		}
		return out
	}).WithTimeout(60 * time.Second).WithPolling(2 * time.Second).Should(BeEmpty())
	out, ok := as2("patch", "gsess", "match-2", "--subresource=status", "--type=merge", "-p", strings.Replace(activate, "10.0.0.1", "10.0.0.2", 1))
	g.Expect(ok).To(BeTrue(), out)
	g.Expect(e.gs(g, "match-1").Status.GameServer).To(Equal("game-server-1"))
	g.Expect(e.gs(g, "match-2").Status.GameServer).To(Equal("game-server-2"))

	e.create(t, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Name: "dan-match-1"}, Spec: gamev1.PlayerSessionSpec{GameSessionName: "match-1", PlayerID: "dan"}})
	g.Eventually(func(g Gomega) {
		dan := e.ps(g, "dan-match-1")
		g.Expect(dan.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
		g.Expect(dan.Status.GameServer).To(Equal("game-server-1"))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// game-server-2 against game-server-1's game and player: every write refused, nothing changed.
	for _, tc := range []struct{ kind, name, patch, refusal string }{
		{"gsess", "match-1", `{"status":{"ipAddress":"6.6.6.6","port":6666}}`, "belongs to"},
		{"gsess", "match-1", `{"status":{"status":"TERMINATED"}}`, "belongs to"},
		{"gsess", "match-1", `{"status":{"gameServer":"game-server-2"}}`, "gameServer is claimed once"}, // the CRD's rule, before the policies
		{"psess", "dan-match-1", `{"status":{"status":"ACTIVE"}}`, "belongs to"},
		{"psess", "dan-match-1", `{"status":{"status":"COMPLETED"}}`, "belongs to"},
	} {
		out, ok := as2("patch", tc.kind, tc.name, "--subresource=status", "--type=merge", "-p", tc.patch)
		if ok || !strings.Contains(out, tc.refusal) {
			t.Errorf("game-server-2 patching %s %s with %s: want refused (%s), got ok=%v: %s", tc.kind, tc.name, tc.patch, tc.refusal, ok, out)
		}
	}
	m1 := e.gs(g, "match-1")
	g.Expect(m1.Status.IPAddress).To(Equal("10.0.0.1"))
	g.Expect(m1.Status.Status).To(Equal(gamev1.GameSessionActive))
	g.Expect(e.ps(g, "dan-match-1").Status.Status).To(Equal(gamev1.PlayerSessionReserved))
	// ... and the other way round.
	out, ok = e.kubectl(t, "patch", "gsess", "match-2", "--subresource=status", "--type=merge", "-p", `{"status":{"status":"TERMINATED"}}`)
	g.Expect(ok).To(BeFalse(), out)
	// Its own game server accepts its player.
	out, ok = e.kubectl(t, "patch", "psess", "dan-match-1", "--subresource=status", "--type=merge", "-p", `{"status":{"status":"ACTIVE"}}`)
	g.Expect(ok).To(BeTrue(), out)
}

// TestGameServersSharingAServiceAccount: the game servers of an Agones fleet share one service account;
// each pod's bound token names its pod, so the claim tells them apart: the pod that activated a game
// session writes it, its sibling pod cannot.
func TestGameServersSharingAServiceAccount(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(e.admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fleet"}})).To(Succeed())
	g.Expect(e.admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fleet"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "playersessions-gameserver"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "fleet"}}})).To(Succeed())
	cs := kubernetes.NewForConfigOrDie(e.cp.Config)
	podClient := func(pod string) client.Client {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod},
			Spec: corev1.PodSpec{ServiceAccountName: "fleet", Containers: []corev1.Container{{Name: "game", Image: "game"}}}}
		g.Expect(e.admin.Create(ctx, p)).To(Succeed())
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "fleet", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod, UID: p.UID}}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		cfg := rest.AnonymousClientConfig(e.cp.Config)
		cfg.BearerToken = tr.Status.Token
		c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
		g.Expect(err).NotTo(HaveOccurred())
		return c
	}
	podA, podB := podClient("arena-a"), podClient("arena-b")
	e.create(t, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: "pod-match"}, Spec: gamev1.GameSessionSpec{FleetID: "fleet-arena", MaximumPlayerSessionCount: 2}})
	var gs *gamev1.GameSession
	g.Eventually(func(g Gomega) {
		gs = e.gs(g, "pod-match")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActivating))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	patch := func(c client.Client, status string) error {
		cur := &gamev1.GameSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(gs), cur); err != nil {
			return err
		}
		before := cur.DeepCopy()
		cur.Status.Status, cur.Status.IPAddress, cur.Status.Port = gamev1.GameSessionStatusValue(status), "10.0.0.9", 7777
		return c.Status().Patch(ctx, cur, client.MergeFrom(before))
	}
	g.Eventually(func() error { return patch(podA, "ACTIVE") }).WithTimeout(60 * time.Second).WithPolling(2 * time.Second).Should(Succeed())
	g.Expect(e.gs(g, "pod-match").Status.GameServer).To(Equal("system:serviceaccount:" + ns + ":fleet pod=arena-a"))
	err := patch(podB, "TERMINATED")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("belongs to"))
	g.Expect(e.gs(g, "pod-match").Status.Status).To(Equal(gamev1.GameSessionActive))
	g.Expect(patch(podA, "TERMINATED")).To(Succeed())
}

// TestTokenSecrets: config/policy/token_secrets.yaml holds the manager's cluster-wide permission to create
// and patch Secrets to the auth tokens of game server Pods: outside its namespace, as its service account,
// it may write a Secret labelled game.playersessions.dev/compute-token, not another Secret, not drop the
// label, and not label (take over) a Secret that was not a token Secret; in its own namespace the policy
// does not apply (its access keys and token key live there).
func TestTokenSecrets(t *testing.T) {
	e := setup(t)
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(e.admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secret-writer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "patch", "update", "get"}}}})).To(Succeed())
	const operator = "system:serviceaccount:playersessions-system:manager"
	g.Expect(e.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secret-writer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "secret-writer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operator}}})).To(Succeed())
	g.Expect(e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gl.DefaultKeyNamespace}})).To(Succeed())
	op := e.as(t, operator, "system:serviceaccounts")
	secret := func(namespace, name string, token bool) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, StringData: map[string]string{"token": "t"}}
		if token {
			s.Labels = map[string]string{gamev1.TokenSecretLabel: "true"}
		}
		return s
	}
	refused := func(err error) {
		t.Helper()
		g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("writes no Secret but the auth tokens"))
	}
	g.Eventually(func() error { return op.Create(ctx, secret(ns, "other", false), client.DryRunAll) }).WithTimeout(30 * time.Second).
		Should(MatchError(ContainSubstring("writes no Secret but the auth tokens")))
	refused(op.Create(ctx, secret(ns, "other", false)))
	tok := secret(ns, "gamelift-sdk-pod-1", true)
	g.Expect(op.Create(ctx, tok)).To(Succeed())
	before := tok.DeepCopy()
	tok.Labels = nil
	refused(op.Patch(ctx, tok, client.MergeFrom(before)))
	users := secret(ns, "users", false)
	g.Expect(e.tenant.Create(ctx, users)).To(Succeed())
	before = users.DeepCopy()
	users.Labels = map[string]string{gamev1.TokenSecretLabel: "true"}
	refused(op.Patch(ctx, users, client.MergeFrom(before)))
	g.Expect(op.Create(ctx, secret(gl.DefaultKeyNamespace, "its-own", false))).To(Succeed())
	g.Expect(e.tenant.Create(ctx, secret(ns, "tenants", false))).To(Succeed(), "nobody else is concerned")
}
