package gameservers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/smithy-go"
	"github.com/gorilla/websocket"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/computes"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/gameservers"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
	"github.com/playersessions/operator/test/gameserver/game"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

func TestMain(m *testing.M) {
	game.RunIfAsked()
	os.Exit(m.Run())
}

func errorCode(err error) string {
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprint(err)
}

// TestAnywhereComputeAndTheRealSDK: the Anywhere path, as a GameLift user takes it with an AWS SDK:
// RegisterCompute hands out this operator's Server SDK endpoint, GetComputeAuthToken a token for the
// compute; the example game server (the official Go Server SDK v5, unmodified) connects with them from its
// environment alone, ProcessReady registers its process (port, log paths) on the Compute, and ProcessEnding
// ends it. Another tenant's key sees no compute; a wrong, another compute's or a deregistered compute's
// token is refused at connect.
func TestAnywhereComputeAndTheRealSDK(t *testing.T) {
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sdkAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true,
		GameLiftAddr: addr, GameLiftSDKAddr: sdkAddr}
	testenv.StartManager(t, cp, opts)
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "key-"+ns, ns, "AKID"+strings.ToUpper(ns[5:]), "secret-"+ns)).To(Succeed())
	}
	sdk := func(keyID, secret string) *gamelift.Client {
		return gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")})
	}
	a, b := sdk("AKIDA", "secret-team-a"), sdk("AKIDB", "secret-team-b")

	var registered *gamelift.RegisterComputeOutput
	g.Eventually(func() error { // the access keys reach the cache
		registered, err = a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1"),
			IpAddress: aws.String("10.0.0.5"), CertificatePath: aws.String("/local/certs/compute.pem")})
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	c := registered.Compute
	g.Expect(aws.ToString(c.GameLiftServiceSdkEndpoint)).To(Equal("ws://" + sdkAddr))
	g.Expect(c.ComputeStatus).To(BeEquivalentTo("ACTIVE"))
	g.Expect(aws.ToString(c.ComputeArn)).To(Equal("arn:aws:gamelift:local:000000000000:compute/fleet-sdk/compute-1"))
	g.Expect(*c.CreationTime).To(BeTemporally("~", time.Now(), 10*time.Second))
	again, err := a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1"),
		IpAddress: aws.String("10.0.0.5"), CertificatePath: aws.String("/local/certs/compute.pem")})
	g.Expect(err).NotTo(HaveOccurred(), "registering the same compute again is answered with it")
	g.Expect(aws.ToString(again.Compute.ComputeArn)).To(Equal(aws.ToString(c.ComputeArn)))
	_, err = a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1"), IpAddress: aws.String("10.0.0.6")})
	g.Expect(errorCode(err)).To(Equal("ConflictException"))
	_, err = a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-2")})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), "no address")
	_, err = a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("bad name!"), IpAddress: aws.String("10.0.0.6")})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"))
	_, err = a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("team-a/pod-2"), DnsName: aws.String("pod-2.game.example")})
	g.Expect(err).NotTo(HaveOccurred())

	described, err := a.DescribeCompute(ctx, &gamelift.DescribeComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(described.Compute.IpAddress)).To(Equal("10.0.0.5"))
	list, err := a.ListCompute(ctx, &gamelift.ListComputeInput{FleetId: aws.String("fleet-sdk"), Limit: aws.Int32(1)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list.ComputeList).To(HaveLen(1))
	g.Expect(list.NextToken).NotTo(BeNil())
	rest, err := a.ListCompute(ctx, &gamelift.ListComputeInput{FleetId: aws.String("fleet-sdk"), Limit: aws.Int32(1), NextToken: list.NextToken})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rest.ComputeList).To(HaveLen(1))
	g.Expect(rest.NextToken).To(BeNil())
	names := []string{aws.ToString(list.ComputeList[0].ComputeName), aws.ToString(rest.ComputeList[0].ComputeName)}
	g.Expect(names).To(ConsistOf("compute-1", "team-a/pod-2"))
	other, err := b.ListCompute(ctx, &gamelift.ListComputeInput{FleetId: aws.String("fleet-sdk")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.ComputeList).To(BeEmpty(), "another tenant's key sees no compute of team-a")
	_, err = b.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))

	token, err := a.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(token.AuthToken)).To(MatchRegexp(`^[a-zA-Z0-9\-]{1,64}$`))
	g.Expect(*token.ExpirationTimestamp).To(BeTemporally("~", time.Now().Add(3*time.Hour), time.Minute))
	compute := &gamev1.Compute{}
	key := client.ObjectKey{Namespace: "team-a", Name: computes.ObjectName("fleet-sdk", "compute-1")}
	g.Expect(admin.Get(ctx, key, compute)).To(Succeed())
	g.Expect(compute.Status.AuthTokens).To(HaveLen(1))
	g.Expect(compute.Status.AuthTokens[0].SHA256).To(Equal(computes.Hash(aws.ToString(token.AuthToken))), "only the token's hash is kept")

	// The real SDK, pointed here by its environment alone.
	env := func(tok, host string) []string {
		return []string{"GAMELIFT_SDK_WEBSOCKET_URL=" + aws.ToString(c.GameLiftServiceSdkEndpoint), "GAMELIFT_SDK_AUTH_TOKEN=" + tok,
			"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID=" + host, "GAMELIFT_SDK_PROCESS_ID=proc-1"}
	}
	p := gametest.Start(t, env(aws.ToString(token.AuthToken), "compute-1")...)
	process := func(g Gomega) gamev1.ServerProcess {
		g.Expect(admin.Get(ctx, key, compute)).To(Succeed())
		i := slices.IndexFunc(compute.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == "proc-1" })
		g.Expect(i).NotTo(Equal(-1), "no process proc-1")
		return compute.Status.Processes[i]
	}
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Status).To(Equal(gamev1.ServerProcessActive))
		g.Expect(fmt.Sprint(sp.Port)).To(Equal(p.Port))
		g.Expect(sp.LogPaths).To(Equal([]string{"/local/game/logs"}))
		g.Expect(sp.SDK).To(Equal("Go 5.6.0"))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)
	written := compute.ResourceVersion
	time.Sleep(time.Second) // three heartbeats
	g.Expect(p.Out.String()).To(ContainSubstring("Received HeartbeatServerProcess for GameLift with status 200"))
	g.Expect(admin.Get(ctx, key, compute)).To(Succeed())
	g.Expect(compute.ResourceVersion).To(Equal(written), "heartbeats write nothing")

	// Credentials that are not this compute's are refused at connect.
	dial := func(tok, host string) int {
		url := fmt.Sprintf("ws://%s/?pID=p&sdkVersion=5.6.0&sdkLanguage=Go&FleetId=fleet-sdk&ComputeId=%s&IdempotencyToken=x&Authorization=%s", sdkAddr, host, tok)
		conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			conn.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}
	g.Expect(dial("wrong-token", "compute-1")).To(Equal(http.StatusUnauthorized))
	g.Expect(dial(aws.ToString(token.AuthToken), "team-a/pod-2")).To(Equal(http.StatusUnauthorized), "another compute's token")

	// The other actions, by hand on a connection of the compute's token.
	raw, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/?pID=p-raw&sdkVersion=5.6.0&sdkLanguage=Go&FleetId=fleet-sdk&ComputeId=compute-1&IdempotencyToken=x&Authorization=%s",
		sdkAddr, aws.ToString(token.AuthToken)), nil)
	g.Expect(err).NotTo(HaveOccurred())
	defer raw.Close()
	call := func(action string) map[string]any {
		g.Expect(raw.WriteJSON(map[string]any{"Action": action, "RequestId": "r-" + action})).To(Succeed())
		var m map[string]any
		g.Expect(raw.ReadJSON(&m)).To(Succeed())
		return m
	}
	g.Expect(call("GetComputeCertificate")).To(Equal(map[string]any{"Action": "GetComputeCertificate", "RequestId": "r-GetComputeCertificate",
		"StatusCode": 200.0, "CertificatePath": "/local/certs/compute.pem", "ComputeName": "compute-1"}))
	g.Expect(call("GetFleetRoleCredentials")).To(And(HaveKeyWithValue("StatusCode", 200.0), HaveKeyWithValue("AccessKeyId", "")), "not a managed fleet")
	g.Expect(call("StartMatchBackfill")["ErrorMessage"]).To(ContainSubstring("matchmaking backfill is not offered"))
	g.Expect(call("ActivateGameSession")["ErrorMessage"]).To(ContainSubstring("needs a GameSessionId"))
	g.Expect(call("AcceptPlayerSession")["ErrorMessage"]).To(ContainSubstring("a PlayerSessionId is needed"))
	g.Expect(call("DescribePlayerSessions")["ErrorMessage"]).To(ContainSubstring("Exactly one of PlayerSessionId, GameSessionId or PlayerId"))

	// No game session is placed on a process yet: the SDK itself refuses to accept a player.
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.Port)
	g.Expect(err).NotTo(HaveOccurred())
	fmt.Fprintln(conn, "psess-1")
	answer, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	g.Expect(answer).To(ContainSubstring("No game sessions are bound to this process"))

	// ProcessEnding: the game ends (a player line END), the process is TERMINATED on its compute.
	conn, err = net.Dial("tcp", "127.0.0.1:"+p.Port)
	g.Expect(err).NotTo(HaveOccurred())
	fmt.Fprintln(conn, "END")
	conn.Close()
	g.Eventually(func(g Gomega) {
		sp := process(g)
		g.Expect(sp.Status).To(Equal(gamev1.ServerProcessTerminated))
		g.Expect(sp.TerminationTime).NotTo(BeNil())
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)
	g.Expect(p.Cmd.Wait()).To(Succeed(), "%s", p.Out)

	// Deregistered: its token no longer connects.
	_, err = a.DeregisterCompute(ctx, &gamelift.DeregisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = a.DescribeCompute(ctx, &gamelift.DescribeComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))
	g.Eventually(func() int { return dial(aws.ToString(token.AuthToken), "compute-1") }).WithTimeout(20 * time.Second).Should(Equal(http.StatusUnauthorized))
}

// TestPlacementOnTheRealSDK: a game session created with kubectl on a fleet with registered computes is
// placed on the idle process (the example game server, the official SDK, unmodified), pushed to it, and
// ACTIVE once the game calls ActivateGameSession, with the compute's address and the port the process
// reported; the process is then busy, so a second game session waits (Placed False, NoIdleProcess) until a
// process is idle. A second ActivateGameSession is refused.
func TestPlacementOnTheRealSDK(t *testing.T) {
	g := NewWithT(t)
	e := startCompute(t, 0)
	admin, a, sdkAddr, token, p, key := e.admin, e.sdk, e.sdkAddr, e.token, e.process, e.key
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		c := &gamev1.Compute{}
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.Processes).To(ContainElement(HaveField("Status", gamev1.ServerProcessActive)))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)

	create := func(name string) *gamev1.GameSession {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-sdk", MaximumPlayerSessionCount: 4, Name: name,
				GameProperties: []gamev1.GameProperty{{Key: "map", Value: "dust"}}}}
		g.Expect(admin.Create(ctx, gs)).To(Succeed())
		return gs
	}
	get := func(g Gomega, name string) *gamev1.GameSession {
		gs := &gamev1.GameSession{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: name}, gs)).To(Succeed())
		return gs
	}
	create("match-1")
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-1")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(gs.Status.IPAddress).To(Equal("10.0.0.5"))
		g.Expect(fmt.Sprint(gs.Status.Port)).To(Equal(p.Port))
		g.Expect(gs.Status.Process).To(Equal(&gamev1.ServerProcessRef{Compute: key.Name, ProcessID: "proc-1"}))
		g.Expect(gs.Status.GameServer).To(Equal(gameservers.ClaimPrefix + key.Name + "/proc-1"))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)
	g.Expect(p.Out.String()).To(ContainSubstring("started (max 4 players)"))
	claim := &gamev1.ProcessClaim{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: computes.ClaimName(key.Name, "proc-1")}, claim)).To(Succeed())
	g.Expect(claim.Spec.GameSessionName).To(Equal("match-1"))

	// Players of match-1 connect to the game: accepted (ACTIVE) through the SDK, COMPLETED when they leave; a
	// player of another game session is refused.
	reserve := func(name, game string) *gamev1.PlayerSession {
		ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: name, PlayerData: `{"team":"red"}`}}
		g.Expect(admin.Create(ctx, ps)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(ps), ps)).To(Succeed())
			g.Expect(ps.Status.PlayerSessionID).NotTo(BeEmpty())
		}).WithTimeout(20 * time.Second).Should(Succeed())
		return ps
	}
	status := func(g Gomega, ps *gamev1.PlayerSession) gamev1.PlayerSessionStatusValue {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(ps), ps)).To(Succeed())
		return ps.Status.Status
	}
	alice := reserve("alice", "match-1")
	g.Eventually(func(g Gomega) gamev1.PlayerSessionStatusValue { return status(g, alice) }).WithTimeout(20 * time.Second).Should(Equal(gamev1.PlayerSessionReserved))
	player := func(psid string) (net.Conn, string) {
		conn, err := net.Dial("tcp", "127.0.0.1:"+p.Port)
		g.Expect(err).NotTo(HaveOccurred())
		fmt.Fprintln(conn, psid)
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return conn, strings.TrimSpace(line)
	}
	conn, answer := player(alice.Status.PlayerSessionID)
	g.Expect(answer).To(Equal("OK"), "%s", p.Out)
	g.Expect(status(g, alice)).To(Equal(gamev1.PlayerSessionActive))
	// The game read its player with the SDK's DescribePlayerSessions (times in epoch milliseconds).
	g.Eventually(p.Out.String).Should(MatchRegexp(`player ` + alice.Status.PlayerSessionID + ` is ACTIVE, player data "\{\\"team\\":\\"red\\"\}", since 1[0-9]{12}\n`))
	elsewhere := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "elsewhere"}, // not on an SDK process
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-sdk", MaximumPlayerSessionCount: 4, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7000}}}
	g.Expect(admin.Create(ctx, elsewhere)).To(Succeed())
	bob := reserve("bob", "elsewhere")
	other, answer := player(bob.Status.PlayerSessionID)
	other.Close()
	g.Expect(answer).To(HavePrefix("REFUSED"))
	conn.Close()
	g.Eventually(func(g Gomega) gamev1.PlayerSessionStatusValue { return status(g, alice) }).WithTimeout(20 * time.Second).Should(Equal(gamev1.PlayerSessionCompleted))

	// A second ActivateGameSession, by hand on the process's connection: refused. The game server's own
	// UpdatePlayerSessionCreationPolicy reaches its game session.
	raw1 := dialProcess(t, sdkAddr, "proc-1", aws.ToString(token.AuthToken))
	m := raw1.call(t, map[string]any{"Action": "ActivateGameSession", "GameSessionId": get(g, "match-1").Status.GameSessionID})
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(409))
	g.Expect(m["ErrorMessage"]).To(ContainSubstring("activated already"))
	m = raw1.call(t, map[string]any{"Action": "UpdatePlayerSessionCreationPolicy", "GameSessionId": get(g, "match-1").Status.GameSessionID, "PlayerSessionPolicy": "DENY_ALL"})
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(200), "%v", m)
	g.Expect(get(g, "match-1").Spec.PlayerSessionCreationPolicy).To(Equal(gamev1.PlayerSessionCreationPolicyDenyAll))
	gsid := get(g, "match-1").Status.GameSessionID
	m = raw1.call(t, map[string]any{"Action": "DescribePlayerSessions", "GameSessionId": gsid, "Limit": 1})
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(200), "%v", m)
	g.Expect(m["PlayerSessions"]).To(HaveLen(1))
	g.Expect(m["PlayerSessions"].([]any)[0]).To(HaveKeyWithValue("Status", "COMPLETED"))
	g.Expect(m["NextToken"]).To(BeEmpty(), "alice only")
	m = raw1.call(t, map[string]any{"Action": "DescribePlayerSessions", "GameSessionId": gsid, "PlayerId": "alice"})
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(400))
	g.Expect(m["ErrorMessage"]).To(ContainSubstring("Exactly one of PlayerSessionId, GameSessionId or PlayerId"))
	m = raw1.call(t, map[string]any{"Action": "UpdatePlayerSessionCreationPolicy", "GameSessionId": "arn:aws:gamelift:local::gamesession/fleet-sdk/other", "PlayerSessionPolicy": "DENY_ALL"})
	g.Expect(m["ErrorMessage"]).To(ContainSubstring("is not the one placed on process proc-1"))

	// A second process, by hand: registered, then unhealthy (its heartbeat says so): no game session for it,
	// so CreateGameSession is FleetCapacityExceededException and a game session created with kubectl waits.
	raw := dialProcess(t, sdkAddr, "proc-raw", aws.ToString(token.AuthToken))
	g.Expect(raw.call(t, map[string]any{"Action": "ActivateServerProcess", "SdkVersion": "5.6.0", "SdkLanguage": "Go", "Port": 7001})["StatusCode"]).To(BeEquivalentTo(200))
	g.Expect(raw.call(t, map[string]any{"Action": "HeartbeatServerProcess", "HealthStatus": false})["StatusCode"]).To(BeEquivalentTo(200))
	processOf := func(g Gomega, id string) gamev1.ServerProcess {
		c := &gamev1.Compute{}
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == id })
		g.Expect(i).NotTo(Equal(-1))
		return c.Status.Processes[i]
	}
	g.Eventually(func(g Gomega) { g.Expect(processOf(g, "proc-raw").Unhealthy).To(BeTrue()) }).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(func() string {
		out, err := a.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-sdk"), MaximumPlayerSessionCount: aws.Int32(2)})
		if err == nil { // the endpoint's cache did not see the process unhealthy yet: end it, it must not take the process
			_, _ = a.TerminateGameSession(ctx, &gamelift.TerminateGameSessionInput{GameSessionId: out.GameSession.GameSessionId, TerminationMode: "FORCE_TERMINATE"})
		}
		return errorCode(err)
	}).WithTimeout(10 * time.Second).Should(Equal("FleetCapacityExceededException"))
	create("match-2")
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-2")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActivating))
		cond := meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameSessionPlacedCondition)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(gamev1.NoIdleProcessReason))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(get(g, "match-2").Status.Process).To(BeNil()) }).WithTimeout(2 * time.Second).Should(Succeed())

	// Healthy again: match-2 is placed on it and pushed; activated, it is ACTIVE on the process's port.
	g.Expect(raw.call(t, map[string]any{"Action": "HeartbeatServerProcess", "HealthStatus": true})["StatusCode"]).To(BeEquivalentTo(200))
	push := raw.push(t)
	g.Expect(push["Action"]).To(Equal("CreateGameSession"))
	g.Expect(push["GameSessionName"]).To(Equal("match-2"))
	g.Expect(push["Port"]).To(BeEquivalentTo(7001))
	g.Expect(push["IpAddress"]).To(Equal("10.0.0.5"))
	g.Expect(push["GameProperties"]).To(Equal(map[string]any{"map": "dust"}))
	g.Expect(raw.call(t, map[string]any{"Action": "ActivateGameSession", "GameSessionId": push["GameSessionId"]})["StatusCode"]).To(BeEquivalentTo(200))
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-2")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(gs.Status.Port).To(BeEquivalentTo(7001))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// TerminateGameSession, TRIGGER_ON_PROCESS_TERMINATE: TERMINATING, the real game gets TerminateProcess,
	// calls ProcessEnding and exits; the game session is TERMINATED with the trigger's reason.
	out, err := a.TerminateGameSession(ctx, &gamelift.TerminateGameSessionInput{GameSessionId: aws.String(gsid), TerminationMode: "TRIGGER_ON_PROCESS_TERMINATE"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.GameSession.Status).To(BeEquivalentTo("TERMINATING"))
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-1")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionTerminated))
		g.Expect(gs.Status.StatusReason).To(Equal("TRIGGERED_ON_PROCESS_TERMINATE"))
	}).WithTimeout(30*time.Second).Should(Succeed(), "%s", p.Out)
	g.Expect(p.Out.String()).To(ContainSubstring("TerminateProcess received"))
	g.Expect(p.Cmd.Wait()).To(Succeed(), "%s", p.Out)
	_, err = a.TerminateGameSession(ctx, &gamelift.TerminateGameSessionInput{GameSessionId: aws.String(gsid), TerminationMode: "FORCE_TERMINATE"})
	g.Expect(errorCode(err)).To(Equal("InvalidGameSessionStatusException"), "already TERMINATED")

	// A game session on no process (none is idle): only FORCE_TERMINATE ends it, at once.
	create("match-3")
	var gsid3 string
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-3")
		g.Expect(gs.Status.GameSessionID).NotTo(BeEmpty())
		g.Expect(meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameSessionPlacedCondition)).NotTo(BeNil())
		gsid3 = gs.Status.GameSessionID
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Eventually(func() string {
		_, err := a.TerminateGameSession(ctx, &gamelift.TerminateGameSessionInput{GameSessionId: aws.String(gsid3), TerminationMode: "TRIGGER_ON_PROCESS_TERMINATE"})
		return errorCode(err)
	}).WithTimeout(10 * time.Second).Should(Equal("InvalidGameSessionStatusException"))
	_, err = a.TerminateGameSession(ctx, &gamelift.TerminateGameSessionInput{GameSessionId: aws.String(gsid3), TerminationMode: "FORCE_TERMINATE"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(g, "match-3").Status.StatusReason).To(Equal("FORCE_TERMINATED"))
	g.Expect(get(g, "match-3").Status.Status).To(Equal(gamev1.GameSessionTerminated))

	// The compute deregistered: match-2, on a process gone with it, is TERMINATED with reason INTERRUPTED.
	_, err = a.DeregisterCompute(ctx, &gamelift.DeregisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		gs := get(g, "match-2")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionTerminated))
		g.Expect(gs.Status.StatusReason).To(Equal(gamev1.GameSessionInterrupted))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// rawProcess is a connection that speaks the SDK's protocol by hand, as process pID of compute-1.
type rawProcess struct {
	conn   *websocket.Conn
	n      int
	pushes []map[string]any
}

func dialProcess(t *testing.T, sdkAddr, pID, token string) *rawProcess {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/?pID=%s&sdkVersion=5.6.0&sdkLanguage=Go&FleetId=fleet-sdk&ComputeId=compute-1&IdempotencyToken=x&Authorization=%s",
		sdkAddr, pID, token), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawProcess{conn: conn}
}

// call sends a request and returns its answer (pushes that arrive first are kept for push).
func (r *rawProcess) call(t *testing.T, req map[string]any) map[string]any {
	t.Helper()
	r.n++
	id := fmt.Sprint("req-", r.n)
	req["RequestId"] = id
	if err := r.conn.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
	for {
		m := r.read(t)
		if m["RequestId"] == id {
			return m
		}
		r.pushes = append(r.pushes, m)
	}
}

// push returns the next message without a RequestId the service pushed.
func (r *rawProcess) push(t *testing.T) map[string]any {
	t.Helper()
	if len(r.pushes) > 0 {
		m := r.pushes[0]
		r.pushes = r.pushes[1:]
		return m
	}
	return r.read(t)
}

func (r *rawProcess) read(t *testing.T) map[string]any {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var m map[string]any
	if err := r.conn.ReadJSON(&m); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return m
}

// TestRefreshConnection: a process connected with a token gets a fresh one before it expires, pushed with
// RefreshConnection; the SDK reconnects with it, and keeps working once the first token has expired (which
// no longer connects).
func TestRefreshConnection(t *testing.T) {
	g := NewWithT(t)
	const ttl = 4 * time.Second
	e := startCompute(t, ttl)
	admin, sdkAddr, token, p := e.admin, e.sdkAddr, e.token, e.process
	ctx := context.Background()
	key := e.key
	g.Eventually(func(g Gomega) {
		c := &gamev1.Compute{}
		g.Expect(admin.Get(ctx, key, c)).To(Succeed())
		g.Expect(c.Status.Processes).To(ContainElement(HaveField("Status", gamev1.ServerProcessActive)))
		g.Expect(c.Status.AuthTokens).To(HaveLen(2), "a fresh token")
	}).WithTimeout(20*time.Second).Should(Succeed(), "%s", p.Out)
	g.Eventually(func() int { return strings.Count(p.Out.String(), "Connecting to Amazon GameLift Servers WebSocket") }).
		WithTimeout(10*time.Second).Should(BeNumerically(">=", 2), "the SDK reconnected with it")

	// Past the first token's life: it no longer connects, and the process works on its fresh connection.
	time.Sleep(time.Until(*token.ExpirationTimestamp) + time.Second)
	url := fmt.Sprintf("ws://%s/?pID=p&sdkVersion=5.6.0&sdkLanguage=Go&FleetId=fleet-sdk&ComputeId=compute-1&IdempotencyToken=x&Authorization=%s", sdkAddr, aws.ToString(token.AuthToken))
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	g.Expect(err).To(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	heartbeats := strings.Count(p.Out.String(), "Received HeartbeatServerProcess for GameLift with status 200")
	g.Eventually(func() int {
		return strings.Count(p.Out.String(), "Received HeartbeatServerProcess for GameLift with status 200")
	}).
		WithTimeout(10*time.Second).Should(BeNumerically(">", heartbeats), "%s", p.Out)
}

// computeEnv is a manager with the GameLift endpoint and the Server SDK's endpoint, a tenant team-a with an
// access key, its compute compute-1 of fleet-sdk (10.0.0.5) with a token, and the example game server
// connected with it as proc-1.
type computeEnv struct {
	admin   client.Client
	sdk     *gamelift.Client
	sdkAddr string
	token   *gamelift.GetComputeAuthTokenOutput
	process *gametest.Process
	key     client.ObjectKey
}

func startCompute(t *testing.T, tokenTTL time.Duration) *computeEnv {
	t.Helper()
	g := NewWithT(t)
	cp := testenv.ControlPlane(t, localcp.Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sdkAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	testenv.StartManager(t, cp, manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true,
		GameLiftAddr: addr, GameLiftSDKAddr: sdkAddr, GameLiftComputeTokenTTL: tokenTTL})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})).To(Succeed())
	g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "key-team-a", "team-a", "AKIDA", "secret-team-a")).To(Succeed())
	a := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDA", "secret-team-a", "")})
	g.Eventually(func() error {
		_, err := a.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1"), IpAddress: aws.String("10.0.0.5")})
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	token, err := a.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-1")})
	g.Expect(err).NotTo(HaveOccurred())
	p := gametest.Start(t, "GAMELIFT_SDK_WEBSOCKET_URL=ws://"+sdkAddr, "GAMELIFT_SDK_AUTH_TOKEN="+aws.ToString(token.AuthToken),
		"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID=compute-1", "GAMELIFT_SDK_PROCESS_ID=proc-1")
	return &computeEnv{admin: admin, sdk: a, sdkAddr: sdkAddr, token: token, process: p,
		key: client.ObjectKey{Namespace: "team-a", Name: computes.ObjectName("fleet-sdk", "compute-1")}}
}

// TestManyProcessesManyGameSessions: eight SDK processes (the example game server, each its own SDK) on two
// computes of a fleet, and eight game sessions created at once: each game session is placed on exactly one
// process, no process takes two, and every game session is ACTIVE on its process's port.
func TestManyProcessesManyGameSessions(t *testing.T) {
	g := NewWithT(t)
	e := startCompute(t, 0) // compute-1 with proc-1
	ctx := context.Background()
	_, err := e.sdk.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-2"), IpAddress: aws.String("10.0.0.6")})
	g.Expect(err).NotTo(HaveOccurred())
	token2, err := e.sdk.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String("compute-2")})
	g.Expect(err).NotTo(HaveOccurred())
	ports := map[string]string{"compute-1/proc-1": e.process.Port}
	outs := []*gametest.Output{e.process.Out} // printed if one does not register
	for i := 2; i <= 8; i++ {
		compute, tok := "compute-1", aws.ToString(e.token.AuthToken)
		if i%2 == 0 {
			compute, tok = "compute-2", aws.ToString(token2.AuthToken)
		}
		p := gametest.Start(t, "GAMELIFT_SDK_WEBSOCKET_URL=ws://"+e.sdkAddr, "GAMELIFT_SDK_AUTH_TOKEN="+tok,
			"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID="+compute, fmt.Sprint("GAMELIFT_SDK_PROCESS_ID=proc-", i))
		ports[fmt.Sprint(compute, "/proc-", i)] = p.Port
		outs = append(outs, p.Out)
	}
	active := func(g Gomega) int {
		n := 0
		for _, name := range []string{"compute-1", "compute-2"} {
			c := &gamev1.Compute{}
			g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: computes.ObjectName("fleet-sdk", name)}, c)).To(Succeed())
			for _, sp := range c.Status.Processes {
				if sp.Status == gamev1.ServerProcessActive {
					n++
				}
			}
		}
		return n
	}
	g.Eventually(active).WithTimeout(60*time.Second).Should(Equal(8), "the game servers said:\n%v", outs)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			errs[i] = e.admin.Create(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprint("match-", i)},
				Spec: gamev1.GameSessionSpec{FleetID: "fleet-sdk", MaximumPlayerSessionCount: 2}})
		})
	}
	wg.Wait()
	g.Expect(errors.Join(errs...)).NotTo(HaveOccurred())
	var used map[string]string
	g.Eventually(func(g Gomega) {
		var list gamev1.GameSessionList
		g.Expect(e.admin.List(ctx, &list, client.InNamespace("team-a"))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(8))
		used = map[string]string{}
		for _, gs := range list.Items {
			g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive), gs.Name)
			g.Expect(gs.Status.Process).NotTo(BeNil())
			var c gamev1.Compute
			g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: gs.Status.Process.Compute}, &c)).To(Succeed())
			where := c.Spec.ComputeName + "/" + gs.Status.Process.ProcessID
			g.Expect(used).NotTo(HaveKey(where), "two game sessions on one process")
			used[where] = gs.Name
			g.Expect(fmt.Sprint(gs.Status.Port)).To(Equal(ports[where]))
			g.Expect(gs.Status.IPAddress).To(Equal(c.Spec.IPAddress))
		}
	}).WithTimeout(60 * time.Second).Should(Succeed())
	for _, name := range []string{"compute-1", "compute-2"} { // and each process's claim is its game session's
		c := &gamev1.Compute{}
		g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: computes.ObjectName("fleet-sdk", name)}, c)).To(Succeed())
		for _, sp := range c.Status.Processes {
			claim := &gamev1.ProcessClaim{}
			g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: computes.ClaimName(c.Name, sp.ProcessID)}, claim)).To(Succeed(), sp.ProcessID)
			g.Expect(used).To(HaveKeyWithValue(c.Spec.ComputeName+"/"+sp.ProcessID, claim.Spec.GameSessionName))
		}
	}
}
