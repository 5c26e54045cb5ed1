package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/agones/agonestest"
)

// agonesFixture is the fake-clock fixture with an installed Agones whose allocation API answers state.
func agonesFixture(t *testing.T, state *string, objs ...runtime.Object) (*fixture, *int) {
	t.Helper()
	var clientObjs []client.Object
	for _, o := range objs {
		clientObjs = append(clientObjs, o.(client.Object))
	}
	f := newFixture(t, clientObjs...)
	calls := 0
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		agones.GameServerAllocationGVR: "GameServerAllocationList"})
	dyn.PrependReactor("create", "gameserverallocations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		out := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured).DeepCopy()
		out.Object["status"] = map[string]any{"state": *state}
		return true, out, nil
	})
	ag := &agones.Client{Cache: f.c, Live: f.c, Dynamic: dyn}
	if err := ag.SetInstalled(); err != nil {
		t.Fatal(err)
	}
	f.gsr.Agones, f.psr.Agones = ag, ag
	return f, &calls
}

// readyServer is a Ready GameServer of fleet, as the cache holds it.
func readyServer(t *testing.T, name, fleet string, labels map[string]string) *unstructured.Unstructured {
	t.Helper()
	u, err := agonestest.GameServerObject(agonestest.GameServerOptions{Namespace: "ns", Name: name, Fleet: fleet, State: agones.StateReady,
		Address: "10.0.0.9", Labels: labels, Lists: []string{"players"}})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAllocationBackoffAndTimeout: UnAllocated answers (another game session took the Ready GameServer the
// cache showed) are retried no sooner than the persisted backoff says, and the game session becomes ERROR
// once the allocation timeout from its creation has passed.
func TestAllocationBackoffAndTimeout(t *testing.T) {
	state := agones.AllocationUnAllocated
	gs := newGS("g", 4, false)
	gs.Spec.Agones = &gamev1.AgonesGameServer{FleetName: "fleet-a", PlayersList: "players"}
	f, calls := agonesFixture(t, &state, gs, readyServer(t, "a-1", "fleet-a", nil))
	f.gsr.AgonesAllocationTimeout = 10 * time.Second

	res := f.reconcileGS(t, "g")
	expect(t, *calls, 1)
	expect(t, res.RequeueAfter, 250*time.Millisecond)
	got := f.gs(t, "g")
	expect(t, got.Status.Status, gamev1.GameSessionActivating)
	expect(t, got.Status.Agones.AllocationAttempts, int32(1))
	expect(t, meta.FindStatusCondition(got.Status.Conditions, gamev1.GameServerBoundCondition).Reason, gamev1.AllocatingReason)

	// An event before the backoff has passed does not allocate again.
	f.clock.Step(100 * time.Millisecond)
	res = f.reconcileGS(t, "g")
	expect(t, *calls, 1)
	expect(t, res.RequeueAfter, 150*time.Millisecond)

	f.clock.Step(150 * time.Millisecond)
	res = f.reconcileGS(t, "g")
	expect(t, *calls, 2)
	expect(t, res.RequeueAfter, 500*time.Millisecond) // doubled

	// The deadline caps the wait, then ends it.
	f.clock.SetTime(t0.Add(9900 * time.Millisecond))
	res = f.reconcileGS(t, "g")
	expect(t, *calls, 3)
	expect(t, res.RequeueAfter, 100*time.Millisecond)
	f.clock.SetTime(t0.Add(10 * time.Second))
	f.reconcileGS(t, "g")
	expect(t, *calls, 3)
	got = f.gs(t, "g")
	expect(t, got.Status.Status, gamev1.GameSessionError)
	expect(t, meta.FindStatusCondition(got.Status.Conditions, gamev1.GameServerBoundCondition).Reason, gamev1.AllocationTimedOutReason)
	f.clock.Step(time.Minute)
	f.reconcileGS(t, "g")
	expect(t, *calls, 3)
}

// TestEmptyFleetCostsNoAllocation: a game session on a fleet without a Ready GameServer (that its selectors
// match) waits without allocating, or reading the API server, until the allocation timeout; the first
// Ready GameServer wakes the oldest waiting game sessions it could serve, as many as the fleet has Ready
// GameServers. Before, each game session on an empty fleet made about 15 allocations and as many live
// lists before its timeout.
func TestEmptyFleetCostsNoAllocation(t *testing.T) {
	state := agones.AllocationAllocated
	var games []runtime.Object
	for i, name := range []string{"oldest", "forest-only", "middle", "newest"} {
		gs := newGS(name, 4, false)
		gs.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(i) * time.Second))
		gs.Spec.Agones = &gamev1.AgonesGameServer{FleetName: "fleet-a", PlayersList: "players"}
		if name == "forest-only" {
			gs.Spec.Agones.Selectors = []gamev1.AgonesSelector{{MatchLabels: map[string]string{"map": "forest"}}}
		}
		games = append(games, gs)
	}
	f, calls := agonesFixture(t, &state, games...)
	f.gsr.AgonesAllocationTimeout = time.Minute
	for _, name := range []string{"oldest", "forest-only", "middle", "newest"} {
		res := f.reconcileGS(t, name)
		expect(t, res.RequeueAfter, emptyFleetRecheck) // a look at the cache, no allocation
		cond := meta.FindStatusCondition(f.gs(t, name).Status.Conditions, gamev1.GameServerBoundCondition)
		expect(t, cond.Reason, gamev1.AllocatingReason)
		expect(t, strings.Contains(cond.Message, "Waiting for a Ready GameServer in fleet fleet-a"), true)
	}
	expect(t, *calls, 0)

	// A Ready GameServer of the desert map: it wakes the oldest game session it could serve, and only it.
	desert := readyServer(t, "a-1", "fleet-a", map[string]string{"map": "desert"})
	if err := f.c.Create(context.Background(), desert); err != nil {
		t.Fatal(err)
	}
	woken := func(u *unstructured.Unstructured) []string {
		var names []string
		for _, r := range f.gsr.gameSessionsForGameServer(context.Background(), u) {
			names = append(names, r.Name)
		}
		return names
	}
	expect(t, strings.Join(woken(desert), ","), "oldest")
	forest := readyServer(t, "a-2", "fleet-a", map[string]string{"map": "forest"})
	if err := f.c.Create(context.Background(), forest); err != nil {
		t.Fatal(err)
	}
	// Two Ready now: a forest GameServer wakes the two oldest it could serve (forest-only needs it).
	expect(t, strings.Join(woken(forest), ","), "oldest,forest-only")
	f.reconcileGS(t, "forest-only")
	expect(t, *calls, 1)

	// The oldest was allocated a GameServer, which the cache shows before the game session's status says so:
	// wake-ups pass over it to the next waiting ones, which would otherwise wait for their next look.
	taken, err := agonestest.GameServerObject(agonestest.GameServerOptions{Namespace: "ns", Name: "a-0", Fleet: "fleet-a", State: agones.StateAllocated,
		Labels: map[string]string{agones.GameSessionUIDLabel: string(f.gs(t, "oldest").UID)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Create(context.Background(), taken); err != nil {
		t.Fatal(err)
	}
	expect(t, strings.Join(woken(desert), ","), "middle,newest") // two Ready: the two oldest still waiting
}

// TestAgonesReservationNeverReportedTimesOut: a reservation its GameServer never lists still times out
// after the player-session timeout; one it lists is accepted and does not.
func TestAgonesReservationNeverReportedTimesOut(t *testing.T) {
	state := agones.AllocationAllocated
	gs := newGS("g", 4, false)
	gs.Spec.Agones = &gamev1.AgonesGameServer{GameServerName: "server", PlayersList: "players"}
	server, err := agonestest.GameServerObject(agonestest.GameServerOptions{Namespace: "ns", Name: "server", State: agones.StateAllocated, Address: "10.0.0.9", Lists: []string{"players"}})
	if err != nil {
		t.Fatal(err)
	}
	server.SetUID("server-uid")
	f, _ := agonesFixture(t, &state, gs, newPS("seen", "g"), newPS("unseen", "g"), server)
	f.reconcileGS(t, "g") // ACTIVE on the GameServer
	expect(t, f.gs(t, "g").Status.Status, gamev1.GameSessionActive)
	expect(t, f.gs(t, "g").Status.Port, int32(7654))
	f.admit(t, "g", "seen", "unseen")
	expect(t, f.ps(t, "seen").Status.Status, gamev1.PlayerSessionReserved)

	if err := agonestest.AppendListValues(context.Background(), f.c, "ns", "server", "players", "psess-uid-seen"); err != nil {
		t.Fatal(err)
	}
	f.reconcilePS(t, "seen")
	f.reconcilePS(t, "unseen")
	expect(t, f.ps(t, "seen").Status.Status, gamev1.PlayerSessionActive)
	expect(t, f.ps(t, "unseen").Status.Status, gamev1.PlayerSessionReserved)

	f.clock.Step(f.psr.PlayerSessionTimeout)
	f.reconcilePS(t, "seen")
	f.reconcilePS(t, "unseen")
	expect(t, f.ps(t, "seen").Status.Status, gamev1.PlayerSessionActive)
	expect(t, f.ps(t, "unseen").Status.Status, gamev1.PlayerSessionTimedOut)

	// The player leaves the List: COMPLETED, with its end stamped.
	if err := agonestest.DeleteListValues(context.Background(), f.c, "ns", "server", "players", "psess-uid-seen"); err != nil {
		t.Fatal(err)
	}
	f.reconcilePS(t, "seen")
	expect(t, f.ps(t, "seen").Status.Status, gamev1.PlayerSessionCompleted)
	if f.ps(t, "seen").Status.TerminationTime == nil {
		t.Error("no terminationTime")
	}
}

func TestDecideBinding(t *testing.T) {
	spec := &gamev1.AgonesGameServer{GameServerName: "gs", PlayersList: "players"}
	named := &gamev1.AgonesGameServer{GameServerName: "gs", PlayersList: "players", PortName: "game"}
	const t1, t2 = "2026-12-01T10:00:00.1Z", "2026-12-01T10:05:00.2Z"
	ports := []agones.Port{{Name: "default", Port: 7000}, {Name: "game", Port: 7001}}
	server := func(state string, mutate ...func(*agones.GameServer)) *agones.GameServer {
		s := &agones.GameServer{Name: "gs", UID: "uid-1", State: state, LastAllocated: t1, Address: "10.0.0.1", Ports: ports}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	none := gamev1.AgonesStatus{}
	active := gamev1.AgonesStatus{GameServerName: "gs", GameServerUID: "uid-1", LastAllocated: t1}
	for _, tc := range []struct {
		name    string
		spec    *gamev1.AgonesGameServer
		bound   gamev1.AgonesStatus
		server  *agones.GameServer
		outcome bindingOutcome
		reason  string
		check   func(t *testing.T, d bindingDecision)
	}{
		{name: "missing, never bound: wait", bound: none, server: nil, outcome: bindingWait, reason: gamev1.WaitingForGameServerReason},
		{name: "missing after bound: gone", bound: active, server: nil, outcome: bindingEnd, reason: gamev1.GameServerGoneReason,
			check: func(t *testing.T, d bindingDecision) { expect(t, d.statusReason, "INTERRUPTED") }},
		{name: "replaced (other UID)", bound: active, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.UID = "uid-2" }),
			outcome: bindingEnd, reason: gamev1.GameServerGoneReason},
		{name: "Ready, never bound: wait for allocation", bound: none, server: server(agones.StateReady), outcome: bindingWait, reason: gamev1.WaitingForGameServerReason},
		{name: "Starting, never bound: wait", bound: none, server: server("Starting"), outcome: bindingWait, reason: gamev1.WaitingForGameServerReason},
		{name: "Allocated: active on the first port", bound: none, server: server(agones.StateAllocated), outcome: bindingActive, reason: gamev1.GameServerAllocatedReason,
			check: func(t *testing.T, d bindingDecision) {
				expect(t, d.endpoint.IPAddress, "10.0.0.1")
				expect(t, d.endpoint.Port, int32(7000))
			}},
		{name: "Allocated: named port", spec: named, bound: none, server: server(agones.StateAllocated), outcome: bindingActive, reason: gamev1.GameServerAllocatedReason,
			check: func(t *testing.T, d bindingDecision) { expect(t, d.endpoint.Port, int32(7001)) }},
		{name: "Allocated: DNS name address", bound: none, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.Address = "gs.example.net" }),
			outcome: bindingActive, reason: gamev1.GameServerAllocatedReason,
			check: func(t *testing.T, d bindingDecision) {
				expect(t, d.endpoint.IPAddress, "")
				expect(t, d.endpoint.DNSName, "gs.example.net")
			}},
		{name: "Allocated: IPv6 address", bound: none, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.Address = "fd00::1" }),
			outcome: bindingActive, reason: gamev1.GameServerAllocatedReason,
			check: func(t *testing.T, d bindingDecision) { expect(t, d.endpoint.IPAddress, "fd00::1") }},
		{name: "Allocated without address: wait", bound: none, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.Address = "" }),
			outcome: bindingWait, reason: gamev1.WaitingForGameServerReason},
		{name: "Allocated, named port missing: wait", spec: &gamev1.AgonesGameServer{PortName: "nope"}, bound: none, server: server(agones.StateAllocated),
			outcome: bindingWait, reason: gamev1.WaitingForGameServerReason},
		{name: "still Allocated, same allocation: active", bound: active, server: server(agones.StateAllocated), outcome: bindingActive, reason: gamev1.GameServerAllocatedReason},
		{name: "allocated again: released", bound: active, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.LastAllocated = t2 }),
			outcome: bindingEnd, reason: gamev1.GameServerReleasedReason},
		{name: "allocated again, none recorded before: released", bound: gamev1.AgonesStatus{GameServerName: "gs", GameServerUID: "uid-1"},
			server: server(agones.StateAllocated), outcome: bindingEnd, reason: gamev1.GameServerReleasedReason},
		{name: "back to Ready after bound: released", bound: active, server: server(agones.StateReady), outcome: bindingEnd, reason: gamev1.GameServerReleasedReason},
		{name: "Reserved after bound: released", bound: active, server: server(agones.StateReserved), outcome: bindingEnd, reason: gamev1.GameServerReleasedReason},
		{name: "Shutdown", bound: active, server: server(agones.StateShutdown), outcome: bindingEnd, reason: gamev1.GameServerShutdownReason,
			check: func(t *testing.T, d bindingDecision) { expect(t, d.statusReason, "TRIGGERED_ON_PROCESS_TERMINATE") }},
		{name: "being deleted", bound: active, server: server(agones.StateAllocated, func(s *agones.GameServer) { s.Deleting = true }),
			outcome: bindingEnd, reason: gamev1.GameServerShutdownReason},
		{name: "Unhealthy", bound: active, server: server(agones.StateUnhealthy), outcome: bindingError, reason: gamev1.GameServerUnhealthyReason},
		{name: "Error before bound", bound: none, server: server(agones.StateError), outcome: bindingError, reason: gamev1.GameServerUnhealthyReason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			if s == nil {
				s = spec
			}
			d := decideBinding(s, tc.bound, "gs", tc.server)
			if d.outcome != tc.outcome || d.reason != tc.reason {
				t.Fatalf("got outcome %d reason %s (%s), want %d %s", d.outcome, d.reason, d.message, tc.outcome, tc.reason)
			}
			if d.message == "" {
				t.Error("no message")
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func expect[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAllocationBackoff(t *testing.T) {
	for n, want := range map[int32]time.Duration{0: 250 * time.Millisecond, 1: 250 * time.Millisecond, 2: 500 * time.Millisecond,
		3: time.Second, 5: 4 * time.Second, 6: 5 * time.Second, 100: 5 * time.Second} {
		if got := allocationBackoff(n); got != want {
			t.Errorf("allocationBackoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestListMismatch(t *testing.T) {
	byID := &gamev1.AgonesGameServer{PlayersListValues: gamev1.AgonesListValuesPlayerSessionID}
	byPlayer := &gamev1.AgonesGameServer{PlayersListValues: gamev1.AgonesListValuesPlayerID}
	ps := func(s gamev1.PlayerSessionStatusValue) *gamev1.PlayerSession {
		p := &gamev1.PlayerSession{Spec: gamev1.PlayerSessionSpec{PlayerID: "alice"}, Status: gamev1.PlayerSessionStatus{Status: s}}
		p.UID = "u1"
		return p
	}
	in := map[string]struct{}{"psess-u1": {}}
	inByPlayer := map[string]struct{}{"alice": {}}
	for _, tc := range []struct {
		name    string
		spec    *gamev1.AgonesGameServer
		status  gamev1.PlayerSessionStatusValue
		players map[string]struct{}
		want    bool
	}{
		{"RESERVED and present: accept", byID, gamev1.PlayerSessionReserved, in, true},
		{"RESERVED and absent: wait", byID, gamev1.PlayerSessionReserved, nil, false},
		{"ACTIVE and present: nothing", byID, gamev1.PlayerSessionActive, in, false},
		{"ACTIVE and absent: complete", byID, gamev1.PlayerSessionActive, nil, true},
		{"COMPLETED and present: nothing (terminal)", byID, gamev1.PlayerSessionCompleted, in, false},
		{"player id mode, present", byPlayer, gamev1.PlayerSessionReserved, inByPlayer, true},
		{"player id mode ignores session ids", byPlayer, gamev1.PlayerSessionReserved, in, false},
	} {
		if got := listMismatch(ps(tc.status), tc.spec, tc.players); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
