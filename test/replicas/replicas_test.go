// Package replicas runs two managers against one control plane, as config/manager deploys them: one
// elected leader runs the controllers, both serve the query API and the GameLift endpoint.
package replicas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/testenv"
)

const (
	ns      = "tenant"
	keyID   = "AKIDREPLICAS"
	secret  = "replica-secret"
	timeout = 4 * time.Second // the acceptance timeout, short
	lease   = 2 * time.Second
)

var psGVR = queryv1.SchemeGroupVersion.WithResource("playersessions")

// replica is one manager and how clients reach it.
type replica struct {
	*testenv.Manager
	name     string
	query    dynamic.NamespaceableResourceInterface // its own query API server
	gamelift *gamelift.Client
	url      string // its GameLift endpoint
}

func startReplica(t *testing.T, cp *localcp.ControlPlane, name string, queryPort int) *replica {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	opts := manager.Options{
		Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		LeaderElect: true, LeaderElectionNamespace: "default",
		LeaseDuration: lease, RenewDeadline: lease * 3 / 4, RetryPeriod: 200 * time.Millisecond,
		QueryPort: queryPort, QueryBindAddress: net.ParseIP("127.0.0.1"), QueryCertDir: cp.ServingCertDir, QueryKubeconfig: cp.Kubeconfig,
		QueryTokenKeySecret:   types.NamespacedName{Namespace: "default", Name: "query-token-key"},
		QuerySnapshotWindow:   time.Minute,
		QueryFreshnessTimeout: 5 * time.Second,
		GameLiftAddr:          addr,
		DisableAgones:         true,
	}
	opts.Controllers.PlayerSessionTimeout = timeout
	m := testenv.StartManager(t, cp, opts)

	// The replica's own query API server, reached directly as the Service would reach one pod: the
	// admin's client certificate, which the server checks against the cluster's client CA.
	direct := rest.CopyConfig(cp.Config)
	direct.Host = fmt.Sprintf("https://127.0.0.1:%d", queryPort)
	direct.TLSClientConfig.Insecure, direct.TLSClientConfig.CAData, direct.TLSClientConfig.CAFile = true, nil, ""
	return &replica{
		Manager: m, name: name, url: "http://" + addr,
		query: dynamic.NewForConfigOrDie(direct).Resource(psGVR),
		gamelift: gamelift.New(gamelift.Options{
			Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
			RetryMaxAttempts: 1,
		}),
	}
}

// elected waits for one of rs to lead and returns it and the others.
func elected(t *testing.T, rs ...*replica) (*replica, []*replica) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for i, r := range rs {
			select {
			case <-r.Elected():
				return r, slices.Delete(slices.Clone(rs), i, i+1)
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no replica was elected")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestTwoReplicas(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	aggregatedPort := testenv.FreePort(t)
	cp := testenv.ControlPlane(t, localcp.Options{QueryPort: aggregatedPort})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	// Both start at once: the continue-token key is created by one and read by the other.
	a := startReplica(t, cp, "a", aggregatedPort)
	b := startReplica(t, cp, "b", testenv.FreePort(t))
	aggregated := dynamic.NewForConfigOrDie(cp.Config).Resource(psGVR) // routed to a by the APIService

	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "gamelift-key", ns, keyID, secret)).To(Succeed())
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-r", MaximumPlayerSessionCount: 50, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.7", Port: 7777}}}
	g.Expect(admin.Create(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	leader, followers := elected(t, a, b)
	follower := followers[0]
	t.Logf("replica %s leads", leader.name)

	t.Run("GameLift endpoint answers on both", func(t *testing.T) {
		g := NewWithT(t)
		for i, r := range []*replica{a, b} {
			// The access key and the game session reach each replica's cache asynchronously.
			g.Eventually(func() string {
				_, err := r.gamelift.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(gs.Status.GameSessionID)})
				return errText(err)
			}).WithTimeout(30*time.Second).Should(BeEmpty(), "replica %s", r.name)
			out, err := r.gamelift.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{
				GameSessionId: aws.String(gs.Status.GameSessionID), PlayerId: aws.String(fmt.Sprintf("sdk-%d", i)),
			})
			g.Expect(errText(err)).To(BeEmpty(), "CreatePlayerSession through replica %s", r.name)
			g.Expect(string(out.PlayerSession.Status)).To(Equal("RESERVED"))
		}
	})

	t.Run("a request served by one replica is a replay on the other", func(t *testing.T) {
		// A captured request that changes state, sent again to the other replica within its signature's 5
		// minutes: what it created (its objects are named after the signature) or recorded (an update's
		// annotation) is in the API server, which both replicas share; a game server's transition happens
		// once. Before, each replica remembered only the signatures it served itself.
		g := NewWithT(t)
		const ns, keyID, secret = "replays", "AKIDREPLAYS", "replays-secret" // apart from the other subtests' counts
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "gamelift-key-"+ns, ns, keyID, secret)).To(Succeed())
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "arena"},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-r", MaximumPlayerSessionCount: 50, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.7", Port: 7777}}}
		g.Expect(admin.Create(ctx, gs)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
			g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		gsid := gs.Status.GameSessionID
		signed := func(action string, in any) *signedRequest { return signedBy(t, keyID, secret, action, in) }
		players := func() []string {
			var list gamev1.PlayerSessionList
			g.Expect(admin.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var ids []string
			for _, ps := range list.Items {
				if strings.HasPrefix(ps.Spec.PlayerID, "replayed-") {
					ids = append(ids, ps.Spec.PlayerID)
				}
			}
			return ids
		}
		created := signed("CreatePlayerSession", map[string]any{"GameSessionId": gsid, "PlayerId": "replayed-1"})
		var status int
		var body map[string]any
		g.Eventually(func() int { // the access key and the game session reach a's cache asynchronously
			status, body = created.send(t, a.url)
			return status
		}).WithTimeout(20*time.Second).Should(Equal(200), "%v", body)
		psid := body["PlayerSession"].(map[string]any)["PlayerSessionId"].(string)
		for _, req := range []*signedRequest{
			created,
			signed("CreatePlayerSessions", map[string]any{"GameSessionId": gsid, "PlayerIds": []string{"replayed-2", "replayed-3"}}),
			signed("UpdateGameSession", map[string]any{"GameSessionId": gsid, "Name": "first"}),
			signed("CreateGameSession", map[string]any{"FleetId": "fleet-r", "MaximumPlayerSessionCount": 2}),
			signed("AcceptPlayerSession", map[string]any{"PlayerSessionId": psid}),
			signed("RemovePlayerSession", map[string]any{"PlayerSessionId": psid}),
		} {
			if req != created {
				status, body := req.send(t, a.url)
				g.Expect(status).To(Equal(200), "%s on %s: %v", req.action, a.name, body)
			}
			if req.action == "UpdateGameSession" {
				// A later update, which the replay must not undo.
				status, body := signed("UpdateGameSession", map[string]any{"GameSessionId": gsid, "Name": "second"}).send(t, a.url)
				g.Expect(status).To(Equal(200), "%v", body)
			}
			status, body := req.send(t, b.url)
			g.Expect(status).To(Equal(400), "%s replayed on %s: %v", req.action, b.name, body)
			want := "UnauthorizedException"
			if req.action == "AcceptPlayerSession" || req.action == "RemovePlayerSession" {
				want = "InvalidRequestException" // ACTIVE cannot be accepted again, COMPLETED cannot end again
			}
			g.Expect(body["__type"]).To(Equal(want), "%s: %v", req.action, body)
		}
		g.Expect(players()).To(ConsistOf("replayed-1", "replayed-2", "replayed-3"), "no replay reserved a seat")
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Spec.Name).To(Equal("second"), "the replayed update did not undo the later one")
		var games gamev1.GameSessionList
		g.Expect(admin.List(ctx, &games, client.InNamespace(ns))).To(Succeed())
		g.Expect(games.Items).To(HaveLen(2), "the arena and one created game session")
	})

	// Seven more player sessions to page through; all nine then time out, and stay put.
	for i := range 7 {
		ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", i)},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: fmt.Sprintf("player-%d", i)}}
		g.Expect(admin.Create(ctx, ps)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		var list gamev1.PlayerSessionList
		g.Expect(admin.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(9))
		for _, ps := range list.Items {
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())

	t.Run("the replicas hand out the same resourceVersions", func(t *testing.T) {
		NewWithT(t).Eventually(func(g Gomega) {
			la, err := a.query.Namespace(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			lb, err := b.query.Namespace(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(la.Items).To(HaveLen(9))
			g.Expect(lb.GetResourceVersion()).To(Equal(la.GetResourceVersion()))
			g.Expect(a.Index.RV()).To(Equal(b.Index.RV()))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	t.Run("paging across replicas", func(t *testing.T) {
		g := NewWithT(t)
		full, err := aggregated.Namespace(ns).List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		first, err := aggregated.Namespace(ns).List(ctx, metav1.ListOptions{Limit: 2})
		g.Expect(err).NotTo(HaveOccurred())
		got := names(first)
		// A change between pages: the pages still read the first page's snapshot.
		g.Expect(admin.Delete(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p6"}})).To(Succeed())
		cont := first.GetContinue()
		for i := 0; cont != ""; i++ {
			from := []dynamic.NamespaceableResourceInterface{b.query, a.query}[i%2]
			page, err := from.Namespace(ns).List(ctx, metav1.ListOptions{Limit: 2, Continue: cont})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(page.GetResourceVersion()).To(Equal(first.GetResourceVersion()))
			got = append(got, names(page)...)
			cont = page.GetContinue()
		}
		g.Expect(got).To(Equal(names(full)))

		// The GameLift endpoint's NextToken too.
		var described []string
		var next *string
		for i := 0; i == 0 || next != nil; i++ {
			r := []*replica{a, b}[i%2]
			out, err := r.gamelift.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{
				GameSessionId: aws.String(gs.Status.GameSessionID), Limit: aws.Int32(3), NextToken: next,
			})
			g.Expect(err).NotTo(HaveOccurred())
			for _, ps := range out.PlayerSessions {
				described = append(described, aws.ToString(ps.PlayerId))
			}
			next = out.NextToken
		}
		g.Expect(described).To(HaveLen(8), "the sessions of the game session but p6, deleted before the first call")
	})

	t.Run("leader killed mid-countdown", func(t *testing.T) {
		g := NewWithT(t)
		var reserved []*gamev1.PlayerSession
		for i := range 3 {
			ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("late-%d", i)},
				Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: fmt.Sprintf("late-%d", i)}}
			g.Expect(admin.Create(ctx, ps)).To(Succeed())
			reserved = append(reserved, ps)
		}
		for _, ps := range reserved {
			g.Eventually(func(g Gomega) {
				g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(ps), ps)).To(Succeed())
				g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
			}).WithTimeout(20 * time.Second).Should(Succeed())
		}
		// The countdowns run on the leader; it dies without releasing its Lease.
		leader.Stop()
		killed := time.Now()
		select {
		case <-follower.Elected():
		case <-time.After(30 * time.Second):
			t.Fatal("the follower never took over")
		}
		took := time.Since(killed)
		t.Logf("replica %s took over %s after the leader died", follower.name, took.Round(time.Millisecond))
		tookOver := time.Now()

		for _, ps := range reserved {
			g.Eventually(func(g Gomega) {
				g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(ps), ps)).To(Succeed())
				g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
			}).WithTimeout(timeout + 20*time.Second).Should(Succeed())
			deadline := ps.Status.CreationTime.Add(timeout)
			ended := ps.Status.TerminationTime.Time
			// Never early; late only by the handover: the new leader acts on the persisted deadline as soon
			// as it leads (not after a resync), and from its own timer if it led before the deadline.
			g.Expect(ended).NotTo(BeTemporally("<", deadline), ps.Name)
			g.Expect(ended).To(BeTemporally("<=", later(deadline, tookOver).Add(2*time.Second)), ps.Name)
		}

		// The survivor answers the query API and the GameLift endpoint.
		g.Eventually(func(g Gomega) { // its index follows its own informer, a moment behind the API server
			list, err := follower.query.Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "status=TIMEDOUT"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(names(list)).To(ContainElements("tenant/late-0", "tenant/late-1", "tenant/late-2"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		_, err = follower.gamelift.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{
			GameSessionId: aws.String(gs.Status.GameSessionID), PlayerId: aws.String("after-failover"),
		})
		g.Expect(errText(err)).To(BeEmpty())
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func names(list *unstructured.UnstructuredList) []string {
	var out []string
	for _, it := range list.Items {
		out = append(out, it.GetNamespace()+"/"+it.GetName())
	}
	return out
}

// errText is err's message: gomega must not format an SDK error itself (a data race under -race).
func errText(err error) string {
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode() + ": " + err.Error()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// signedRequest is a GameLift call in AWS JSON 1.1, signed once with the test key, to send as captured.
type signedRequest struct {
	action string
	body   []byte
	header http.Header
}

func signedBy(t *testing.T, keyID, secret, action string, in any) *signedRequest {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "GameLift."+action)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, r,
		hex.EncodeToString(sum[:]), "gamelift", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return &signedRequest{action: action, body: body, header: r.Header}
}

// send sends the request, byte for byte, to the endpoint at url (the signed host is not checked against the
// address: a Service name or a pod's address both reach a replica).
func (s *signedRequest) send(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(s.body))
	r.Header = s.header.Clone()
	r.Host = "gamelift.local"
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
