package gameservers_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/agones/agonestest"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// TestAgonesFleetOfGameLiftServers: config/samples/gamelift-sdk/agones-fleet.yaml, with the test playing
// Agones (its CRDs, its allocator, the GameServer's state as its controller writes it, the Pod it creates
// from the Fleet's template). The GameServer's Pod gets the SDK's environment, the example game server in
// it calls ProcessReady, and the operator plays the Agones SDK's part: the GameServer is RequestReady. Once
// Agones makes it Ready, CreateGameSession (aws-sdk-go-v2) on the Agones fleet allocates it through
// GameServerAllocation, the game session is pushed to its process, and the game's ActivateGameSession makes
// it ACTIVE at the GameServer's address and port (not the Pod's). A player is accepted through the SDK.
// The game ends (ProcessEnding): the game session is TERMINATED and the GameServer Shutdown.
func TestAgonesFleetOfGameLiftServers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp := testenv.ControlPlane(t, localcp.Options{Aggregation: true, WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")}})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{testenv.Path("test", "crds", "agones")}})
	g.Expect(err).NotTo(HaveOccurred())
	stop, err := cp.ServeAPIService("allocation.agones.dev", "v1", &agonestest.Allocator{Client: admin})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(stop)
	addr, sdkAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	testenv.StartManager(t, cp, manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		AgonesDiscoveryInterval: 200 * time.Millisecond, GameLiftAddr: addr, GameLiftSDKAddr: sdkAddr,
		WebhookHost: cp.WebhookHost, WebhookPort: cp.WebhookPort, WebhookCertDir: cp.WebhookCertDir, WebhookClientCAName: cp.WebhookClientCAName})
	const ns = "arena"
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "key-arena", ns, "AKIDARENA", "secret-arena")).To(Succeed())

	data, err := os.ReadFile(testenv.Path("config", "samples", "gamelift-sdk", "agones-fleet.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	fleet := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal(data, &fleet.Object)).To(Succeed())
	fleet.SetNamespace(ns)
	g.Expect(admin.Create(ctx, fleet)).To(Succeed())

	// Agones creates a GameServer from the Fleet, schedules it, and creates its Pod from the template.
	const name = "fleet-gamelift-x7k2p"
	_, err = agonestest.CreateGameServer(ctx, admin, agonestest.GameServerOptions{Namespace: ns, Name: name, Fleet: "fleet-gamelift",
		State: agones.StateScheduled, Address: "10.9.9.9", Ports: []agones.Port{{Name: "game", Port: 30777}}})
	g.Expect(err).NotTo(HaveOccurred())
	podTemplate, _, _ := unstructured.NestedMap(fleet.Object, "spec", "template", "spec", "template")
	pod := &corev1.Pod{}
	g.Expect(runtimeConvert(podTemplate, pod)).To(Succeed())
	pod.Namespace, pod.Name = ns, name
	pod.Labels["agones.dev/role"], pod.Labels[agones.GameServerPodLabel] = "gameserver", name
	g.Expect(admin.Create(ctx, pod)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	g.Expect(admin.Status().Update(ctx, pod)).To(Succeed())
	var env []string
	g.Eventually(func() error {
		env, err = gametest.PodEnv(ctx, admin, pod)
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(env).To(ContainElements("GAMELIFT_SDK_FLEET_ID=fleet-gamelift", "GAMELIFT_SDK_HOST_ID="+name))
	game := gametest.Start(t, env...)

	server := func(g Gomega) agones.GameServer {
		u := agones.NewGameServer()
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
		return agones.Parse(u)
	}
	g.Eventually(func(g Gomega) string { return server(g).State }).WithTimeout(30*time.Second).
		Should(Equal(agones.StateRequestReady), "ProcessReady is the game server's Ready(): %s", game.Out)
	g.Expect(agonestest.SetState(ctx, admin, ns, name, agones.StateReady)).To(Succeed()) // Agones' controller

	backend := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDARENA", "secret-arena", "")})
	var created *gamelift.CreateGameSessionOutput
	g.Eventually(func() error {
		created, err = backend.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-gamelift"), MaximumPlayerSessionCount: aws.Int32(4)})
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	gsid := created.GameSession.GameSessionId
	g.Eventually(func(g Gomega) {
		out, err := backend.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: gsid})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(out.GameSessions[0].Status)).To(Equal("ACTIVE"))
		g.Expect(aws.ToString(out.GameSessions[0].IpAddress)).To(Equal("10.9.9.9"), "the GameServer's address")
		g.Expect(aws.ToInt32(out.GameSessions[0].Port)).To(BeEquivalentTo(30777), "the GameServer's port")
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", game.Out)
	g.Expect(server(g).State).To(Equal(agones.StateAllocated))
	g.Expect(game.Out.String()).To(ContainSubstring("started (max 4 players)"), "pushed to the process")
	var list gamev1.GameSessionList
	g.Expect(admin.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	g.Expect(list.Items[0].Status.Process).NotTo(BeNil())
	g.Expect(list.Items[0].Status.Process.ProcessID).To(Equal(name))

	ps, err := backend.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: gsid, PlayerId: aws.String("alice")})
	g.Expect(err).NotTo(HaveOccurred())
	talk := func(line string) string {
		conn, err := net.Dial("tcp", "127.0.0.1:"+game.Port) // the test reaches the Pod directly
		g.Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		fmt.Fprintln(conn, line)
		answer, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.TrimSpace(answer)
	}
	g.Expect(talk(aws.ToString(ps.PlayerSession.PlayerSessionId))).To(Equal("OK"), "%s", game.Out)

	talk("END") // the game ends: ProcessEnding
	g.Eventually(func(g Gomega) {
		out, err := backend.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: gsid})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(out.GameSessions[0].Status)).To(Equal("TERMINATED"))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", game.Out)
	g.Eventually(func(g Gomega) string { return server(g).State }).WithTimeout(20*time.Second).
		Should(Equal(agones.StateShutdown), "ProcessEnding is the game server's Shutdown()")
}

// runtimeConvert converts an unstructured map into a typed object.
func runtimeConvert(from map[string]any, to any) error {
	b, err := yaml.Marshal(from)
	if err != nil {
		return err
	}
	return yaml.UnmarshalStrict(b, to)
}
