package agones_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
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
)

// The Agones integration through a real kube-apiserver: the manager (controllers, GameLift endpoint) runs
// as in production; the test plays Agones: its CRDs (test/crds/agones), GameServer status writes as the
// Agones controller and SDK make them, and allocation.agones.dev served through the aggregation layer.

const allocationTimeout = 4 * time.Second

type env struct {
	cp    *localcp.ControlPlane
	c     client.Client
	alloc *agonestest.Allocator
	url   string
	ns    int
}

func (e *env) namespace(t *testing.T) string {
	t.Helper()
	e.ns++
	name := fmt.Sprintf("agones-%d", e.ns)
	if err := e.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestAgones(t *testing.T) {
	cp := testenv.ControlPlane(t, localcp.Options{Aggregation: true})
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cp: cp, c: c, alloc: &agonestest.Allocator{Client: c}}
	stop, err := cp.ServeAPIService("allocation.agones.dev", "v1", e.alloc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.url = "http://" + addr
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", GameLiftAddr: addr,
		AgonesDiscoveryInterval: 200 * time.Millisecond}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	opts.Controllers.AgonesAllocationTimeout = allocationTimeout
	testenv.StartManager(t, cp, opts)

	// Agones is installed after the manager started (GitOps applies in any order): this must run first.
	t.Run("InstalledAfterManager", e.installedAfterManager)
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"PlayersList", e.playersList},
		{"PlayerIDsNamedListAndLegacyIDs", e.playerIDs},
		{"Allocation", e.allocation},
		{"UnAllocatedThenAllocated", e.unallocatedThenAllocated},
		{"LostAnswerNotAllocatedTwice", e.lostAnswer},
		{"UnAllocatedUntilError", e.allocationTimesOut},
		{"Ends", e.ends},
		{"Validation", e.validation},
		{"GameLiftCreateGameSessionOnFleet", e.gameLift},
	} {
		t.Run(tc.name, tc.f)
	}
}

func gameSession(ns, name string, max int32, a gamev1.AgonesGameServer) *gamev1.GameSession {
	return &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gamev1.GameSessionSpec{FleetID: "fleet-agones", MaximumPlayerSessionCount: max, Agones: &a},
	}
}

func (e *env) getGS(g Gomega, ns, name string) *gamev1.GameSession {
	gs := &gamev1.GameSession{}
	g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs)).To(Succeed())
	return gs
}

func (e *env) getPS(g Gomega, ns, name string) *gamev1.PlayerSession {
	ps := &gamev1.PlayerSession{}
	g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ps)).To(Succeed())
	return ps
}

func (e *env) getServer(g Gomega, ns, name string) agones.GameServer {
	u := agones.NewGameServer()
	g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return agones.Parse(u)
}

func bound(gs *gamev1.GameSession) *metav1.Condition {
	return meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameServerBoundCondition)
}

func (e *env) create(t *testing.T, o client.Object) {
	t.Helper()
	if err := e.c.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func (e *env) gameServer(t *testing.T, o agonestest.GameServerOptions) {
	t.Helper()
	if _, err := agonestest.CreateGameServer(context.Background(), e.c, o); err != nil {
		t.Fatal(err)
	}
}

// waitActive waits until the game session is ACTIVE and bound, and returns it.
func (e *env) waitActive(t *testing.T, ns, name string) *gamev1.GameSession {
	t.Helper()
	var gs *gamev1.GameSession
	NewWithT(t).Eventually(func(g Gomega) {
		gs = e.getGS(g, ns, name)
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(bound(gs)).NotTo(BeNil())
		g.Expect(bound(gs).Status).To(Equal(metav1.ConditionTrue))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	return gs
}

// players creates player sessions in the game session and waits until they are RESERVED.
func (e *env) players(t *testing.T, ns, game string, names ...string) map[string]*gamev1.PlayerSession {
	t.Helper()
	for _, n := range names {
		e.create(t, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: "player-" + n}})
	}
	out := map[string]*gamev1.PlayerSession{}
	NewWithT(t).Eventually(func(g Gomega) {
		for _, n := range names {
			ps := e.getPS(g, ns, n)
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
			out[n] = ps
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	return out
}

func (e *env) waitPS(t *testing.T, ns, name string, s gamev1.PlayerSessionStatusValue) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(e.getPS(g, ns, name).Status.Status).To(Equal(s))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// installedAfterManager: a game session bound by name waits while Agones is absent, then binds once the
// CRDs are installed and its GameServer is Allocated.
func (e *env) installedAfterManager(t *testing.T) {
	g := NewWithT(t)
	ns := e.namespace(t)
	e.create(t, gameSession(ns, "early", 4, gamev1.AgonesGameServer{GameServerName: "gs-early"}))
	g.Eventually(func(g Gomega) {
		gs := e.getGS(g, ns, "early")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActivating))
		g.Expect(bound(gs)).NotTo(BeNil())
		g.Expect(bound(gs).Message).To(ContainSubstring("Agones is not installed"))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	if _, err := envtest.InstallCRDs(e.cp.Config, envtest.CRDInstallOptions{Paths: []string{testenv.Path("test", "crds", "agones")}}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func(g Gomega) {
		g.Expect(bound(e.getGS(g, ns, "early")).Message).To(ContainSubstring("does not exist"))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// Ready: not yet allocated by the user's allocator.
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "gs-early", Address: "10.1.2.3", Lists: []string{"players"}})
	g.Eventually(func(g Gomega) {
		gs := e.getGS(g, ns, "early")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActivating))
		g.Expect(bound(gs).Reason).To(Equal(gamev1.WaitingForGameServerReason))
		g.Expect(bound(gs).Message).To(ContainSubstring("is Ready"))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	g.Expect(agonestest.SetState(context.Background(), e.c, ns, "gs-early", agones.StateAllocated)).To(Succeed())
	gs := e.waitActive(t, ns, "early")
	g.Expect(gs.Status.IPAddress).To(Equal("10.1.2.3"))
	g.Expect(gs.Status.Port).To(BeEquivalentTo(7654))
	g.Expect(gs.Status.Agones.GameServerName).To(Equal("gs-early"))
	g.Expect(gs.Status.Agones.GameServerUID).NotTo(BeEmpty())
	g.Expect(gs.Status.Agones.LastAllocated).NotTo(BeEmpty())
}

// playersList: List values (player session ids) accept and complete player sessions; a value of no player
// session is reported, not an error; a hostname address becomes dnsName; a named port is used.
func (e *env) playersList(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := e.namespace(t)
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "gs-1", State: agones.StateAllocated, Address: "game-1.example.net",
		Ports: []agones.Port{{Name: "metrics", Port: 9000}, {Name: "game", Port: 7001}}, Lists: []string{"players"}})
	e.create(t, gameSession(ns, "arena", 4, gamev1.AgonesGameServer{GameServerName: "gs-1", PortName: "game"}))
	gs := e.waitActive(t, ns, "arena")
	g.Expect(gs.Status.DNSName).To(Equal("game-1.example.net"))
	g.Expect(gs.Status.IPAddress).To(BeEmpty())
	g.Expect(gs.Status.Port).To(BeEquivalentTo(7001))

	ps := e.players(t, ns, "arena", "alice", "bob")
	g.Expect(ps["alice"].Status.Port).To(BeEquivalentTo(7001))
	alice, bob := ps["alice"].Status.PlayerSessionID, ps["bob"].Status.PlayerSessionID

	// The game server's SDK: AppendListValue("players", id) for both in one batched write.
	g.Expect(agonestest.AppendListValues(ctx, e.c, ns, "gs-1", "players", alice, bob)).To(Succeed())
	e.waitPS(t, ns, "alice", gamev1.PlayerSessionActive)
	e.waitPS(t, ns, "bob", gamev1.PlayerSessionActive)

	// alice leaves: DeleteListValue("players", id); a stranger joins the List.
	g.Expect(agonestest.ChangeList(ctx, e.c, ns, "gs-1", "players", []string{"stranger"}, []string{alice})).To(Succeed())
	e.waitPS(t, ns, "alice", gamev1.PlayerSessionCompleted)
	g.Eventually(func(g Gomega) {
		gs := e.getGS(g, ns, "arena")
		g.Expect(gs.Status.Agones.UnknownPlayers).To(Equal([]string{"stranger"}))
		g.Expect(gs.Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(e.getPS(g, ns, "bob").Status.Status).To(Equal(gamev1.PlayerSessionActive))
	g.Expect(e.getPS(g, ns, "alice").Status.TerminationTime).NotTo(BeNil())
	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(e.c.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		var unknown, accepted int
		for _, ev := range events.Items {
			switch ev.Reason {
			case "UnknownPlayers":
				unknown++
				g.Expect(ev.Note).To(ContainSubstring("stranger"))
			case "Accepted":
				accepted++
			}
		}
		g.Expect(unknown).To(Equal(1)) // reported once
		g.Expect(accepted).To(Equal(2))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// playerIDs: a List named otherwise whose values are player ids, and the legacy status.players.ids.
func (e *env) playerIDs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := e.namespace(t)
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "gs-2", State: agones.StateAllocated, Address: "10.0.0.2", Lists: []string{"gamers"}})
	e.create(t, gameSession(ns, "duel", 2, gamev1.AgonesGameServer{GameServerName: "gs-2", PlayersList: "gamers", PlayersListValues: gamev1.AgonesListValuesPlayerID}))
	e.waitActive(t, ns, "duel")
	e.players(t, ns, "duel", "carol", "dave")
	g.Expect(agonestest.AppendListValues(ctx, e.c, ns, "gs-2", "gamers", "player-carol")).To(Succeed())
	e.waitPS(t, ns, "carol", gamev1.PlayerSessionActive)
	// PlayerTracking (legacy): the sidecar replaces status.players.ids.
	g.Expect(agonestest.SetPlayerIDs(ctx, e.c, ns, "gs-2", "player-dave")).To(Succeed())
	e.waitPS(t, ns, "dave", gamev1.PlayerSessionActive)
	g.Expect(agonestest.SetPlayerIDs(ctx, e.c, ns, "gs-2")).To(Succeed())
	e.waitPS(t, ns, "dave", gamev1.PlayerSessionCompleted)
	g.Expect(e.getPS(g, ns, "carol").Status.Status).To(Equal(gamev1.PlayerSessionActive))
}

// allocation: a game session on a fleet allocates a Ready GameServer matching its selectors, labels it and
// sets the players List's capacity to its seats.
func (e *env) allocation(t *testing.T) {
	g := NewWithT(t)
	ns := e.namespace(t)
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "a-1", Fleet: "fleet-a", Address: "10.0.1.1", Labels: map[string]string{"map": "desert"}, Lists: []string{"players"}})
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "a-2", Fleet: "fleet-a", Address: "10.0.1.2", Labels: map[string]string{"map": "forest"}, Lists: []string{"players"}})
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "other-1", Fleet: "fleet-other", Address: "10.0.1.3", Labels: map[string]string{"map": "forest"}, Lists: []string{"players"}})
	before := e.alloc.Allocations()
	e.create(t, gameSession(ns, "match", 8, gamev1.AgonesGameServer{FleetName: "fleet-a",
		Selectors: []gamev1.AgonesSelector{{MatchLabels: map[string]string{"map": "forest"}}}}))
	gs := e.waitActive(t, ns, "match")
	g.Expect(gs.Status.Agones.GameServerName).To(Equal("a-2"))
	g.Expect(gs.Status.IPAddress).To(Equal("10.0.1.2"))
	g.Expect(e.alloc.Allocations() - before).To(Equal(1))
	u := agones.NewGameServer()
	g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a-2"}, u)).To(Succeed())
	g.Expect(u.GetLabels()).To(HaveKeyWithValue(agones.GameSessionUIDLabel, string(gs.UID)))
	g.Expect(u.GetAnnotations()).To(HaveKeyWithValue(agones.GameSessionAnnotation, ns+"/match"))
	capacity, _, _ := unstructured.NestedInt64(u.Object, "status", "lists", "players", "capacity")
	g.Expect(capacity).To(BeEquivalentTo(8))
	g.Expect(e.getServer(g, ns, "a-1").State).To(Equal(agones.StateReady))
	g.Expect(e.getServer(g, ns, "other-1").State).To(Equal(agones.StateReady))
}

// unallocatedThenAllocated: no Ready GameServer: ACTIVATING, waiting without allocating; allocated as soon
// as one is Ready (its event wakes the game session). Ten game sessions waiting on an empty fleet cost no
// allocation request; three Ready GameServers then cost three allocations, not one per waiting game
// session per backoff (before: about 15 allocations and as many live lists per game session).
func (e *env) unallocatedThenAllocated(t *testing.T) {
	g := NewWithT(t)
	ns := e.namespace(t)
	requests := e.alloc.Requests()
	for i := range 10 {
		e.create(t, gameSession(ns, fmt.Sprintf("later-%d", i), 2, gamev1.AgonesGameServer{FleetName: "fleet-b"}))
	}
	g.Eventually(func(g Gomega) {
		for i := range 10 {
			gs := e.getGS(g, ns, fmt.Sprintf("later-%d", i))
			g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActivating))
			g.Expect(bound(gs).Reason).To(Equal(gamev1.AllocatingReason))
			g.Expect(bound(gs).Message).To(ContainSubstring("Waiting for a Ready GameServer in fleet fleet-b"))
		}
	}).WithTimeout(allocationTimeout).Should(Succeed())
	time.Sleep(time.Second) // four of the old backoffs' retries
	g.Expect(e.alloc.Requests()).To(Equal(requests), "no allocation while the fleet is empty")
	for i := range 3 {
		e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: fmt.Sprintf("b-%d", i), Fleet: "fleet-b", Address: "10.0.2.1", Lists: []string{"players"}})
	}
	g.Eventually(func(g Gomega) {
		active := 0
		for i := range 10 {
			if e.getGS(g, ns, fmt.Sprintf("later-%d", i)).Status.Status == gamev1.GameSessionActive {
				active++
			}
		}
		g.Expect(active).To(Equal(3))
	}).WithTimeout(allocationTimeout).Should(Succeed())
	g.Expect(e.alloc.Requests()-requests).To(BeNumerically("<=", 6), "three allocations, and a few that lost a race")
}

// lostAnswer: the allocation happens but its answer is lost; the retry finds the GameServer labelled for
// the game session instead of allocating a second one.
func (e *env) lostAnswer(t *testing.T) {
	g := NewWithT(t)
	ns := e.namespace(t)
	for i := range 3 {
		e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: fmt.Sprintf("c-%d", i), Fleet: "fleet-c", Address: "10.0.3.1", Lists: []string{"players"}})
	}
	e.alloc.LoseAnswers.Store(1)
	before := e.alloc.Allocations()
	e.create(t, gameSession(ns, "lost", 2, gamev1.AgonesGameServer{FleetName: "fleet-c"}))
	gs := e.waitActive(t, ns, "lost")
	g.Expect(gs.Status.Agones.GameServerName).To(Equal("c-0"))
	g.Expect(e.alloc.LoseAnswers.Load()).To(BeEquivalentTo(0), "the answer was lost")
	g.Expect(e.alloc.Allocations() - before).To(Equal(1))
	g.Expect(e.getServer(g, ns, "c-1").State).To(Equal(agones.StateReady))
	g.Expect(e.getServer(g, ns, "c-2").State).To(Equal(agones.StateReady))
}

// allocationTimesOut: no Ready GameServer until the allocation timeout: ERROR with a reason; player sessions
// refused.
func (e *env) allocationTimesOut(t *testing.T) {
	g := NewWithT(t)
	ns := e.namespace(t)
	e.create(t, gameSession(ns, "never", 2, gamev1.AgonesGameServer{FleetName: "fleet-empty"}))
	g.Eventually(func(g Gomega) {
		gs := e.getGS(g, ns, "never")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionError))
		g.Expect(bound(gs).Reason).To(Equal(gamev1.AllocationTimedOutReason))
		g.Expect(gs.Status.Agones.AllocationAttempts).To(BeZero(), "no allocation is tried on an empty fleet")
	}).WithTimeout(allocationTimeout + 10*time.Second).Should(Succeed())
	requests := e.alloc.Requests()
	time.Sleep(time.Second)
	g.Expect(e.alloc.Requests()).To(Equal(requests), "no allocation after ERROR")
}

// ends: each way a GameServer can stop hosting the game session, and what it means.
func (e *env) ends(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t)
	for _, tc := range []struct {
		name   string
		end    func(g Gomega, server string)
		status gamev1.GameSessionStatusValue
		reason string
	}{
		{"reallocated", func(g Gomega, s string) {
			g.Expect(agonestest.SetState(ctx, e.c, ns, s, agones.StateAllocated)).To(Succeed())
		}, gamev1.GameSessionTerminated, gamev1.GameServerReleasedReason},
		{"ready-again", func(g Gomega, s string) {
			g.Expect(agonestest.SetState(ctx, e.c, ns, s, agones.StateReady)).To(Succeed())
		}, gamev1.GameSessionTerminated, gamev1.GameServerReleasedReason},
		{"shutdown", func(g Gomega, s string) {
			g.Expect(agonestest.SetState(ctx, e.c, ns, s, agones.StateShutdown)).To(Succeed())
		}, gamev1.GameSessionTerminated, gamev1.GameServerShutdownReason},
		{"deleted", func(g Gomega, s string) {
			u := agones.NewGameServer()
			u.SetNamespace(ns)
			u.SetName(s)
			g.Expect(e.c.Delete(ctx, u)).To(Succeed())
		}, gamev1.GameSessionTerminated, gamev1.GameServerGoneReason},
		{"replaced", func(g Gomega, s string) {
			u := agones.NewGameServer()
			u.SetNamespace(ns)
			u.SetName(s)
			g.Expect(e.c.Delete(ctx, u)).To(Succeed())
			_, err := agonestest.CreateGameServer(ctx, e.c, agonestest.GameServerOptions{Namespace: ns, Name: s, State: agones.StateAllocated, Address: "10.9.9.9", Lists: []string{"players"}})
			g.Expect(err).To(Succeed())
		}, gamev1.GameSessionTerminated, gamev1.GameServerGoneReason},
		{"unhealthy", func(g Gomega, s string) {
			g.Expect(agonestest.SetState(ctx, e.c, ns, s, agones.StateUnhealthy)).To(Succeed())
		}, gamev1.GameSessionError, gamev1.GameServerUnhealthyReason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			server := "gs-" + tc.name
			e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: server, State: agones.StateAllocated, Address: "10.0.4.1", Lists: []string{"players"}})
			e.create(t, gameSession(ns, tc.name, 2, gamev1.AgonesGameServer{GameServerName: server}))
			e.waitActive(t, ns, tc.name)
			ps := e.players(t, ns, tc.name, tc.name+"-p")
			g.Expect(agonestest.AppendListValues(ctx, e.c, ns, server, "players", ps[tc.name+"-p"].Status.PlayerSessionID)).To(Succeed())
			e.waitPS(t, ns, tc.name+"-p", gamev1.PlayerSessionActive)
			tc.end(g, server)
			g.Eventually(func(g Gomega) {
				gs := e.getGS(g, ns, tc.name)
				g.Expect(gs.Status.Status).To(Equal(tc.status))
				g.Expect(bound(gs).Reason).To(Equal(tc.reason))
			}).WithTimeout(20 * time.Second).Should(Succeed())
			if tc.status == gamev1.GameSessionTerminated {
				e.waitPS(t, ns, tc.name+"-p", gamev1.PlayerSessionCompleted)
				g.Expect(e.getPS(g, ns, tc.name+"-p").Status.GameSessionTerminationTime).NotTo(BeNil())
			}
		})
	}
}

// validation: the API server refuses bad spec.agones blocks (CEL and OpenAPI).
func (e *env) validation(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t)
	for _, tc := range []struct {
		name   string
		mutate func(*gamev1.GameSession)
		want   string
	}{
		{"neither", func(gs *gamev1.GameSession) { gs.Spec.Agones = &gamev1.AgonesGameServer{} }, "set exactly one of gameServerName and fleetName"},
		{"both", func(gs *gamev1.GameSession) { gs.Spec.Agones.FleetName = "f" }, "set exactly one of gameServerName and fleetName"},
		{"selectors-without-fleet", func(gs *gamev1.GameSession) {
			gs.Spec.Agones.Selectors = []gamev1.AgonesSelector{{MatchLabels: map[string]string{"a": "b"}}}
		}, "selectors need fleetName"},
		{"with-endpoint", func(gs *gamev1.GameSession) { gs.Spec.IPAddress, gs.Spec.Port = "10.0.0.1", 7777 }, "exclusive"},
		{"bad-list-values", func(gs *gamev1.GameSession) { gs.Spec.Agones.PlayersListValues = "Name" }, "Unsupported value"},
	} {
		gs := gameSession(ns, "bad-"+tc.name, 2, gamev1.AgonesGameServer{GameServerName: "x"})
		tc.mutate(gs)
		err := e.c.Create(ctx, gs)
		if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want Invalid containing %q", tc.name, err, tc.want)
		}
	}
	// The sample (config/samples/agones) is accepted as written.
	data, err := os.ReadFile(testenv.Path("config", "samples", "agones", "arena.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if err := e.c.Create(ctx, u); err != nil {
			t.Errorf("sample %s: %v", u.GetKind(), err)
		}
	}

	gs := gameSession(ns, "good", 2, gamev1.AgonesGameServer{GameServerName: "x"})
	e.create(t, gs)
	if gs.Spec.Agones.PlayersList != "players" || gs.Spec.Agones.PlayersListValues != gamev1.AgonesListValuesPlayerSessionID {
		t.Errorf("defaults: got %+v", gs.Spec.Agones)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(gs), gs); err != nil {
			return err
		}
		gs.Spec.Agones.GameServerName = "y"
		return e.c.Update(ctx, gs)
	})
	if err == nil || !strings.Contains(err.Error(), "agones is immutable") {
		t.Errorf("changing spec.agones: got %v, want agones is immutable", err)
	}
}

// gameLift: CreateGameSession through aws-sdk-go-v2 with a FleetId naming an Agones Fleet allocates from it.
func (e *env) gameLift(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := e.namespace(t)
	g.Expect(gl.CreateAccessKey(ctx, e.c, gl.DefaultKeyNamespace, "gamelift-key-"+ns, ns, "AKIDAGONES", "secret")).To(Succeed())
	fleet := agones.NewFleet()
	fleet.SetNamespace(ns)
	fleet.SetName("fleet-arena")
	fleet.Object["spec"] = map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{
		"ports":    []any{map[string]any{"name": "default", "containerPort": int64(7654)}},
		"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "game", "image": "game:1"}}}},
	}}}
	e.create(t, fleet)
	e.gameServer(t, agonestest.GameServerOptions{Namespace: ns, Name: "fleet-arena-x1", Fleet: "fleet-arena", Address: "10.0.5.1", Lists: []string{"players"}})
	sdk := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDAGONES", "secret", "")})
	var out *gamelift.CreateGameSessionOutput
	g.Eventually(func() error { // the manager's cache learns the new access key
		var err error
		out, err = sdk.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-arena"), MaximumPlayerSessionCount: aws.Int32(3)})
		return err
	}).WithTimeout(20 * time.Second).Should(Succeed())
	id := aws.ToString(out.GameSession.GameSessionId)
	g.Eventually(func(g Gomega) {
		d, err := sdk.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(id)})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.GameSessions).To(HaveLen(1))
		g.Expect(string(d.GameSessions[0].Status)).To(Equal("ACTIVE"))
		g.Expect(aws.ToString(d.GameSessions[0].IpAddress)).To(Equal("10.0.5.1"))
		g.Expect(aws.ToInt32(d.GameSessions[0].Port)).To(BeEquivalentTo(7654))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(e.getServer(g, ns, "fleet-arena-x1").State).To(Equal(agones.StateAllocated))

	// A FleetId with no Agones Fleet of that name keeps the plain behaviour (no spec.agones).
	plain, err := sdk.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-plain"), MaximumPlayerSessionCount: aws.Int32(3)})
	g.Expect(err).NotTo(HaveOccurred())
	var list gamev1.GameSessionList
	g.Expect(e.c.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	for _, gs := range list.Items {
		if gs.Status.GameSessionID == aws.ToString(plain.GameSession.GameSessionId) {
			g.Expect(gs.Spec.Agones).To(BeNil())
		} else {
			g.Expect(gs.Spec.Agones).To(Equal(&gamev1.AgonesGameServer{FleetName: "fleet-arena", PlayersList: "players", PlayersListValues: gamev1.AgonesListValuesPlayerSessionID}))
		}
	}
}
