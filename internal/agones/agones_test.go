package agones

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestParse(t *testing.T) {
	const doc = `
apiVersion: agones.dev/v1
kind: GameServer
metadata:
  name: gs-1
  uid: u-1
  annotations: {agones.dev/last-allocated: "2026-12-01T10:00:00.123456789Z"}
status:
  state: Allocated
  address: 10.0.0.7
  ports: [{name: default, port: 7001}, {name: query, port: 7002}, {name: broken}]
  lists:
    players: {capacity: 10, values: [psess-a, psess-b]}
    other: {capacity: 5, values: []}
  players: {count: 1, capacity: 4, ids: [alice]}
`
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	gs := Parse(u)
	want := GameServer{Name: "gs-1", UID: "u-1", State: "Allocated", LastAllocated: "2026-12-01T10:00:00.123456789Z", Address: "10.0.0.7",
		Ports:     []Port{{"default", 7001}, {"query", 7002}},
		Lists:     map[string][]string{"players": {"psess-a", "psess-b"}, "other": {}},
		PlayerIDs: []string{"alice"}}
	if !reflect.DeepEqual(gs, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", gs, want)
	}
	players := gs.Players("players")
	for _, v := range []string{"psess-a", "psess-b", "alice"} {
		if _, ok := players[v]; !ok {
			t.Errorf("Players: %s missing", v)
		}
	}
	if len(gs.Players("missing")) != 1 {
		t.Errorf("Players of an undeclared list: %v, want only the legacy ids", gs.Players("missing"))
	}
	if ip, dns, port, ok := gs.Endpoint("query"); !ok || ip != "10.0.0.7" || dns != "" || port != 7002 {
		t.Errorf("Endpoint(query) = %q %q %d %v", ip, dns, port, ok)
	}

	// Fields of the wrong type are absent, not a panic.
	bad := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"state": int64(3), "ports": "x", "lists": map[string]any{"players": "x"}, "players": map[string]any{"ids": "x"}}}}
	if gs := Parse(bad); gs.State != "" || gs.Ports != nil || len(gs.Lists) != 0 || len(gs.PlayerIDs) != 0 {
		t.Errorf("Parse of a malformed object: %+v", gs)
	}
}

func TestAllocation(t *testing.T) {
	got := Allocation(AllocationRequest{
		Namespace: "ns", Fleet: "fleet-a", GameSessionUID: "uid-1", GameSession: "ns/match", PlayersList: "players", Capacity: 8,
		Selectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"map": "forest", FleetLabel: "someone-else"}},
			{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "version", Operator: metav1.LabelSelectorOpIn, Values: []string{"2"}}}},
		},
	})
	const want = `
apiVersion: allocation.agones.dev/v1
kind: GameServerAllocation
metadata: {namespace: ns}
spec:
  selectors:
  - matchLabels: {agones.dev/fleet: fleet-a, map: forest}
    gameServerState: Ready
  - matchLabels: {agones.dev/fleet: fleet-a}
    matchExpressions: [{key: version, operator: In, values: ["2"]}]
    gameServerState: Ready
  metadata:
    labels: {game.playersessions.dev/game-session-uid: uid-1}
    annotations: {game.playersessions.dev/game-session: ns/match}
  lists:
    players: {capacity: 8}
`
	assertYAML(t, got, want)

	// No selectors: the whole fleet.
	got = Allocation(AllocationRequest{Namespace: "ns", Fleet: "f", GameSessionUID: "u", GameSession: "ns/g", PlayersList: "gamers", Capacity: 2})
	sel, _, _ := unstructured.NestedSlice(got.Object, "spec", "selectors")
	if len(sel) != 1 || !reflect.DeepEqual(sel[0], map[string]any{"matchLabels": map[string]any{FleetLabel: "f"}, "gameServerState": "Ready"}) {
		t.Errorf("selectors without any: %v", sel)
	}
}

func assertYAML(t *testing.T, got *unstructured.Unstructured, want string) {
	t.Helper()
	gotJSON, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := yaml.Unmarshal(gotJSON, &g); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		gy, _ := yaml.Marshal(g)
		t.Errorf("got:\n%s\nwant:\n%s", gy, want)
	}
}

func TestAllocationResult(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"state": "Allocated", "gameServerName": "gs-9"}}}
	if state, name := AllocationResult(u); state != AllocationAllocated || name != "gs-9" {
		t.Errorf("got %s %s", state, name)
	}
	u = &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"state": "UnAllocated"}}}
	if state, name := AllocationResult(u); state != AllocationUnAllocated || name != "" {
		t.Errorf("got %s %s", state, name)
	}
}
