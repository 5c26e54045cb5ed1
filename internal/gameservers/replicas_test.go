package gameservers_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/computes"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/replicas"
	"github.com/playersessions/operator/internal/testenv"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// TestTwoReplicasRestartAndLoss: two managers, as config/manager deploys them. The game server's socket is
// on replica a, the backend's calls go to replica b (CreateGameSession, CreatePlayerSession,
// DescribePlayerSessions through aws-sdk-go-v2): placed once, pushed by a, ACTIVE, its player accepted.
// Replica a restarts mid-session (a new run, same name): the SDK reconnects to it, its connection is
// recorded as the new run's, the game session is still ACTIVE on the same process, nothing is placed twice
// and the game accepts and removes players as before. Then the game server is killed: its process is
// TERMINATED (ConnectionLost) after the reconnection grace, and its game session ends INTERRUPTED.
func TestTwoReplicasRestartAndLoss(t *testing.T) {
	g := NewWithT(t)
	const grace, lease = 20 * time.Second, 2 * time.Second
	cp := testenv.ControlPlane(t, localcp.Options{})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})).To(Succeed())
	g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "key-team-a", "team-a", "AKIDA", "secret-team-a")).To(Succeed())

	type replica struct {
		*testenv.Manager
		addr, sdkAddr string
	}
	start := func(name, addr, sdkAddr string) replica {
		opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true,
			LeaderElect: true, LeaderElectionNamespace: gl.DefaultKeyNamespace, LeaseDuration: lease, RenewDeadline: lease * 3 / 4, RetryPeriod: 200 * time.Millisecond,
			GameLiftAddr: addr, GameLiftSDKAddr: sdkAddr, ReplicaName: name, ReplicaLeaseDuration: lease}
		opts.Controllers.ProcessReconnectGrace = grace
		return replica{testenv.StartManager(t, cp, opts), addr, sdkAddr}
	}
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	b := start("b", free(), free())
	<-b.Elected() // b leads throughout: a's restart does not move the controllers
	a := start("a", free(), free())
	backend := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + b.addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDA", "secret-team-a", "")})
	g.Eventually(func() error {
		_, err := backend.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1"), IpAddress: aws.String("10.0.0.5")})
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	token, err := backend.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	p := gametest.Start(t, "GAMELIFT_SDK_WEBSOCKET_URL=ws://"+a.sdkAddr, "GAMELIFT_SDK_AUTH_TOKEN="+aws.ToString(token.AuthToken),
		"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID=compute-1", "GAMELIFT_SDK_PROCESS_ID=proc-1")
	key := client.ObjectKey{Namespace: "team-a", Name: computes.ObjectName("fleet-sdk", "compute-1")}
	process := func(g Gomega) gamev1.ServerProcess {
		c := &gamev1.Compute{}
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.Processes).To(HaveLen(1))
		return c.Status.Processes[0]
	}
	var firstRun string
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Status).To(Equal(gamev1.ServerProcessActive))
		g.Expect(sp.Connection).NotTo(BeNil())
		g.Expect(sp.Connection.Replica).To(Equal(replicas.LeaseName("a")))
		firstRun = sp.Connection.Holder
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)

	var created *gamelift.CreateGameSessionOutput
	g.Eventually(func() string { // replica b's cache sees the process idle a moment after the API server does
		created, err = backend.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-sdk"), MaximumPlayerSessionCount: aws.Int32(4), Name: aws.String("match")})
		return errorCode(err) // the code, not the SDK's error value (gomega's formatting of it races with the SDK)
	}).WithTimeout(10 * time.Second).Should(Equal("<nil>"))
	gsid := created.GameSession.GameSessionId
	described := func(g Gomega) string {
		out, err := backend.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: gsid})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out.GameSessions).To(HaveLen(1))
		return string(out.GameSessions[0].Status)
	}
	g.Eventually(described).WithTimeout(30*time.Second).Should(Equal("ACTIVE"), "%s", p.Out)
	player := func(name string) (string, func() string) {
		ps, err := backend.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: gsid, PlayerId: aws.String(name)})
		g.Expect(err).NotTo(HaveOccurred())
		id := aws.ToString(ps.PlayerSession.PlayerSessionId)
		conn, err := net.Dial("tcp", "127.0.0.1:"+p.Port)
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintln(conn, id)
		line, _ := bufio.NewReader(conn).ReadString('\n')
		g.Expect(strings.TrimSpace(line)).To(Equal("OK"), "%s", p.Out)
		return id, func() string {
			out, err := backend.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerSessionId: aws.String(id)})
			g.Expect(err).NotTo(HaveOccurred())
			return string(out.PlayerSessions[0].Status)
		}
	}
	_, alice := player("alice")
	g.Eventually(alice).WithTimeout(10*time.Second).Should(Equal("ACTIVE"), "as replica b's index sees it")

	// Replica a restarts: the same name and addresses, a new run.
	a.Stop()
	a = start("a", a.addr, a.sdkAddr)
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Connection).NotTo(BeNil())
		g.Expect(sp.Connection.Holder).NotTo(Equal(firstRun), "the connection is the new run's")
		g.Expect(sp.Connection.DisconnectionTime).To(BeNil())
	}).WithTimeout(grace).Should(Succeed(), "%s", p.Out)
	sp := process(g)
	g.Expect(sp.Status).To(Equal(gamev1.ServerProcessActive))
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: computes.ClaimName(key.Name, sp.ProcessID)}, &gamev1.ProcessClaim{})).To(Succeed())
	g.Expect(described(g)).To(Equal("ACTIVE"))
	g.Expect(strings.Count(p.Out.String(), "started (max 4 players)")).To(Equal(1), "the game session was pushed once")
	var list gamev1.GameSessionList
	g.Expect(admin.List(ctx, &list, client.InNamespace("team-a"))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	g.Eventually(alice).WithTimeout(10*time.Second).Should(Equal("ACTIVE"), "as replica b's index sees it")
	_, bob := player("bob") // accepted over the new connection
	g.Eventually(bob).WithTimeout(10 * time.Second).Should(Equal("ACTIVE"))

	// The game server dies: no ProcessEnding, no reconnection.
	g.Expect(p.Cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Connection).NotTo(BeNil())
		g.Expect(sp.Connection.DisconnectionTime).NotTo(BeNil())
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Consistently(described).WithTimeout(grace/2).Should(Equal("ACTIVE"), "within the grace period the process may come back")
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Status).To(Equal(gamev1.ServerProcessTerminated))
		g.Expect(sp.TerminationReason).To(Equal(gamev1.ConnectionLostReason))
	}).WithTimeout(grace).Should(Succeed())
	g.Eventually(described).WithTimeout(10 * time.Second).Should(Equal("TERMINATED"))
	out, err := backend.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: gsid})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.GameSessions[0].StatusReason).To(BeEquivalentTo("INTERRUPTED"))
	g.Eventually(alice).WithTimeout(10*time.Second).Should(Equal("COMPLETED"), "the players of an ended game session are ended")
}
