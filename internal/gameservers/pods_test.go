package gameservers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// TestGameServerPods: the Kubernetes way, without the aws CLI. A Pod labelled
// game.playersessions.dev/gamelift-sdk=true gets the SDK's environment from the Pod webhook (a Pod that
// names no fleet is refused, with the reason; a generateName Pod gets a compute name); once it has its IP
// (written here as the kubelet would), the operator registers its Compute (the Pod's IP, owned by the Pod)
// and writes its auth token into the Secret its environment reads (the token's hash on the Compute). The
// example game server, started with exactly the environment the kubelet would give the Pod, connects,
// registers its process and runs a game session created with kubectl's object. Before the token expires,
// the operator writes a fresh one into the Secret.
func TestGameServerPods(t *testing.T) {
	g := NewWithT(t)
	const ttl = 8 * time.Second // rotated 2 s before it expires
	cp := testenv.ControlPlane(t, localcp.Options{WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")}})
	sdkAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	const ca = "-----BEGIN CERTIFICATE-----\nthe operator's CA\n-----END CERTIFICATE-----\n"
	g.Expect(os.WriteFile(caFile, []byte(ca), 0o600)).To(Succeed())
	testenv.StartManager(t, cp, manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true,
		GameLiftAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), GameLiftSDKAddr: sdkAddr, GameLiftComputeTokenTTL: ttl, GameLiftSDKCAFile: caFile,
		WebhookHost: cp.WebhookHost, WebhookPort: cp.WebhookPort, WebhookCertDir: cp.WebhookCertDir, WebhookClientCAName: cp.WebhookClientCAName})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	const ns = "games"
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	pod := func(name, generateName, fleet string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, GenerateName: generateName,
			Labels: map[string]string{gamev1.GameLiftSDKLabel: "true"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "game", Image: "gameserver",
				Env: []corev1.EnvVar{{Name: "GAME_MODE", Value: "ranked"}}}}}}
		if fleet != "" {
			p.Annotations = map[string]string{gamev1.FleetIDAnnotation: fleet}
		}
		return p
	}

	err = admin.Create(ctx, pod("no-fleet", "", ""))
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("names no fleet: set the annotation " + gamev1.FleetIDAnnotation))
	unlabelled := pod("plain", "", "")
	unlabelled.Labels = nil
	g.Expect(admin.Create(ctx, unlabelled)).To(Succeed(), "a Pod that does not opt in is not concerned")
	g.Expect(unlabelled.Spec.Containers[0].Env).To(HaveLen(1))
	generated := pod("", "match-server-", "fleet-pods")
	g.Expect(admin.Create(ctx, generated)).To(Succeed())
	g.Expect(generated.Annotations[gamev1.ComputeNameAnnotation]).To(MatchRegexp(`^match-server-[a-z0-9]{5}$`))

	p := &corev1.Pod{} // config/samples/gamelift-sdk/pod.yaml, as kubectl would create it
	data, err := os.ReadFile(testenv.Path("config", "samples", "gamelift-sdk", "pod.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.UnmarshalStrict(data, p)).To(Succeed())
	p.Namespace, p.Name = ns, "game-1"
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GAME_MODE", Value: "ranked"}}
	g.Expect(admin.Create(ctx, p)).To(Succeed())
	g.Expect(p.Annotations[gamev1.ComputeNameAnnotation]).To(Equal("game-1"))
	names := []string{}
	for _, v := range p.Spec.Containers[0].Env {
		names = append(names, v.Name)
	}
	g.Expect(names).To(Equal([]string{"GAME_MODE", "GAMELIFT_SDK_WEBSOCKET_URL", "GAMELIFT_SDK_FLEET_ID", "GAMELIFT_SDK_HOST_ID",
		"GAMELIFT_SDK_PROCESS_ID", "GAMELIFT_SDK_AUTH_TOKEN", "SSL_CERT_DIR"}))
	g.Expect(p.Spec.Containers[0].Env[6].Value).To(Equal("/etc/ssl/playersessions"))
	g.Expect(p.Spec.Containers[0].VolumeMounts).To(ContainElement(And(HaveField("MountPath", "/etc/ssl/playersessions/ca.crt"), HaveField("SubPath", "ca.crt"))))
	g.Expect(p.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", "gamelift-sdk-game-1")))
	g.Expect(p.Spec.Containers[0].Env[1].Value).To(Equal("ws://" + sdkAddr))
	g.Expect(p.Spec.Containers[0].Env[5].ValueFrom.SecretKeyRef.Name).To(Equal("gamelift-sdk-game-1"))
	_, err = gametest.PodEnv(ctx, admin, p)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no Secret before the Pod has its IP: %v", err)

	// The kubelet gives the Pod its IP with its sandbox, before its containers start.
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	g.Expect(admin.Status().Update(ctx, p)).To(Succeed())
	key := client.ObjectKey{Namespace: ns, Name: computes.ObjectName("fleet-pods", "game-1")}
	c := &gamev1.Compute{}
	var env []string
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.TokenSecret).NotTo(BeNil())
		env, err = gametest.PodEnv(ctx, admin, p)
		g.Expect(err).NotTo(HaveOccurred())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(c.Spec.IPAddress).To(Equal("127.0.0.1"))
	g.Expect(c.Status.ComputeStatus).To(Equal(gamev1.ComputeActive))
	g.Expect(metav1.IsControlledBy(c, p)).To(BeTrue(), "the Compute goes with its Pod")
	secret := &corev1.Secret{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gamelift-sdk-game-1"}, secret)).To(Succeed())
	g.Expect(metav1.IsControlledBy(secret, p)).To(BeTrue(), "the Secret goes with its Pod")
	token := string(secret.Data[gamev1.TokenSecretKey])
	g.Expect(string(secret.Data[gamev1.TokenSecretCAKey])).To(Equal(ca), "the CA the Pod mounts")
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.AuthTokens).To(ContainElement(HaveField("SHA256", computes.Hash(token))))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(env).To(ContainElements("GAMELIFT_SDK_FLEET_ID=fleet-pods", "GAMELIFT_SDK_HOST_ID=game-1", "GAMELIFT_SDK_PROCESS_ID=game-1",
		"GAMELIFT_SDK_AUTH_TOKEN="+token))

	game := gametest.Start(t, env...)
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.Processes).To(ContainElement(And(HaveField("ProcessID", "game-1"), HaveField("Status", gamev1.ServerProcessActive))))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", game.Out)
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "match"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-pods", MaximumPlayerSessionCount: 2}}
	g.Expect(admin.Create(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(gs.Status.IPAddress).To(Equal("127.0.0.1"))
		g.Expect(fmt.Sprint(gs.Status.Port)).To(Equal(game.Port))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", game.Out)

	// Rotation: a fresh token in the Secret before the first expires (for a container that restarts).
	g.Eventually(func(g Gomega) string {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		return string(secret.Data[gamev1.TokenSecretKey])
	}).WithTimeout(ttl).ShouldNot(Equal(token))
	recorded := func(g Gomega) { // the Compute records the Secret's token after the Secret is written
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.AuthTokens).To(ContainElement(HaveField("SHA256", computes.Hash(string(secret.Data[gamev1.TokenSecretKey])))))
	}
	g.Eventually(recorded).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(strings.Count(game.Out.String(), "started (max 2 players)")).To(Equal(1))
}
