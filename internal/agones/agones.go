// Package agones reads and writes Agones objects (agones.dev/v1 GameServer and Fleet,
// allocation.agones.dev/v1 GameServerAllocation) as unstructured objects: Agones' Go module is not a
// dependency. Field paths and semantics follow Agones v1.60 (test/crds/agones/README.md).
package agones

import (
	"net"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kinds and resources.
var (
	GameServerGVK           = schema.GroupVersionKind{Group: "agones.dev", Version: "v1", Kind: "GameServer"}
	GameServerListGVK       = schema.GroupVersionKind{Group: "agones.dev", Version: "v1", Kind: "GameServerList"}
	FleetGVK                = schema.GroupVersionKind{Group: "agones.dev", Version: "v1", Kind: "Fleet"}
	GameServerGVR           = schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "gameservers"}
	GameServerAllocationGVR = schema.GroupVersionResource{Group: "allocation.agones.dev", Version: "v1", Resource: "gameserverallocations"}
)

// Labels and annotations.
const (
	// FleetLabel is the label Agones puts on a fleet's GameServers.
	FleetLabel = "agones.dev/fleet"
	// LastAllocatedAnnotation is rewritten by Agones on every allocation (RFC3339Nano).
	LastAllocatedAnnotation = "agones.dev/last-allocated"
	// GameSessionUIDLabel marks a GameServer allocated for a game session (the GameSession's UID), so that
	// an allocation whose answer was lost is found again instead of allocating a second GameServer.
	GameSessionUIDLabel = "game.playersessions.dev/game-session-uid"
	// GameSessionAnnotation names the game session (namespace/name) on a GameServer allocated for it.
	GameSessionAnnotation = "game.playersessions.dev/game-session"
	// GameServerPodLabel names, on a Pod, the GameServer it runs (the Pod has the GameServer's name).
	GameServerPodLabel = "agones.dev/gameserver"
)

// GameServer states (status.state).
const (
	StateScheduled    = "Scheduled"
	StateRequestReady = "RequestReady"
	StateReady        = "Ready"
	StateReserved     = "Reserved"
	StateAllocated    = "Allocated"
	StateShutdown     = "Shutdown"
	StateUnhealthy    = "Unhealthy"
	StateError        = "Error"
)

// NewGameServer is an empty GameServer for a client to read into.
func NewGameServer() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(GameServerGVK)
	return u
}

// NewGameServerList is an empty GameServerList for a client to list into.
func NewGameServerList() *unstructured.UnstructuredList {
	u := &unstructured.UnstructuredList{}
	u.SetGroupVersionKind(GameServerListGVK)
	return u
}

// NewFleet is an empty Fleet for a client to read into.
func NewFleet() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(FleetGVK)
	return u
}

// GameServer is what the operator needs of an Agones GameServer.
type GameServer struct {
	Name, UID, ResourceVersion string
	Deleting                   bool
	State                      string
	LastAllocated              string
	Address                    string
	Ports                      []Port
	// Lists are status.lists: name -> values.
	Lists map[string][]string
	// PlayerIDs is the legacy status.players.ids (PlayerTracking).
	PlayerIDs []string
}

// Port is one of status.ports.
type Port struct {
	Name string
	Port int32
}

// Parse reads a GameServer; fields of an unexpected type are treated as absent.
func Parse(u *unstructured.Unstructured) GameServer {
	gs := GameServer{Name: u.GetName(), UID: string(u.GetUID()), ResourceVersion: u.GetResourceVersion(), Deleting: u.GetDeletionTimestamp() != nil}
	gs.State, _, _ = unstructured.NestedString(u.Object, "status", "state")
	gs.Address, _, _ = unstructured.NestedString(u.Object, "status", "address")
	gs.LastAllocated = u.GetAnnotations()[LastAllocatedAnnotation]
	ports, _, _ := unstructured.NestedSlice(u.Object, "status", "ports")
	for _, p := range ports {
		m, ok := p.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		if port, ok := toInt32(m["port"]); ok {
			gs.Ports = append(gs.Ports, Port{Name: name, Port: port})
		}
	}
	lists, _, _ := unstructured.NestedMap(u.Object, "status", "lists")
	for name, l := range lists {
		m, ok := l.(map[string]any)
		if !ok {
			continue
		}
		if gs.Lists == nil {
			gs.Lists = map[string][]string{}
		}
		gs.Lists[name] = strings(m["values"])
	}
	ids, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "players", "ids")
	gs.PlayerIDs = strings(ids)
	return gs
}

func strings(v any) []string {
	vs, _ := v.([]any)
	out := make([]string, 0, len(vs))
	for _, x := range vs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func toInt32(v any) (int32, bool) {
	switch n := v.(type) {
	case int64:
		return int32(n), true
	case float64:
		return int32(n), true
	case int:
		return int32(n), true
	case string:
		i, err := strconv.ParseInt(n, 10, 32)
		return int32(i), err == nil
	}
	return 0, false
}

// Players is the set of players the GameServer reports in list (and in the legacy status.players.ids).
func (gs GameServer) Players(list string) map[string]struct{} {
	set := make(map[string]struct{}, len(gs.Lists[list])+len(gs.PlayerIDs))
	for _, v := range gs.Lists[list] {
		set[v] = struct{}{}
	}
	for _, v := range gs.PlayerIDs {
		set[v] = struct{}{}
	}
	return set
}

// Endpoint is where players connect: the address (as an IP address or a DNS name) and the port named
// portName, or the first port when portName is empty. ok is false while either is missing.
func (gs GameServer) Endpoint(portName string) (ip, dns string, port int32, ok bool) {
	if gs.Address == "" {
		return "", "", 0, false
	}
	i := 0
	if portName != "" {
		i = slices.IndexFunc(gs.Ports, func(p Port) bool { return p.Name == portName })
	}
	if i < 0 || i >= len(gs.Ports) || gs.Ports[i].Port <= 0 {
		return "", "", 0, false
	}
	if net.ParseIP(gs.Address) != nil {
		return gs.Address, "", gs.Ports[i].Port, true
	}
	return "", gs.Address, gs.Ports[i].Port, true
}

// AllocationRequest describes a GameServerAllocation.
type AllocationRequest struct {
	Namespace, Fleet string
	// Selectors narrow the fleet; each gets the fleet label. None: the whole fleet.
	Selectors []metav1.LabelSelector
	// GameSessionUID and GameSession (namespace/name) label and annotate the allocated GameServer.
	GameSessionUID, GameSession string
	// PlayersList and Capacity set the capacity of the GameServer's players List.
	PlayersList string
	Capacity    int64
}

// Allocation builds the GameServerAllocation: Ready GameServers of the fleet matching the selectors, the
// game session's label and annotation merged into the GameServer's metadata, and the players List's
// capacity set, all in the one update Agones makes when it allocates.
func Allocation(r AllocationRequest) *unstructured.Unstructured {
	selectors := r.Selectors
	if len(selectors) == 0 {
		selectors = []metav1.LabelSelector{{}}
	}
	sel := make([]any, 0, len(selectors))
	for _, s := range selectors {
		labels := map[string]any{FleetLabel: r.Fleet}
		for k, v := range s.MatchLabels {
			if k != FleetLabel {
				labels[k] = v
			}
		}
		m := map[string]any{"matchLabels": labels, "gameServerState": StateReady}
		if len(s.MatchExpressions) > 0 {
			exprs := make([]any, 0, len(s.MatchExpressions))
			for _, e := range s.MatchExpressions {
				values := make([]any, 0, len(e.Values))
				for _, v := range e.Values {
					values = append(values, v)
				}
				exprs = append(exprs, map[string]any{"key": e.Key, "operator": string(e.Operator), "values": values})
			}
			m["matchExpressions"] = exprs
		}
		sel = append(sel, m)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "allocation.agones.dev/v1",
		"kind":       "GameServerAllocation",
		"metadata":   map[string]any{"namespace": r.Namespace},
		"spec": map[string]any{
			"selectors": sel,
			"metadata": map[string]any{
				"labels":      map[string]any{GameSessionUIDLabel: r.GameSessionUID},
				"annotations": map[string]any{GameSessionAnnotation: r.GameSession},
			},
			"lists": map[string]any{r.PlayersList: map[string]any{"capacity": r.Capacity}},
		},
	}}
}

// Allocation result states (GameServerAllocation status.state).
const (
	AllocationAllocated   = "Allocated"
	AllocationUnAllocated = "UnAllocated"
	AllocationContention  = "Contention"
)

// AllocationResult reads a GameServerAllocation's answer: its state and, when Allocated, the GameServer.
func AllocationResult(u *unstructured.Unstructured) (state, gameServerName string) {
	state, _, _ = unstructured.NestedString(u.Object, "status", "state")
	gameServerName, _, _ = unstructured.NestedString(u.Object, "status", "gameServerName")
	return state, gameServerName
}
